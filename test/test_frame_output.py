"""Per-frame outputs without DDS: hands, palm, confidence, frame names, target_frame math,
diagnostic levels (vvhand_ros.frame_output, hand_msgs, target_frame, diagnostics)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")
from builtin_interfaces.msg import Time  # noqa: E402
from geometry_msgs.msg import Quaternion, Transform, Vector3  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from vvhand_core.data.synthetic.hand_model import pose_hand, rest_articulation  # noqa: E402
from vvhand_core.hand_pose_result import HandPoseResult  # noqa: E402
from vvhand_core.palm import matrix_to_quaternion, palm_frame  # noqa: E402
from vvhand_core.skeletons import HANDS2019_21  # noqa: E402
from vvhand_ros.diagnostics import ERROR, OK, WARN, DiagnosticBounds, RateDelayMonitor, assess  # noqa: E402,E501
from vvhand_ros.frame_output import FrameOutput, settings_from  # noqa: E402
from vvhand_ros.hand_msgs import frame_prefix  # noqa: E402
from vvhand_ros.node_params import PARAMETERS  # noqa: E402
from vvhand_ros.target_frame import apply_rigid, rigid_from_transform  # noqa: E402

DEFAULTS = {name: default for name, default, *_ in PARAMETERS}


def result(joints, spread=None, valid=True):
    return HandPoseResult(
        valid=valid, message="", joints_mm=np.asarray(joints, np.float32),
        centre_mm=np.asarray(joints, np.float32).mean(0), cube_mm=250.0, num_candidates=25,
        selected_views=np.array([12, 7, 17]), weights=np.array([0.5, 0.3, 0.2], np.float32),
        logits=np.zeros(25, np.float32), score=0.4,
        joint_spread_mm=np.full(21, 20.0, np.float32) if spread is None else spread)


def header(t_s, frame="cam"):
    return Header(stamp=Time(sec=int(t_s), nanosec=int(round((t_s % 1) * 1e9))), frame_id=frame)


def make(**overrides):
    out = FrameOutput(HANDS2019_21, "/cam1/hand_pose_node")
    out.configure(settings_from(lambda n: overrides.get(n, DEFAULTS[n])))
    return out


def hand_mm():
    return pose_hand(rest_articulation()).joints + np.array([0.0, 0.0, 500.0])


def test_hand_fields_palm_and_frame_names():
    msgs = make(publish_joint_tf=True).build(header(10.0), result(hand_mm()), None, None, 0.1)
    (hand,) = msgs.hands.hands
    assert msgs.hands.header.frame_id == "cam" and len(msgs.hands.joint_names) == 21
    assert hand.side == hand.SIDE_UNKNOWN and hand.right_probability == 0.5
    left = result(hand_mm())
    left.side, left.right_probability = "left", 0.125
    (lh,) = make().build(header(10.0), left, None, None, 0.1).hands.hands
    assert lh.side == lh.SIDE_LEFT and lh.right_probability == 0.125
    assert hand.track_id == 1 and hand.smoothed
    assert np.allclose(hand.joint_confidence, np.exp(-1.0))  # spread 20 mm, scale 20 mm
    assert np.allclose(hand.joint_spread, 0.020)
    o, r = palm_frame(hand_mm(), HANDS2019_21)
    q = matrix_to_quaternion(r)
    p = hand.palm
    assert np.allclose([p.position.x, p.position.y, p.position.z], o / 1000.0, atol=1e-6)
    assert np.allclose([p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w], q)
    assert hand.palm_frame == "cam1/hand_pose_node/hand_0_palm"
    names = [t.child_frame_id for t in msgs.transforms]
    assert names[0] == hand.palm_frame and "cam1/hand_pose_node/hand_0_wrist" in names
    assert len(names) == 22 and msgs.palm.pose == hand.palm
    # per-joint frames are opt-in; a no-hand frame publishes an empty array and no TF
    msgs = make().build(header(11.0), result(hand_mm()), None, None, 0.1)
    assert [t.child_frame_id for t in msgs.transforms] == ["cam1/hand_pose_node/hand_0_palm"]
    msgs = make().build(header(12.0), result(np.zeros((21, 3)), valid=False), None, None, 0.1)
    assert msgs.hands.hands == [] and not msgs.transforms and msgs.palm is None
    assert not msgs.hand_pose.valid
    # one fused view: no confidence rather than a made-up one
    one = result(hand_mm(), spread=np.full(21, np.nan, np.float32))
    (hand,) = make().build(header(13.0), one, None, None, 0.1).hands.hands
    assert list(hand.joint_confidence) == [] and list(hand.joint_spread) == []


def test_frame_prefix():
    assert frame_prefix("", "/hand_pose_node") == "hand_pose_node/"
    assert frame_prefix("", "/cam1/hand_pose_node") == "cam1/hand_pose_node/"
    assert frame_prefix("left_cam_", "/cam1/hand_pose_node") == "left_cam_"
    for good in ("right_", "cam1/hand_pose_node/", "robot.left-"):
        assert settings_from(lambda n, g=good: g if n == "tf_prefix" else DEFAULTS[n]).tf_prefix
    for bad in ("bad name!", "/abs_", " x", "a\tb"):
        with pytest.raises(ValueError, match="tf_prefix must be empty or"):
            settings_from(lambda n, b=bad: b if n == "tf_prefix" else DEFAULTS[n])


def test_target_frame_transform_moves_joints_and_palm():
    """The math the node applies to a tf2 transform (tf2_ros itself is not installable)."""
    rot = np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])  # optical -> body (x fwd, z up)
    tf = Transform(translation=Vector3(x=0.1, y=0.0, z=1.2))
    x, y, z, w = matrix_to_quaternion(rot)
    tf.rotation = Quaternion(x=x, y=y, z=z, w=w)
    rigid = rigid_from_transform(tf)
    assert np.allclose(rigid[0], rot) and np.allclose(rigid[1], [100.0, 0, 1200.0])

    class Target:
        frame = "base_link"

    joints = hand_mm()
    msgs = make(smoothing=False).build(header(10.0, "cam"), result(joints), rigid, Target(),
                                       0.1)
    assert msgs.hands.header.frame_id == "base_link" == msgs.hand_pose.header.frame_id
    expected = apply_rigid(*rigid, joints)
    got = np.array([[p.x, p.y, p.z] for p in msgs.hands.hands[0].joints]) * 1000.0
    assert np.allclose(got, expected, atol=1e-3)
    assert np.allclose(expected[:, 0], joints[:, 2] + 100.0, atol=1e-3)  # depth -> forward
    o_cam, r_cam = palm_frame(joints, HANDS2019_21)
    q = msgs.hands.hands[0].palm.orientation
    from vvhand_core.palm import quaternion_to_matrix

    assert np.allclose(quaternion_to_matrix([q.x, q.y, q.z, q.w]), rot @ r_cam, atol=1e-5)


def test_smoothing_and_track_through_frames():
    out = make(smoothing_min_cutoff_hz=1.0, smoothing_beta=0.0)
    j = hand_mm()
    a = out.build(header(10.0), result(j), None, None, 0.1).hands.hands[0]
    b = out.build(header(10.033), result(j + 10.0), None, None, 0.1).hands.hands[0]
    assert a.track_id == b.track_id == 1
    moved = (b.joints[0].x - a.joints[0].x) * 1000.0
    assert 0.5 < moved < 5.0  # pulled towards the old position
    out.build(header(10.066), result(j, valid=False), None, None, 0.1)
    c = out.build(header(10.1), result(j + 10.0), None, None, 0.1).hands.hands[0]
    assert c.track_id == 2 and np.isclose(c.joints[0].x * 1000.0, j[0, 0] + 10.0, atol=1e-3)


def test_diagnostic_levels():
    m = RateDelayMonitor(window_s=2.0)
    for i in range(20):  # 10 Hz for 2 s, 0.3 s behind the stamps
        m.input(100.0 + i * 0.1)
        m.output(100.0 + i * 0.1 + 0.05, 100.0 + i * 0.1 - 0.25)
    s = m.summary(102.0)
    assert s["output_rate_hz"] == pytest.approx(10.0, abs=1.0)
    assert s["delay_p50_s"] == pytest.approx(0.3)
    none = {"rejected": 0}
    assert assess(s, DiagnosticBounds(expected_rate_hz=10.0), none) == (OK, "ok")
    assert assess(s, DiagnosticBounds(expected_rate_hz=13.0), none)[0] == WARN
    level, text = assess(s, DiagnosticBounds(expected_rate_hz=30.0), none)
    assert level == ERROR and "rate" in text
    assert assess(s, DiagnosticBounds(delay_warn_s=0.2), none)[0] == WARN
    level, text = assess(s, DiagnosticBounds(delay_warn_s=0.1, delay_error_s=0.2), none)
    assert level == ERROR and "delay" in text
    level, text = assess(s, DiagnosticBounds(), {"rejected": 2})
    assert level == WARN and "2 rejected" in text
    with pytest.raises(ValueError):
        settings_from(lambda n: {"diag_rate_error_fraction": 0.9}.get(n, DEFAULTS[n]))
