"""`vvhand bench latency`: frames at camera rate through a live node, answered or dropped."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from vvhand_core.benchmarks import cli

pytestmark = pytest.mark.ros
pytest.importorskip("rclpy")


def test_latency_bench_accounts_for_every_frame(tmp_path, monkeypatch, ros_env):
    """The shipped model, so that hands are found and fitted (the stage table's fit)."""
    for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        monkeypatch.setenv(k, ros_env[k])
    monkeypatch.setenv("VVHAND_RESULTS", str(tmp_path / "results.md"))
    monkeypatch.delenv("FASTDDS_DEFAULT_PROFILES_FILE", raising=False)
    from vvhand_ros import bench_latency

    assert cli.BENCHES["latency"] == "vvhand_ros.bench_latency"
    parser = argparse.ArgumentParser()
    bench_latency.add_arguments(parser)
    args = parser.parse_args(["--fps", "20", "--seconds", "1", "--backends", "torch+mirror+fit"])
    assert bench_latency.run(args) == 0
    text = (tmp_path / "results.md").read_text()
    assert "Node latency at camera rate" in text and "--fps 20 --seconds 1" in text
    assert "--dds large-images" in text and "'Large images' (shared memory)" in text
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in __import__("os").environ  # restored
    lines = [x for x in text.splitlines() if x.startswith("| torch+mirror+fit |")]
    assert len(lines) == 3  # the latency table's row, the stage table's, the worker's
    cells = [c.strip() for c in lines[0].strip("|").split("|")]
    frames, answered, dropped = int(cells[1]), int(cells[2]), int(cells[3])
    assert frames == 20 and answered + dropped == frames and answered >= 1
    assert np.isfinite(float(cells[5])) and float(cells[5]) > 0  # end-to-end p50 ms
    assert 0 <= int(cells[10]) <= answered  # answered with a hand (the error's frames)
    # stages inside the node: every frame it processed, its networks' and fit's times
    stages = dict(zip(bench_latency.STAGE_HEADER[1:],
                      (float(c) for c in lines[1].strip("|").split("|")[1:])))
    assert 1 <= stages["frames timed"] <= frames
    assert stages["networks p50 ms"] > 0 and stages["total p50 ms (stages)"] > 0
    assert int(cells[10]) > 0  # hands were found, so fitted and their fits timed
    assert stages["fits per frame"] > 0 and stages["fit p50 ms (per hand)"] > 0
    assert 0 < stages["fit thread CPU p50 ms (per hand)"] <= stages["fit p50 ms (per hand)"]
    # the worker's frame, piece by piece: each piece timed, and within the frame's work
    work = dict(zip(bench_latency.WORKER_HEADER[1:],
                    (float(c) for c in lines[2].strip("|").split("|")[1:])))
    assert work["frames"] == stages["frames timed"]
    pieces = [work[f"{p} p50 ms"] for p in bench_latency.WORKER_PIECES]
    assert all(p > 0 for p in pieces[:4]) and pieces[4] >= 0  # no debug subscriber
    assert work["pipeline p50 ms"] >= 0.9 * stages["total p50 ms (stages)"]
    assert work["frame's work p50 ms"] >= max(pieces) and work["waited in the slot p50 ms"] >= 0
    assert 0 < work["worker thread CPU p50 ms"] <= work["process CPU p50 ms"] + 1.0
    if work["frames"] >= 2:  # the node's CPU between the first frame's end and the last's
        assert work["node CPU a frame ms"] >= work["outside the worker a frame ms"] >= 0
        assert work["node CPU a frame ms"] - work["outside the worker a frame ms"] > 0
    by_topic = text.split("Publishing by topic")[1]
    assert "- torch+mirror+fit: " in by_topic and "/hand_pose " in by_topic  # its own topic
    assert bench_latency.parse_variant("onnxruntime+fit+mirror") == ("onnxruntime", True,
                                                                      True, "")
    assert bench_latency.parse_variant("torch") == ("torch", False, False, "")
    assert bench_latency.parse_variant("torch+fit+grasp") == ("torch", False, True, "grasp")
    for bad in ("torch+flip", "+fit"):
        with pytest.raises(ValueError, match="<backend>"):
            bench_latency.parse_variant(bad)
    with pytest.raises(ValueError, match="needs \\+fit"):
        bench_latency.parse_variant("torch+grasp")


def test_dds_environment_sets_and_restores_the_profile(monkeypatch, tmp_path):
    import os
    from pathlib import Path

    from vvhand_ros.reliability_harness import dds_environment

    key = "FASTDDS_DEFAULT_PROFILES_FILE"
    monkeypatch.delenv(key, raising=False)
    with dds_environment("large-images") as what:
        profile = Path(os.environ[key])
        assert "shm_large" in profile.read_text() and "shared memory" in what
    assert key not in os.environ and not profile.exists()
    with dds_environment("default") as what:
        assert key not in os.environ and what == "Fast DDS defaults"
    mine = tmp_path / "mine.xml"
    monkeypatch.setenv(key, str(mine))  # the user's own profile wins
    with dds_environment("large-images") as what:
        assert os.environ[key] == str(mine) and str(mine) in what
    assert os.environ[key] == str(mine)
