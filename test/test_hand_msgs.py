"""Message builders of the node's outputs (vvhand_ros.hand_msgs): metres, headers, fields."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("rclpy")
from builtin_interfaces.msg import Time  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from vvhand_core.skeletons import HANDS2019_21, NYU_14  # noqa: E402
from vvhand_msgs.msg import Hand, HandPose  # noqa: E402
from vvhand_ros.hand_msgs import (  # noqa: E402
    HandOutput,
    duration_msg,
    duration_s,
    hand_joint_transforms,
    hand_msg,
    hand_pose_msg,
    marker_array_msg,
    pose_array_msg,
)

HEADER = Header(stamp=Time(sec=5, nanosec=6), frame_id="cam_optical")

JOINTS_MM = np.arange(21 * 3, dtype=np.float32).reshape(21, 3) * 3.0 + 250.0


def test_hand_pose_fields_in_metres():
    msg = hand_pose_msg(HEADER, HANDS2019_21, JOINTS_MM, np.array([10.0, -20.0, 450.0]), 250.0,
                        25, [12, 3], [0.6, 0.4], np.zeros(25), 0.5, True, 0.02)
    assert msg.header == HEADER
    assert msg.joint_names == list(HANDS2019_21.joint_names)
    got = np.array([[p.x, p.y, p.z] for p in msg.joints])
    np.testing.assert_allclose(got, JOINTS_MM / 1000.0, rtol=1e-6)
    assert (msg.center.x, msg.center.y, msg.center.z) == pytest.approx((0.01, -0.02, 0.45))
    assert msg.cube_size == pytest.approx(0.25)
    assert list(msg.selected_views) == [12, 3] and msg.num_candidate_views == 25
    assert (msg.processing_time.sec, msg.processing_time.nanosec) == (0, 20_000_000)
    invalid = hand_pose_msg(HEADER, HANDS2019_21, JOINTS_MM, np.zeros(3), 250.0, 25, [], [],
                            np.zeros(25), 0.0, False, 0.01)
    assert invalid.valid is False and len(invalid.joints) == 0
    with pytest.raises(ValueError):
        hand_pose_msg(HEADER, NYU_14, JOINTS_MM, np.zeros(3), 250.0, 25, [], [], [], 0.0, True, 0)


def test_pose_array():
    msg = pose_array_msg(HEADER, JOINTS_MM)
    assert msg.header == HEADER and len(msg.poses) == 21
    p = msg.poses[4]
    assert (p.position.x, p.position.y, p.position.z) == pytest.approx(tuple(JOINTS_MM[4] / 1000))
    assert p.orientation.w == 1.0


def test_markers_skeleton_lines_and_spheres():
    arr = marker_array_msg(HEADER, HANDS2019_21, JOINTS_MM)
    lines, spheres = arr.markers
    assert lines.type == Marker.LINE_LIST and spheres.type == Marker.SPHERE_LIST
    assert lines.header == HEADER and spheres.header == HEADER
    bones = HANDS2019_21.bones()
    assert len(lines.points) == 2 * len(bones) == 40
    parent, child = bones[5]
    assert lines.points[10].x == pytest.approx(JOINTS_MM[parent, 0] / 1000)
    assert lines.points[11].z == pytest.approx(JOINTS_MM[child, 2] / 1000)
    assert len(spheres.points) == 21 and len(spheres.colors) == 21
    assert spheres.colors[1].r == pytest.approx(HANDS2019_21.colors[1][0])
    assert lines.id != spheres.id


def test_transforms_per_joint():
    tfs = hand_joint_transforms(HEADER, HANDS2019_21, JOINTS_MM, "r/", 1)
    assert [t.child_frame_id for t in tfs] == [f"r/hand_1_{n}" for n in HANDS2019_21.joint_names]
    assert all(t.header == HEADER for t in tfs)
    t = tfs[7].transform.translation
    assert (t.x, t.y, t.z) == pytest.approx(tuple(JOINTS_MM[7] / 1000))


# the view selection's debug fields: in the single-hand HandPose only
DEBUG_FIELDS = {"cube_size", "num_candidate_views", "selected_views", "view_weights",
                "view_logits", "score"}


def test_hand_is_robot_facing_and_times_are_durations():
    out = HandOutput(joints_mm=JOINTS_MM, smoothed=True, track_id=3,
                     joint_spread_mm=np.full(21, 10.0), confidence=np.full(21, 0.8),
                     centre_mm=np.array([10.0, -20.0, 450.0]), result=SimpleNamespace(fit=None),
                     processing_time_s=1.25, side="left", right_probability=0.1)
    msg = hand_msg(out, HANDS2019_21, None, "")
    fields = set(Hand.get_fields_and_field_types())
    assert not fields & DEBUG_FIELDS, sorted(fields & DEBUG_FIELDS)
    assert DEBUG_FIELDS <= set(HandPose.get_fields_and_field_types())
    for cls in (Hand, HandPose):
        assert cls.get_fields_and_field_types()["processing_time"] == \
            "builtin_interfaces/Duration"
    assert (msg.processing_time.sec, msg.processing_time.nanosec) == (1, 250_000_000)
    assert msg.side == Hand.SIDE_LEFT and msg.track_id == 3 and msg.fit_status == Hand.FIT_OFF
    assert (msg.center.x, msg.center.y, msg.center.z) == pytest.approx((0.01, -0.02, 0.45))


def test_duration_msg_and_back():
    assert (duration_msg(0.031).sec, duration_msg(0.031).nanosec) == (0, 31_000_000)
    assert (duration_msg(2.0).sec, duration_msg(2.0).nanosec) == (2, 0)
    assert (duration_msg(-0.5).sec, duration_msg(-0.5).nanosec) == (0, 0)
    assert duration_s(duration_msg(3.000000007)) == pytest.approx(3.000000007, abs=1e-12)
