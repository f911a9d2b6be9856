"""rosbag2 files written and read with rosbags, and replay evaluation offline and live."""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from vvhand_core.checkpoint import save_random_checkpoint
from vvhand_core.data.synthetic.generator import SynthConfig, sample_sequence
from vvhand_core.deployed import DEPLOYED
from vvhand_ros import replay_cli
from vvhand_ros.bag import BagError, read_frames, read_ground_truth
from vvhand_ros.depth_encoding import image_to_depth_mm
from vvhand_ros.replay import ReplayConfig, run_replay
from vvhand_ros.synth_bag import live_camera_config, write_synthetic_bag

FRAMES = 6


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("bags") / "synth"
    assert write_synthetic_bag(path, FRAMES, seed=5, progress=False) == FRAMES
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_random_checkpoint(tmp_path_factory.mktemp("model") / "r.pt", width=0.125)


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_synthetic_bag_round_trip(tmp_path, storage, encoding):
    path = tmp_path / "b"
    write_synthetic_bag(path, 3, seed=2, storage=storage, encoding=encoding, progress=False)
    expected = list(sample_sequence(live_camera_config(2), 3))
    frames = list(read_frames(path))
    gt = read_ground_truth(path)
    assert [f.index for f in frames] == [0, 1, 2]
    stamps = [f.stamp_ns for f in frames]
    assert np.all(np.diff(stamps) == round(1e9 / 15.0))  # 15 frames/s
    for f, e in zip(frames, expected, strict=True):
        assert f.info is not None and f.image.encoding == encoding
        assert f.image.header.frame_id == "camera_depth_optical_frame"
        depth = image_to_depth_mm(f.image)
        np.testing.assert_allclose(depth, np.rint(e.depth_mm), atol=0.01)
        np.testing.assert_allclose(gt[f.stamp_ns], e.joints_mm, atol=1e-3)
        assert f.info.k[0] == pytest.approx(e.intrinsics.fx)
    # the hand moves smoothly: consecutive centres are close, but not identical
    centres = np.array([gt[s].mean(axis=0) for s in stamps])
    step = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    assert np.all(step > 0.01) and np.all(step < 30.0)


def test_bag_hand_pose_is_the_ros_type(bag):
    """rosbags' HandPose bytes deserialize with rclpy into vvhand_msgs/msg/HandPose."""
    pytest.importorskip("rclpy")
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader

    from vvhand_msgs.msg import HandPose

    with Reader(bag) as reader:
        conn = next(c for c in reader.connections if c.msgtype == "vvhand_msgs/msg/HandPose")
        _c, _t, raw = next(reader.messages(connections=[conn]))
    msg = deserialize_message(bytes(raw), HandPose)
    assert msg.valid and msg.skeleton == "hands2019_21" and len(msg.joints) == 21


def test_broken_bags_raise_bag_error(tmp_path, bag):
    with pytest.raises(BagError, match="does not exist"):
        list(read_frames(tmp_path / "nope"))
    with pytest.raises(BagError, match="has no topic '/other'"):
        list(read_frames(bag, depth_topic="/other"))
    broken = tmp_path / "broken"
    write_synthetic_bag(broken, 2, progress=False)
    db = next(broken.glob("*.db3"))
    db.write_bytes(db.read_bytes()[:2000])  # truncated storage file
    with pytest.raises(BagError, match=str(broken)):
        list(read_frames(broken))
    corrupt = tmp_path / "corrupt"
    write_synthetic_bag(corrupt, 2, progress=False)
    db = next(corrupt.glob("*.db3"))
    with sqlite3.connect(db) as con:
        con.execute("UPDATE messages SET data = x'00010203'")
    with pytest.raises(BagError, match="corrupt"):
        list(read_frames(corrupt))


def test_sidecar_ground_truth(tmp_path):
    from vvhand_ros.bag import SyntheticBagFrame, write_bag

    frames = list(sample_sequence(SynthConfig(seed=1), 2))
    path = tmp_path / "nogt"
    write_bag(path, [SyntheticBagFrame(10 + i, f.depth_mm, f.intrinsics, None)
                     for i, f in enumerate(frames)])
    assert read_ground_truth(path) == {}
    (path / "ground_truth.jsonl").write_text("\n".join(
        json.dumps({"stamp_ns": 10 + i, "joints_mm": f.joints_mm.tolist()})
        for i, f in enumerate(frames)))
    gt = read_ground_truth(path)
    np.testing.assert_allclose(gt[11], frames[1].joints_mm, atol=1e-4)
    (path / "ground_truth.jsonl").write_text("{not json")
    with pytest.raises(BagError, match="line 1"):
        read_ground_truth(path)


def test_offline_replay_scores_every_frame(tmp_path, bag, checkpoint):
    cfg = ReplayConfig(bag=bag, mode="offline", model=str(checkpoint), device="cpu",
                       fit=False, out_dir=tmp_path / "out")  # the untrained model's joints
    report, json_path, png_path = run_replay(cfg, progress=False)
    assert report.frames == FRAMES and report.answered == FRAMES and report.dropped == 0
    acc = report.accuracy
    assert acc["frames_with_gt"] == FRAMES
    assert acc["frames_scored"] + acc["frames_without_estimate"] == FRAMES
    if acc["frames_scored"]:
        assert acc["mean_error_mm"] > 0 and len(acc["per_joint_mm"]) == 21
    saved = json.loads(json_path.read_text())
    assert saved["frames"] == FRAMES and len(saved["records"]) == FRAMES
    assert png_path.stat().st_size > 5000


def test_offline_replay_with_the_hand_model_fit(tmp_path, bag):
    """--fit: the shipped model's joints refined by the fit on at least one frame (and
    --mirror: the mirror pass changes them)."""
    common = dict(bag=bag, mode="offline", device="cpu", max_frames=4)
    plain, _, _ = run_replay(ReplayConfig(out_dir=tmp_path / "a", fit=False, **common),
                             progress=False)
    fitted, _, _ = run_replay(ReplayConfig(out_dir=tmp_path / "b", **common),  # the default
                              progress=False)
    assert fitted.config["fit"] == "True" and plain.config["fit"] == "False"
    assert [r.valid for r in fitted.records] == [r.valid for r in plain.records]
    moved = [np.abs(np.subtract(a.joints_mm, b.joints_mm)).max()
             for a, b in zip(fitted.records, plain.records, strict=True) if a.valid]
    assert moved and max(moved) > 0.1
    assert {r.skeleton for r in fitted.records if r.valid} == {"hands2019_21"}
    assert fitted.config["fit_max_residual_mm"] == str(DEPLOYED.fit_max_residual_mm)  # the node's
    strict, _, _ = run_replay(ReplayConfig(out_dir=tmp_path / "d", fit=True,
                                           fit_max_residual_mm=1e-3, **common), progress=False)
    assert not any(r.valid for r in strict.records)  # every fit explains the depth worse
    mirrored, _, _ = run_replay(ReplayConfig(out_dir=tmp_path / "c", mirror=True, fit=False,
                                             **common),
                                progress=False)  # the mirror pass: another answer
    assert mirrored.config["mirror"] == "True" and plain.config["mirror"] == "False"
    assert [r.valid for r in mirrored.records] == [r.valid for r in plain.records]
    assert max(np.abs(np.subtract(a.joints_mm, b.joints_mm)).max()
               for a, b in zip(mirrored.records, plain.records, strict=True) if a.valid) > 0.1


def test_replay_cli_offline(tmp_path, bag, checkpoint):
    proc = subprocess.run(
        [sys.executable, "-m", "vvhand_core.cli", "replay", str(bag), "--model", str(checkpoint),
         "--device", "cpu", "--out", str(tmp_path), "--json", "--no-fit"],  # untrained model
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["frames"] == FRAMES and "records" not in summary
    assert summary["config"]["fit"] == "False"
    # the contact sheet of worst / median / best frames lies beside the plot
    assert summary["contact_sheet"] == str(tmp_path / "contact_sheet.png")
    assert (tmp_path / "contact_sheet.png").stat().st_size > 5000
    parser = argparse.ArgumentParser()
    replay_cli.add_arguments(parser)
    assert parser.parse_args(["bag"]).fit is True  # the node's default: the fit on
    bad = subprocess.run(
        [sys.executable, "-m", "vvhand_core.cli", "replay", str(tmp_path / "missing")],
        capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "does not exist" in bad.stderr


@pytest.mark.parametrize("value", ["-1", "x"])
def test_replay_cli_refuses_a_bad_max_frames(tmp_path, value, capsys):
    """--max-frames -1 used to process nothing and exit 0; now argparse refuses it."""
    from vvhand_core.cli import main as cli_main

    with pytest.raises(SystemExit) as exc:
        cli_main(["replay", str(tmp_path), "--max-frames", value])
    assert exc.value.code == 2
    assert "--max-frames" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.ros
def test_live_replay_matches_offline(tmp_path, bag, checkpoint, ros_env, monkeypatch):
    pytest.importorskip("rclpy")
    for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        monkeypatch.setenv(k, ros_env[k])
    common = dict(bag=bag, model=str(checkpoint), device="cpu", fit=False)  # untrained model
    live, _, png = run_replay(ReplayConfig(mode="live", out_dir=tmp_path / "live", **common),
                              progress=False)
    offline, _, _ = run_replay(ReplayConfig(mode="offline", out_dir=tmp_path / "off", **common),
                               progress=False)
    assert live.answered == FRAMES and live.dropped == 0
    assert [r.valid for r in live.records] == [r.valid for r in offline.records]
    for a, b in zip(live.records, offline.records, strict=True):
        if a.valid:
            np.testing.assert_allclose(a.joints_mm, b.joints_mm, atol=0.05)
    assert np.isfinite(live.latency_ms["end_to_end_p50"]) and live.fps > 0
    # throughput counts the serving time only: node start-up and model load are left out
    for report in (live, offline):
        assert all(np.isfinite(r.answered_at_s) for r in report.records if r.answered)
        assert 0 < report.serving_s < report.wall_s
        assert report.fps == pytest.approx(report.answered / report.serving_s)
    assert png.is_file()


def test_offline_replay_of_a_compressed_bag_matches_the_raw_bag(tmp_path, bag, checkpoint):
    """compressedDepth rvl, camera_info recorded after each image: same estimates as raw."""
    comp = tmp_path / "comp"
    write_synthetic_bag(comp, FRAMES, seed=5, progress=False, depth_format="compressedDepth rvl",
                        info_after_image=True)
    common = dict(model=str(checkpoint), device="cpu", mode="offline", fit=False)
    raw, _, _ = run_replay(ReplayConfig(bag=bag, out_dir=tmp_path / "a", **common),
                           progress=False)
    rvl, _, _ = run_replay(ReplayConfig(bag=comp, out_dir=tmp_path / "b", **common),
                           progress=False)
    assert rvl.answered == FRAMES and rvl.config["depth_topic"] == "/camera/depth/image_raw"
    for a, b in zip(raw.records, rvl.records, strict=True):
        assert (a.stamp_ns, a.valid) == (b.stamp_ns, b.valid)
        if a.valid:
            np.testing.assert_allclose(a.joints_mm, b.joints_mm, atol=1e-3)


@pytest.mark.slow
@pytest.mark.ros
def test_live_replay_of_a_compressed_bag(tmp_path, checkpoint, ros_env, monkeypatch):
    """A compressedDepth png bag, camera_info recorded after each image, no head start.

    The node subscribes to <depth topic>/compressedDepth (chosen from the bag's topic type),
    pairs by stamp and answers every frame.
    """
    pytest.importorskip("rclpy")
    for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"):
        monkeypatch.setenv(k, ros_env[k])
    comp = tmp_path / "comp"
    write_synthetic_bag(comp, 4, seed=7, progress=False, encoding="32FC1",
                        depth_format="compressedDepth png", info_after_image=True)
    common = dict(bag=comp, model=str(checkpoint), device="cpu", fit=False)
    live, _, _ = run_replay(ReplayConfig(mode="live", out_dir=tmp_path / "live", **common),
                            progress=False)
    offline, _, _ = run_replay(ReplayConfig(mode="offline", out_dir=tmp_path / "off", **common),
                               progress=False)
    assert live.answered == 4 and live.dropped == 0
    assert [r.valid for r in live.records] == [r.valid for r in offline.records]
    for a, b in zip(live.records, offline.records, strict=True):
        if a.valid:
            np.testing.assert_allclose(a.joints_mm, b.joints_mm, atol=0.05)


def test_offline_replay_loads_the_alternate_model_as_the_node(bag, checkpoint):
    from vvhand_ros.replay import _load_pipeline

    common = dict(bag=bag, mode="offline", model=str(checkpoint), device="cpu",
                  alternate_model=str(checkpoint))
    pipe = _load_pipeline(ReplayConfig(**common))
    other = pipe.alternate
    assert other is not None and other.config.fit is None
    assert other.config.localiser == "geometric"  # no detector loaded for it
    with pytest.raises(ValueError, match="needs the hand-model fit"):
        _load_pipeline(ReplayConfig(fit=False, **common))
