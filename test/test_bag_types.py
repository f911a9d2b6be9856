"""Ground-truth message types of bags (vvhand_ros.bag_types): today's and the older one.

test/data/legacy_bag_2026-12-06 was written by vvhand_ros.bag as it was before the messages
moved to vvhand_msgs (3 frames of 64x48 depth, ground truth as ``vvhand/msg/HandPose`` with
that package's definition, a second labelled hand on frame 0). It must keep replaying.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader

from vvhand_core.camera import Intrinsics
from vvhand_core.skeletons import HANDS2019_21
from vvhand_ros.bag import (
    OTHER_HANDS_TOPIC,
    SyntheticBagFrame,
    read_frames,
    read_ground_truth,
    read_ground_truth_hands,
    write_bag,
)
from vvhand_ros.bag_types import hand_pose_definition

LEGACY_BAG = Path(__file__).parent / "data" / "legacy_bag_2026-12-06"
STAMPS = [1_000_000_000 + i * 33_000_000 for i in range(3)]


def legacy_joints_mm(i: int) -> np.ndarray:
    """Frame i's labelled joints as the legacy bag was written with them."""
    return np.arange(63, dtype=np.float64).reshape(21, 3) + 300.0 + 10.0 * i


def ground_truth_types(path: Path) -> set[str]:
    reader = Reader(path)
    reader.open()
    try:
        return {c.msgtype for c in reader.connections if c.topic.startswith("/ground_truth")}
    finally:
        reader.close()


def test_legacy_bag_keeps_replaying():
    assert ground_truth_types(LEGACY_BAG) == {"vvhand/msg/HandPose"}
    gt = read_ground_truth(LEGACY_BAG)
    assert sorted(gt) == STAMPS
    for i, stamp in enumerate(STAMPS):
        np.testing.assert_allclose(gt[stamp], legacy_joints_mm(i), atol=1e-9)
    hands = read_ground_truth_hands(LEGACY_BAG)
    assert [len(hands[s]) for s in STAMPS] == [2, 1, 1]
    np.testing.assert_allclose(hands[STAMPS[0]][1], legacy_joints_mm(0) + 100.0, atol=1e-9)
    frames = list(read_frames(LEGACY_BAG))
    assert [f.stamp_ns for f in frames] == STAMPS and all(f.info is not None for f in frames)


def test_new_bags_carry_the_vvhand_msgs_type(tmp_path):
    k = Intrinsics(fx=60.0, fy=60.0, cx=32.0, cy=24.0, width=64, height=48)
    joints = legacy_joints_mm(1)
    frames = [SyntheticBagFrame(5_000, np.full((48, 64), 700.0, np.float32), k, joints,
                                HANDS2019_21, other_hands_mm=(joints + 50.0,))]
    path = tmp_path / "bag"
    assert write_bag(path, frames) == 1
    assert ground_truth_types(path) == {"vvhand_msgs/msg/HandPose"}
    np.testing.assert_allclose(read_ground_truth(path)[5_000], joints, atol=1e-9)
    reader = Reader(path)
    reader.open()
    try:
        assert OTHER_HANDS_TOPIC in {c.topic for c in reader.connections}
    finally:
        reader.close()
    np.testing.assert_allclose(read_ground_truth_hands(path)[5_000][1], joints + 50.0,
                               atol=1e-9)


def test_registered_definition_is_the_message_package_file():
    repo = Path(__file__).resolve().parents[1]
    msg = repo / "ros" / "vvhand_msgs" / "msg" / "HandPose.msg"
    assert hand_pose_definition() == msg.read_text()
