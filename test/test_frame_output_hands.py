"""Several hands in one frame's outputs, without DDS (vvhand_ros.frame_output, hand_tracks):
every hand listed, each with its own track, filter and slot; TF names follow the hand,
not its position in the list; side frames; markers per hand; the optional outputs built
only where wanted."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

pytest.importorskip("rclpy")
from builtin_interfaces.msg import Time  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from vvhand_core.data.synthetic.hand_model import pose_hand, rest_articulation  # noqa: E402
from vvhand_core.hand_pose_result import HandPoseResult  # noqa: E402
from vvhand_core.hand_tracks import OutputTracks  # noqa: E402
from vvhand_core.hands import HandsResult  # noqa: E402
from vvhand_core.skeletons import HANDS2019_21  # noqa: E402
from vvhand_core.smoothing import SmoothingConfig  # noqa: E402
from vvhand_ros.frame_output import FrameOutput, Wanted, settings_from  # noqa: E402
from vvhand_ros.node_params import PARAMETERS  # noqa: E402

DEFAULTS = {name: default for name, default, *_ in PARAMETERS}
PREFIX = "cam1/hand_pose_node/"


def hand(offset_mm, track_id, side="unknown"):
    joints = pose_hand(rest_articulation()).joints + np.asarray(offset_mm, np.float64)
    r = HandPoseResult(
        valid=True, message="", joints_mm=joints.astype(np.float32),
        centre_mm=joints.mean(0).astype(np.float32), cube_mm=250.0, num_candidates=25,
        selected_views=np.array([12, 7, 17]), weights=np.array([0.5, 0.3, 0.2], np.float32),
        logits=np.zeros(25, np.float32), score=0.4, joint_spread_mm=np.full(21, 20.0, np.float32))
    r.track_id, r.side = track_id, side
    return r


def frame(*hands):
    return HandsResult(list(hands), hands[0])


def header(t_s):
    return Header(stamp=Time(sec=int(t_s), nanosec=int(round((t_s % 1) * 1e9))), frame_id="cam")


def make(**overrides):
    out = FrameOutput(HANDS2019_21, "/cam1/hand_pose_node")
    out.configure(settings_from(lambda n: overrides.get(n, DEFAULTS[n])))
    return out


def palms(msgs):
    return {t.child_frame_id: np.array([t.transform.translation.x, t.transform.translation.y,
                                        t.transform.translation.z]) for t in msgs.transforms}


def test_every_hand_keeps_its_track_slot_and_tf_name_when_the_order_flips():
    out = make(smoothing=False)
    a0, b0 = hand([-100, 0, 400], 5), hand([100, 0, 500], 6)
    a1, b1 = hand([-95, 0, 460], 5), hand([95, 0, 440], 6)  # B now nearer: listed first
    first = out.build(header(1.0), frame(a0, b0), None, None, 0.01)
    second = out.build(header(1.033), frame(b1, a1), None, None, 0.01)
    assert len(first.hands.hands) == 2 and len(second.hands.hands) == 2
    ids0 = [h.track_id for h in first.hands.hands]
    ids1 = [h.track_id for h in second.hands.hands]
    assert len(set(ids0)) == 2 and ids1 == ids0[::-1]  # the ids stay with A and B
    names0 = [h.palm_frame for h in first.hands.hands]
    names1 = [h.palm_frame for h in second.hands.hands]
    assert names0 == [PREFIX + "hand_0_palm", PREFIX + "hand_1_palm"] and names1 == names0[::-1]
    # the TF frame of A (hand_0) is where A's palm is, in both frames
    x_a = palms(second)[PREFIX + "hand_0_palm"][0]
    assert x_a < 0 and palms(second)[PREFIX + "hand_1_palm"][0] > 0
    # ~/hand_pose, ~/palm_pose and ~/joints carry the first hand of the list
    assert second.hand_pose.center.z == pytest.approx(second.hands.hands[0].center.z)
    assert second.joints.poses[0].position.x == pytest.approx(second.hands.hands[0].joints[0].x)
    # markers: one namespace per hand
    assert {m.ns for m in second.markers.markers} == {"vvhand", "vvhand_1"}
    # ~/hand_pose, ~/palm_pose and ~/joints carry the primary hand, wherever it is listed
    third = out.build(header(1.066), HandsResult([b1, a1], a1), None, None, 0.01)
    assert third.hands.hands[1].track_id == ids0[0]  # A, second in the list
    assert third.hand_pose.center.x == pytest.approx(third.hands.hands[1].center.x)
    assert third.joints.poses[0].position.x == pytest.approx(third.hands.hands[1].joints[0].x)
    assert third.palm.pose == third.hands.hands[1].palm


def test_a_hand_that_leaves_frees_its_slot_and_the_other_keeps_its_own():
    out = make(smoothing=False)
    out.build(header(1.0), frame(hand([-100, 0, 400], 1), hand([100, 0, 500], 2)), None, None, 0)
    only_b = out.build(header(1.033), frame(hand([100, 0, 500], 2)), None, None, 0)
    (b,) = only_b.hands.hands
    assert b.palm_frame == PREFIX + "hand_1_palm" and b.track_id == 2
    back = out.build(header(1.066), frame(hand([-100, 0, 400], 3), hand([100, 0, 500], 2)),
                     None, None, 0)
    new, b2 = back.hands.hands
    assert new.palm_frame == PREFIX + "hand_0_palm" and new.track_id == 3  # a new track
    assert b2.palm_frame == PREFIX + "hand_1_palm" and b2.track_id == 2


def test_side_frames_only_for_a_side_one_hand_holds():
    out = make(publish_side_tf=True)
    msgs = out.build(header(1.0), frame(hand([-100, 0, 400], 1, "left"),
                                        hand([100, 0, 500], 2, "right")), None, None, 0)
    names = palms(msgs)
    assert np.allclose(names[PREFIX + "hand_left_palm"], names[PREFIX + "hand_0_palm"])
    assert np.allclose(names[PREFIX + "hand_right_palm"], names[PREFIX + "hand_1_palm"])
    both_right = out.build(header(1.033), frame(hand([-100, 0, 400], 1, "right"),
                                                hand([100, 0, 500], 2, "right")), None, None, 0)
    assert not any("left" in n or "right" in n for n in palms(both_right))
    assert not any("right" in n for n in palms(make().build(
        header(1.0), frame(hand([0, 0, 400], 1, "right")), None, None, 0)))  # opt-in


def test_each_hand_is_filtered_on_its_own():
    tracks = OutputTracks(SmoothingConfig(beta=0.0))
    a, b = np.zeros((21, 3)), np.full((21, 3), 300.0)
    tracks.update(0.0, [(1, a), (2, b)])
    (ub, _), (ua, _) = tracks.update(0.033, [(2, b + 10), (1, a + 10)])
    assert np.all(ub.joints_mm > 300) and np.all(ub.joints_mm < 310)  # b's history only
    assert np.all(ua.joints_mm > 0) and np.all(ua.joints_mm < 10)
    with pytest.raises(ValueError, match="unique"):
        tracks.update(0.066, [(1, a), (1, b)])


def _quat_to_matrix(q):
    x, y, z, w = q.x, q.y, q.z, q.w
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def fitted_pair():
    """Hands A (right, track 1) and B (track 2), each with a fit (no iterations)."""
    from vvhand_core.camera import Intrinsics
    from vvhand_core.fit import FitConfig
    from vvhand_core.fit.fit import fit_hand

    empty, intr = np.zeros((480, 640), np.float32), Intrinsics(475, 475, 319.5, 239.5, 640, 480)
    a, b = hand([-100, 0, 400], 1, "right"), hand([100, 0, 500], 2)
    a.fit = fit_hand(empty, intr, a.joints_mm.astype(np.float64), None, None,
                     FitConfig(iterations=0, side="right", guard=False))
    a.joints_mm = a.fit.joints_mm.astype(np.float32)
    b.fit = fit_hand(empty, intr, b.joints_mm.astype(np.float64), None, None,
                     FitConfig(iterations=0, side="left", guard=False))
    return a, b


def test_outputs_nobody_receives_are_not_built_and_the_rest_does_not_change():
    a, b = fitted_pair()
    every = dict(smoothing=False, publish_joint_tf=True)
    full_out = make(**every)
    full = full_out.build(header(1.0), frame(a, b), None, None, 0)
    assert set(full_out.built) == {f.name for f in fields(Wanted)}  # all on by default
    lean_out = make(**every)
    lean = lean_out.build(header(1.0), frame(a, b), None, None, 0,
                          Wanted(**{f.name: False for f in fields(Wanted)}))
    assert (lean.palm, lean.joints, lean.markers, lean.transforms, lean.joint_states) == (
        None, None, None, [], [])
    assert lean_out.built == {}
    assert lean.hands == full.hands and lean.hand_pose == full.hand_pose
    # each one wanted alone: that one is built (as in the full frame), nothing else
    for name in (f.name for f in fields(Wanted)):
        out = make(**every)
        one = out.build(header(1.0), frame(a, b), None, None, 0,
                        Wanted(**{f.name: f.name == name for f in fields(Wanted)}))
        assert set(out.built) == {name}
        key = {"tf": "transforms"}.get(name, name)
        assert getattr(one, key) == getattr(full, key), name
    # the tracks advance on frames that build nothing optional
    later = lean_out.build(header(1.033), frame(a, b), None, None, 0, Wanted(False, False))
    assert [h.track_id for h in later.hands.hands] == [h.track_id for h in full.hands.hands]


def test_joint_poses_point_along_their_bones_and_joint_states_name_each_hand():
    from vvhand_core.fit.stage import ANGLE_NAMES

    a, b = fitted_pair()
    fit_a = a.fit
    msgs = make(publish_joint_tf=True, smoothing=False).build(
        header(1.0), frame(a, b), None, None, 0)
    # ~/joints: x of each joint's frame along its bone (index_mcp -> index_pip)
    sk = HANDS2019_21
    poses = msgs.joints.poses
    j, c = sk.joint_names.index("index_mcp"), sk.joint_names.index("index_pip")
    bone = a.joints_mm[c] - a.joints_mm[j]
    rot = _quat_to_matrix(poses[j].orientation)
    assert np.allclose(rot[:, 0], bone / np.linalg.norm(bone), atol=1e-5)
    assert not np.allclose(rot, np.eye(3))
    # joint TF frames carry the same orientations as ~/joints for the first hand
    tf = {t.child_frame_id: t for t in msgs.transforms}
    assert tf[PREFIX + "hand_0_index_mcp"].transform.rotation == poses[j].orientation
    # one JointState per fitted hand: names by side (known) or slot, radians
    right, other = msgs.joint_states
    assert right.name == ["right_" + n for n in ANGLE_NAMES]
    assert other.name == ["hand_1_" + n for n in ANGLE_NAMES]
    assert np.allclose(right.position, np.deg2rad(fit_a.angles_deg))
    assert right.header.stamp == msgs.hands.header.stamp
    assert make(publish_joint_states=False).build(
        header(1.0), frame(a, b), None, None, 0).joint_states == []
