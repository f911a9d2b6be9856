"""Phases of `vvhand bench reliability` from the outside probe of issue 25.

Each takes the bench (vvhand_ros.bench_reliability.Bench: its peer, frame stream, node
parameters) and returns a dict for the report (vvhand_ros.reliability_report):

- ``time_phase``: stamps that go backwards (a looped bag, a camera reset, a zero stamp)
  and one far-future camera_info, in both arrival orders: frames answered per category.
- ``intrinsics_phase``: camera_info with focal lengths no depth camera has (fx 1..1e5 at
  640x480), each followed by a valid frame: how long until that frame is answered (the
  stall), the node's memory.
- ``decoder_phase``: compressedDepth payloads that claim far more than they carry (RVL
  declaring 4096x4096 followed by 16 MB of zero words, a PNG header of 2^31-1 squared, a
  worst-case RVL stream): stall and memory per message.
- ``startup_phase``: SIGINT / SIGTERM at fixed delays after the node's start (Python still
  importing, the model loading, running), a second SIGINT while it stops, an unreadable
  --params-file.
- ``export_phase``: the node started on ONNX exports whose description is damaged.
"""

from __future__ import annotations

import copy
import json
import shutil
import signal
import struct
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

WALL_STEP_NS = 33_000_000  # 30 Hz stamps
ANSWER_S = 10.0            # longest wait for one frame's answer
FAR_FUTURE_NS = 2_145_000_000 * 1_000_000_000  # January 2038
START_DELAYS_S = (0.3, 1.0, 3.0)


def _frame(bench, stamp: int, image_first: bool = False, info=None) -> tuple[bool, float]:
    """Send one frame; (answered within ANSWER_S, seconds until answered)."""
    before = bench.peer.answers.get(stamp)  # stamps repeat in a loop: wait for a new answer
    t0 = time.monotonic()
    bench.stream.send_at(stamp, image_first, info)
    ok = bench.peer.wait_for(lambda: bench.peer.answers.get(stamp) is not before, ANSWER_S)
    return ok, time.monotonic() - t0


def _now_ns(bench) -> int:
    return max(time.time_ns(), bench.stream.last_ns + 1)


def _run(bench, name: str, stamps: list[int], image_first: bool = False) -> dict:
    answered = sum(_frame(bench, s, image_first)[0] for s in stamps)
    bench.stream.last_ns = max(bench.stream.last_ns, max(stamps))
    return {"category": name, "sent": len(stamps), "answered": answered,
            "order": "image first" if image_first else "camera_info first"}


def _wall(bench, n: int = 10) -> list[int]:
    t = _now_ns(bench)
    return [t + i * WALL_STEP_NS for i in range(n)]


def time_phase(bench, child) -> dict:
    """Stamps backwards and far ahead on a running node (raw transport)."""
    rows = [_run(bench, "wall clock (before)", _wall(bench))]
    back = time.time_ns() - 100 * 1_000_000_000
    for loop in range(3):  # a looped bag: the same stamps, 100 s back, each loop
        rows.append(_run(bench, f"looped bag, loop {loop + 1} (100 s back)",
                         [back + i * WALL_STEP_NS for i in range(10)], image_first=loop == 1))
        bench.stream.last_ns = 0
    rows.append(_run(bench, "wall clock (after the loops)", _wall(bench)))
    rows.append(_run(bench, "camera clock reset (stamps from 1 s)",
                     [1_000_000_000 + i * WALL_STEP_NS for i in range(10)], image_first=True))
    rows.append(_run(bench, "zero-stamped pair", [0]))
    rows.append(_run(bench, "wall clock (after the reset)", _wall(bench)))
    info = copy.deepcopy(bench.stream.msgs[0][0])
    from vvhand_ros.reliability_fuzz import header

    info.header = header(FAR_FUTURE_NS)
    bench.peer.publish("info", info)  # one camera_info stamped 2038, its image never comes
    rows.append(_run(bench, "after a camera_info stamped 2038", _wall(bench), image_first=True))
    rows.append(_run(bench, "wall clock (after that)", _wall(bench)))
    return {"rows": rows, "alive": child.alive()}


def _camera_info(bench, fx: float, fy: float, width: int = 640, height: int = 480):
    info = copy.deepcopy(bench.stream.msgs[0][0])
    info.width, info.height = width, height
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def _outcome(before: dict, after: dict) -> str:
    """What the node did with one frame, from its counters: the reason(s) that grew."""
    grew = [k for k in after if (k.startswith(("rejected.", "unpaired.", "failed."))
                                 or k in ("processed", "dropped"))
            and after[k] > before.get(k, 0.0)]
    return ", ".join(sorted(grew)) or "not accounted for"


def _stall_row(bench, child, what: str, send) -> dict:
    """Send a hostile frame, wait for the node to account for it, then a valid frame.

    Times both (from sending the hostile frame), reads what the node did with it from its
    /diagnostics counters, and the node's memory before and after.
    """
    from vvhand_ros.bench_reliability import ACCOUNTED

    def accounted(st):
        return sum(st.get(k, 0.0) for k in ACCOUNTED)

    base = bench.peer.fresh_status()
    rss0 = child.rss_bytes()
    t0 = time.monotonic()
    send()
    sent_s = time.monotonic() - t0
    bench.peer.wait_for(lambda: bench.peer.status.get("frames_in", 0.0) > base.get(
        "frames_in", 0.0) and accounted(bench.peer.status) > accounted(base), 60.0)
    handled_s = time.monotonic() - t0
    after = dict(bench.peer.status)
    stamp = _now_ns(bench)
    bench.stream.last_ns = stamp
    ok, next_s = _frame(bench, stamp)
    return {"case": what, "next_frame_answered": ok, "stall_s": time.monotonic() - t0,
            "publish_s": sent_s, "handled_s": handled_s, "next_frame_s": next_s,
            "outcome": _outcome(base, after), "rss_before_mb": rss0 / 2**20,
            "rss_after_mb": child.rss_bytes() / 2**20, "alive": child.alive()}


def intrinsics_phase(bench, child) -> dict:
    """Focal lengths no depth camera has, each followed by a valid frame (raw transport)."""
    base = bench.peer.fresh_status()
    rows = []
    for fx, fy in ((1.0, 1.0), (5.0, 5.0), (10.0, 10.0), (60.0, 60.0), (1e5, 1e5),
                   (385.0, 1e4)):
        def send(fx=fx, fy=fy):
            stamp = _now_ns(bench)
            bench.stream.last_ns = stamp
            bench.stream.send_at(stamp, info=_camera_info(bench, fx, fy))
        rows.append(_stall_row(bench, child, f"fx={fx:g} fy={fy:g} px at 640x480", send))
    status = bench.peer.fresh_status()
    reasons = {k: status[k] - base.get(k, 0.0) for k in status
               if k.startswith("rejected.") and status[k] > base.get(k, 0.0)}
    return {"rows": rows, "rejected": reasons, "alive": child.alive()}


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    ihdr = struct.pack(">II5B", width, height, 16, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b""))


def _worst_rvl(width: int, height: int) -> bytes:
    """RVL of the most runs an image can have: every other pixel valid, depths alternating."""
    from vvhand_ros.compressed_depth import rvl_encode

    a = np.zeros(width * height, np.uint16)
    a[1::2] = np.where(np.arange(a[1::2].size) % 2, 400, 65000)
    return struct.pack("<II", width, height) + rvl_encode(a)


def _decode_here(msg, size: tuple[int, int]) -> dict:
    """The node's decoding of ``msg`` run in this process: seconds, peak traced memory, outcome.

    Separates the decoder's own cost from the transport's in the stall over DDS.
    """
    import tracemalloc

    from vvhand_ros.compressed_depth import compressed_to_depth_mm
    from vvhand_ros.depth_encoding import ConversionError

    t0 = time.perf_counter()
    try:
        compressed_to_depth_mm(msg, size)
        outcome = "decoded"
    except ConversionError as exc:
        outcome = str(exc)
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    try:
        compressed_to_depth_mm(msg, size)
    except ConversionError:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"decode_s": seconds, "decode_peak_mb": peak / 2**20, "decode_outcome": outcome}


def decoder_phase(bench, child) -> dict:
    """Messages on compressedDepth that claim more than they carry, each then a valid frame."""
    from sensor_msgs.msg import CompressedImage

    from vvhand_ros.compressed_depth import HEADER
    from vvhand_ros.reliability_fuzz import header

    head = HEADER.pack(0, 0.0, 0.0)
    zeros_16mb = struct.pack("<II", 4096, 4096) + bytes(16 << 20)
    cases = [
        ("RVL 4096x4096 + 16 MB of zero words, camera_info 640x480", "rvl", zeros_16mb,
         (None, 640, 480)),
        ("RVL 4096x4096 + 16 MB of zero words, camera_info 4096x4096", "rvl", zeros_16mb,
         (2000.0, 4096, 4096)),
        ("RVL 2048x2048 worst-case valid stream, camera_info 2048x2048", "rvl",
         _worst_rvl(2048, 2048), (1000.0, 2048, 2048)),
        ("PNG header 2^31-1 squared", "png", _png_header_only(2**31 - 1, 2**31 - 1),
         (None, 640, 480)),
        ("PNG header 4096x4096, camera_info 640x480", "png", _png_header_only(4096, 4096),
         (None, 640, 480)),
    ]
    base = bench.peer.fresh_status()
    rows = []
    for what, codec, payload, (fx, w, h) in cases:
        msg = CompressedImage(format=f"16UC1; compressedDepth {codec}", data=head + payload)
        info = (copy.deepcopy(bench.stream.msgs[0][0]) if fx is None
                else _camera_info(bench, fx, fx, w, h))

        def send(msg=msg, info=info):
            stamp = _now_ns(bench)
            bench.stream.last_ns = stamp
            msg.header = info.header = header(stamp)
            bench.peer.publish("info", info)
            bench.peer.publish("compressed", msg)

        rows.append(_stall_row(bench, child, what, send))
        rows[-1].update(bytes=len(msg.data), **_decode_here(msg, (info.width, info.height)))
    status = bench.peer.fresh_status()
    reasons = {k: status[k] - base.get(k, 0.0) for k in status
               if (k.startswith("rejected.") or k == "processed")
               and status[k] > base.get(k, 0.0)}
    return {"rows": rows, "outcome": reasons, "alive": child.alive()}


def _ended(child, sig_name: str, after_s: float, t_signal: float, timeout_s: float = 30.0
           ) -> dict:
    rc = child.finish(timeout_s)
    out = child.output
    return {"signal": sig_name, "after_s": after_s,
            "exit_status": f"killed after {timeout_s:g} s" if rc is None else rc,
            "exit_s": time.monotonic() - t_signal, "traceback": "Traceback" in out,
            "fatal_lines": sum("FATAL" in ln for ln in out.splitlines()), "output": out}


def startup_phase(bench) -> dict:
    """Signals at fixed delays after the start, a double SIGINT, an unreadable params file."""
    from vvhand_ros.reliability_harness import NodeProcess

    rows = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        for delay in START_DELAYS_S:
            child = NodeProcess(bench.env, bench.params)
            time.sleep(delay)
            t0 = time.monotonic()
            child.signal(sig)
            rows.append(_ended(child, signal.Signals(sig).name, delay, t0))
    child = bench.start()  # ready and answering, then two SIGINTs 50 ms apart
    t0 = time.monotonic()
    child.signal(signal.SIGINT)
    time.sleep(0.05)
    child.signal(signal.SIGINT)
    rows.append(_ended(child, "SIGINT twice, 50 ms apart", t0 - child.started_at, t0))
    with tempfile.TemporaryDirectory(prefix="vvhand_params_") as tmp:
        bad = Path(tmp) / "params.yaml"
        bad.write_text("hand_pose_node:\n  ros__parameters: [1, 2\n")
        child = NodeProcess(bench.env, bench.params, ("--params-file", str(bad)))
        run = _ended(child, "", 0.0, time.monotonic(), timeout_s=60.0)
    for r in [*rows, run]:
        bench.outputs.append(r.pop("output"))
    return {"signals": rows, "params_file": run}


DAMAGES = {  # what is wrong in vvhand_onnx.json -> how to do it
    "view_grid_deg a number": lambda m: m.__setitem__("view_grid_deg", 25),
    "a2j outputs null": lambda m: m["networks"]["a2j"].__setitem__("outputs", None),
    "student file outside the directory": lambda m: m["networks"]["student"].__setitem__(
        "file", "../../etc/passwd"),
    "cube_mm as text": lambda m: m.__setitem__("cube_mm", "250"),
    "joint_names a number": lambda m: m["skeleton"].__setitem__("joint_names", 21),
    "networks a list": lambda m: m.__setitem__("networks", []),
    "truncated file": None,
}


def export_phase(bench, model: str) -> dict:
    """The node started on ONNX exports of ``model`` with a damaged description."""
    from vvhand_core import cli
    from vvhand_ros.reliability_harness import NodeProcess

    rows = []
    with tempfile.TemporaryDirectory(prefix="vvhand_exports_") as tmp:
        good = Path(tmp) / "export"
        if cli.main(["export-onnx", model, str(good)]) != 0:
            return {"rows": [], "error": f"vvhand export-onnx {model} failed"}
        for what, damage in DAMAGES.items():
            bad = Path(tmp) / what.replace(" ", "_")
            shutil.copytree(good, bad)
            meta_file = bad / "vvhand_onnx.json"
            text = meta_file.read_text()
            if damage is None:
                meta_file.write_text(text[: len(text) // 2])
            else:
                meta = json.loads(text)
                damage(meta)
                meta_file.write_text(json.dumps(meta))
            params = [p for p in bench.params if not p.startswith("model_path:=")]
            child = NodeProcess(bench.env, [*params, f"model_path:={bad}"])
            rc = child.finish(120.0)
            out = child.output
            bench.outputs.append(out)
            fatal = [ln for ln in out.splitlines() if "FATAL" in ln]
            rows.append({"damage": what, "exit_status": rc, "fatal_lines": len(fatal),
                         "traceback": "Traceback" in out,
                         "fatal": fatal[0].split("cannot start: ", 1)[-1][-160:] if fatal
                         else ""})
    return {"rows": rows}


__all__ = ["decoder_phase", "export_phase", "intrinsics_phase", "startup_phase",
           "time_phase"]
