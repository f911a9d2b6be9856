"""`vvhand bench reliability` (issue 15): the whole bench at tiny sizes over real rclpy and
DDS (the node a child process, loopback only), the report it appends, and a verdict that
fails on a crash, a traceback, an exit status other than 0 or an accepted bad parameter."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from vvhand_ros.reliability_report import markdown, problems

REPO = Path(__file__).resolve().parents[1]

GOOD = {
    "command": "vvhand bench reliability --messages 2", "seconds": 60.0, "tracebacks": 0,
    "fuzz": [{"transport": "raw", "cases": 2, "cases_asked": 2, "seconds": 1.0,
              "messages": {"image": 2, "info": 2}, "by_category": {"wrong encoding": 2},
              "answered_cases": 0, "answer_timeouts": 0, "crashes": [], "alive": True,
              "status": {"frames_in": 3.0, "rejected": 2.0, "processed": 1.0, "failed": 0.0,
                         "rejected.unsupported depth encoding": 2.0}}],
    "parameters": {"cases": [{"case": "unknown fusion", "values": {"fusion": "'x'"},
                              "rejected": True, "reason": "fusion must be one of"}],
                   "unchanged": True, "valid_change_accepted": True},
    "overload": {"processing_period_ms": 400.0, "send_rate_hz": 5.0, "seconds": 5.0,
                 "sent": 25, "answered": 12, "dropped": 13.0, "failed": 0.0,
                 "answered_rate_hz": 2.4, "last_frame_answered": True, "rss_start_mb": 400.0,
                 "rss_end_mb": 401.0, "rss_max_mb": 402.0, "alive": True,
                 "node_latency_ms": {"p50": 500.0, "p95": 700.0, "max": 800.0},
                 "end_to_end_ms": {"p50": 520.0, "p95": 720.0, "max": 820.0}},
    "signals": [{"signal": "SIGINT", "when": "after the overload", "answered_before": 1,
                 "exit_status": 0, "exit_s": 2.0, "traceback": False}],
}


def _with(change) -> dict:
    r = copy.deepcopy(GOOD)
    change(r)
    return r


@pytest.mark.parametrize("change, fragment", [
    (lambda r: r["fuzz"][0]["crashes"].append({"exit_status": -11}), "crash"),
    (lambda r: r["fuzz"][0].update(alive=False), "not running"),
    (lambda r: r["fuzz"][0]["status"].update(failed=1.0), "failed"),
    (lambda r: r.update(tracebacks=1), "traceback"),
    (lambda r: r["parameters"]["cases"][0].update(rejected=False), "invalid parameter accepted"),
    (lambda r: r["parameters"].update(unchanged=False), "changed"),
    (lambda r: r["signals"][0].update(exit_status=-15), "exit status -15"),
    (lambda r: r["signals"][0].update(traceback=True), "traceback"),
    (lambda r: r["overload"].update(rss_end_mb=900.0), "RSS grew"),
    (lambda r: r["overload"].update(last_frame_answered=False), "not answered"),
], ids=["crash", "dead", "failed", "traceback", "parameter", "unchanged", "exit", "signal-tb",
        "rss", "last-frame"])
def test_the_verdict_fails_on_each_problem(change, fragment):
    assert problems(GOOD) == [] and "**No problem found.**" in markdown(GOOD)
    found = problems(_with(change))
    assert len(found) == 1 and fragment in found[0], found
    assert "**1 problem(s):**" in markdown(_with(change))


def _stall(case, **kw):
    return dict({"case": case, "next_frame_answered": True, "stall_s": 0.1, "publish_s": 0.0,
                 "handled_s": 0.5, "next_frame_s": 0.1, "outcome": "rejected.x",
                 "rss_before_mb": 490.0, "rss_after_mb": 491.0, "alive": True}, **kw)


PROBE = dict(GOOD, **{  # issue 25's phases (vvhand_ros.reliability_probe)
    "time": {"alive": True, "rows": [
        {"category": "looped bag, loop 2 (100 s back)", "sent": 10, "answered": 10,
         "order": "image first"},
        {"category": "after a camera_info stamped 2038", "sent": 10, "answered": 9,
         "order": "image first"}]},
    "intrinsics": {"alive": True, "rows": [_stall("fx=1 fy=1 px at 640x480")],
                   "rejected": {"rejected.camera_info K gives a field of view": 1.0}},
    "decoders": {"alive": True, "outcome": {}, "rows": [_stall(
        "RVL 4096x4096 + 16 MB of zero words", bytes=16 << 20, decode_s=0.001,
        decode_peak_mb=0.5, decode_outcome="RVL stream has a run pair of no pixels")]},
    "startup": {"signals": [{"signal": "SIGINT", "after_s": 0.3, "exit_status": 0,
                             "exit_s": 0.01, "traceback": False, "fatal_lines": 0}],
                "params_file": {"signal": "", "after_s": 0.0, "exit_status": 1, "exit_s": 1.0,
                                "traceback": False, "fatal_lines": 1}},
    "exports": {"rows": [{"damage": "view_grid_deg a number", "exit_status": 1,
                          "fatal_lines": 1, "traceback": False, "fatal": "malformed"}]},
})
PROBE["overload"] = dict(GOOD["overload"], diag_reports=10, diag_warn_or_worse=9,
                         diag_says_dropped=9)


@pytest.mark.parametrize("change, fragment", [
    (lambda r: r["time"]["rows"][0].update(answered=0), "10 of 10 frames unanswered: looped"),
    (lambda r: r["time"]["rows"][1].update(answered=8), "2 of 10 frames unanswered: after a"),
    (lambda r: r["intrinsics"]["rows"][0].update(next_frame_answered=False), "no answer"),
    (lambda r: r["decoders"]["rows"][0].update(rss_after_mb=2000.0), "RSS grew by 1510 MB"),
    (lambda r: r["decoders"].update(alive=False), "not running after the decoders"),
    (lambda r: r["overload"].update(diag_says_dropped=0), "/diagnostics never said"),
    (lambda r: r["startup"]["signals"][0].update(exit_status=-2), "exit status -2"),
    (lambda r: r["startup"]["params_file"].update(traceback=True), "--params-file"),
    (lambda r: r["exports"]["rows"][0].update(fatal_lines=0), "view_grid_deg a number"),
], ids=["loop", "far-future", "stall", "rss", "dead", "diag", "start-signal", "params",
        "export"])
def test_the_verdict_fails_on_each_probe_problem(change, fragment):
    assert problems(PROBE) == [], problems(PROBE)
    text = markdown(PROBE)
    for heading in ("#### Time going backwards", "#### Signals during start-up",
                    "#### Damaged ONNX export descriptions", "decode [ms]"):
        assert heading in text, heading
    r = copy.deepcopy(PROBE)
    change(r)
    found = problems(r)
    assert len(found) == 1 and fragment in found[0], found


def test_a_valid_big_frame_may_keep_its_decoding_memory():
    """A decoded (valid) frame's RSS growth is allowed its decoder's measured peak on top of
    the limit; a rejected message's is not."""
    r = copy.deepcopy(PROBE)
    r["decoders"]["rows"].append(_stall(
        "RVL 2048x2048 worst-case valid stream", outcome="processed", decode_peak_mb=225.0,
        decode_outcome="decoded", rss_before_mb=490.0, rss_after_mb=601.0))
    assert problems(r) == []
    r["decoders"]["rows"][-1].update(rss_after_mb=490.0 + 100.0 + 225.0 + 1.0)
    (found,) = problems(r)
    assert "RSS grew by 326 MB after RVL 2048x2048" in found and "allowed 325 MB" in found
    r["decoders"]["rows"][-1].update(decode_outcome="too big", rss_after_mb=601.0)
    (found,) = problems(r)
    assert "allowed 100 MB" in found


def test_the_dds_profile_is_the_documented_one():
    """The bench's large-images profile is the one docs/ros.md tells users to install."""
    pytest.importorskip("rclpy")
    from vvhand_ros.reliability_harness import LARGE_IMAGES_PROFILE

    text = (REPO / "docs" / "ros.md").read_text()
    section = text[text.index("### Large images"):]
    start = section.index("    <?xml")
    block = section[start:section.index("    </dds>", start) + len("    </dds>")]
    documented = [ln[4:] for ln in block.splitlines()]
    assert documented == LARGE_IMAGES_PROFILE.strip().splitlines()


@pytest.mark.ros
@pytest.mark.slow
def test_the_bench_at_tiny_sizes(ros_env, tmp_path):
    """200 cases, 5 s of overload: 0 crashes, reasons counted, signals exit 0, every bad
    parameter rejected, and the section appended with its command ($VVHAND_RESULTS)."""
    pytest.importorskip("rclpy")
    pytest.importorskip("psutil")
    results_md, figures = tmp_path / "results.md", tmp_path / "figures.json"
    cmd = [sys.executable, "-m", "vvhand_core.cli", "bench", "reliability", "--messages", "200",
           "--overload-s", "5", "--signal-runs", "0", "--json", str(figures),
           "--domain", ros_env["ROS_DOMAIN_ID"]]
    proc = subprocess.run(cmd, env=dict(ros_env, VVHAND_RESULTS=str(results_md)), cwd=REPO,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    r = json.loads(figures.read_text())
    text = results_md.read_text()
    assert "### hand_pose_node reliability (issue 15)" in text
    assert ("Command: `vvhand bench reliability --messages 200 --overload-s 5 --seed 0"
            in text), text[:500]
    for heading in ("#### Bad and fuzzed input", "#### Invalid runtime parameters",
                    "#### Overload", "#### SIGINT / SIGTERM", "**No problem found.**",
                    "| rejected: unsupported depth encoding |"):
        assert heading in text, heading

    raw, comp = r["fuzz"]
    assert raw["transport"] == "raw" and comp["transport"] == "compressedDepth"
    assert raw["cases"] + comp["cases"] == 200
    for f in r["fuzz"]:
        s = f["status"]
        assert f["crashes"] == [] and f["alive"] and s["failed"] == 0, f
        assert s["rejected"] > 0 and s["rejected"] == sum(
            v for k, v in s.items() if k.startswith("rejected.")), s
        accounted = sum(s[k] for k in ("dropped", "unpaired", "rejected", "failed",
                                        "processed", "tf_unavailable"))
        images = f["messages"].get("image", 0) + f["messages"].get("compressed", 0)
        assert s["frames_in"] == accounted == images + 1, (s, f["messages"])  # + final frame
    assert any(k.startswith("rejected.compressedDepth") or k.startswith("rejected.RVL")
               for k in comp["status"]), comp["status"]
    assert r["tracebacks"] == 0

    params = r["parameters"]
    assert len(params["cases"]) >= 20 and params["unchanged"] and params["valid_change_accepted"]
    assert all(c["rejected"] and c["reason"] for c in params["cases"]), params

    ov = r["overload"]
    assert ov["sent"] >= 2 and ov["last_frame_answered"] and ov["alive"], ov
    assert ov["rss_start_mb"] > 50 and ov["rss_end_mb"] > 50 and ov["answered"] >= 1, ov
    assert ov["received"] == ov["sent"], ov  # reliable: every frame reached the node
    assert "Large images" in r["dds"]
    assert ov["send_rate_hz"] == pytest.approx(2000.0 / ov["processing_period_ms"], rel=1e-6)

    signals = r["signals"]
    assert [s["signal"] for s in signals] == ["SIGINT", "SIGTERM", "SIGINT"], signals
    for s in signals:
        assert s["exit_status"] == 0 and not s["traceback"] and s["answered_before"] >= 1, s

    # issue 25's phases: every loop of a looped bag answered, hostile intrinsics and
    # decoder payloads followed by an answered frame, start-up signals exit 0
    for row in r["time"]["rows"]:
        assert row["answered"] >= row["sent"] - ("2038" in row["category"]), row
    for phase in ("intrinsics", "decoders"):
        assert r[phase]["alive"] and all(x["next_frame_answered"] for x in r[phase]["rows"])
    assert any("field of view" in k for k in r["intrinsics"]["rejected"]), r["intrinsics"]
    zeros = r["decoders"]["rows"][1]
    assert "run pair of no pixels" in zeros["decode_outcome"] and zeros["decode_peak_mb"] < 8
    assert "run pair of no pixels" in zeros["outcome"], zeros  # the node's own verdict
    assert all(x["exit_status"] == 0 for x in r["startup"]["signals"]), r["startup"]
    assert r["startup"]["params_file"]["fatal_lines"] == 1
    assert all(x["exit_status"] == 1 and x["fatal_lines"] == 1 for x in r["exports"]["rows"])
    assert sum(r["messages_published"].values()) > 200
    for heading in ("#### Time going backwards", "#### Signals during start-up",
                    "#### Damaged ONNX export descriptions"):
        assert heading in text, heading
