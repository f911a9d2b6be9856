"""`vvhand bench latency`: frames at camera rate through a live node, answered or dropped."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from vvhand_core.benchmarks import cli

pytestmark = pytest.mark.ros
pytest.importorskip("rclpy")


def test_latency_bench_accounts_for_every_frame(tmp_path, monkeypatch, checkpoint, ros_env):
    for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        monkeypatch.setenv(k, ros_env[k])
    monkeypatch.setenv("VVHAND_RESULTS", str(tmp_path / "results.md"))
    from vvhand_ros import bench_latency

    assert cli.BENCHES["latency"] == "vvhand_ros.bench_latency"
    parser = argparse.ArgumentParser()
    bench_latency.add_arguments(parser)
    args = parser.parse_args(["--fps", "20", "--seconds", "1", "--backends", "torch",
                              "--model", str(checkpoint)])
    assert bench_latency.run(args) == 0
    text = (tmp_path / "results.md").read_text()
    assert "Node latency at camera rate" in text and "--fps 20 --seconds 1" in text
    line = next(x for x in text.splitlines() if x.startswith("| torch"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    frames, answered, dropped = int(cells[1]), int(cells[2]), int(cells[3])
    assert frames == 20 and answered + dropped == frames and answered >= 1
    assert np.isfinite(float(cells[5])) and float(cells[5]) > 0  # end-to-end p50 ms
