"""The palm frame (vvhand_core.palm) on synthetic hands rotated by known angles."""

from __future__ import annotations

import numpy as np
import pytest

from vvhand_core.data.synthetic.hand_model import PARAM_NAMES, pose_hand, rest_articulation
from vvhand_core.palm import matrix_to_quaternion, palm_frame, quaternion_to_matrix
from vvhand_core.skeletons import HANDS2019_21, get_skeleton


def rot(axis: str, deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


def fist() -> np.ndarray:
    a = rest_articulation()
    for f in ("index", "middle", "ring", "pinky"):
        for j in ("mcp", "pip", "dip"):
            a[PARAM_NAMES.index(f"{f}_{j}")] = 60.0
    return a


# Hand model frame (hand_model.py): +x radial (thumb), +y distal, +z palmar (right hand).
X_H, Y_H, Z_H = np.eye(3)


def test_right_hand_axes_in_the_hand_frame():
    origin, r = palm_frame(pose_hand(rest_articulation()).joints, HANDS2019_21)
    x, y, z = r.T
    assert x @ Y_H > 0.97  # distal
    assert y @ -X_H > 0.97  # towards the little finger (ulnar)
    assert z @ Z_H > 0.97  # out of the palm
    assert np.allclose(r.T @ r, np.eye(3), atol=1e-9) and np.isclose(np.linalg.det(r), 1.0)
    joints = pose_hand(rest_articulation()).joints
    assert joints[0, 1] < origin[1] < joints[10, 1]  # between wrist and middle MCP
    # flexed fingers curl to the palmar side: +z of the palm frame
    tips = pose_hand(fist()).joints[[8, 12, 16, 20]]
    o, r = palm_frame(pose_hand(fist()).joints, HANDS2019_21)
    assert np.all((tips - o) @ r[:, 2] > 10.0)


def test_left_hand_is_right_handed_with_z_out_of_the_back():
    left = pose_hand(fist()).mirrored().joints
    o, r = palm_frame(left, HANDS2019_21)
    x, y, z = r.T
    assert np.isclose(np.linalg.det(r), 1.0)
    assert x @ Y_H > 0.97 and y @ X_H > 0.97  # distal; ulnar is +x for the mirrored hand
    assert z @ Z_H < -0.97  # dorsal
    tips = left[[8, 12, 16, 20]]
    assert np.all((tips - o) @ z < -10.0)


@pytest.mark.parametrize("angles", [(("x", 30.0),), (("y", -45.0),), (("z", 90.0),),
                                    (("x", 120.0), ("z", -60.0)),
                                    (("y", 180.0),), (("z", 35.0), ("y", 70.0), ("x", -20.0))])
def test_rotated_hand_rotates_the_frame_by_the_same_angles(angles):
    joints = pose_hand(fist()).joints
    o0, r0 = palm_frame(joints, HANDS2019_21)
    rotation = np.eye(3)
    for axis, deg in angles:
        rotation = rot(axis, deg) @ rotation
    t = np.array([30.0, -20.0, 450.0])
    o1, r1 = palm_frame(joints @ rotation.T + t, HANDS2019_21)
    assert np.allclose(o1, rotation @ o0 + t, atol=1e-6)
    assert np.allclose(r1, rotation @ r0, atol=1e-9)
    # the relative rotation recovered from the two frames is the applied one
    rel = r1 @ r0.T
    angle = np.degrees(np.arccos(np.clip((np.trace(rel) - 1) / 2, -1, 1)))
    expected = np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)))
    assert angle == pytest.approx(expected, abs=1e-4)  # arccos is ill-conditioned at 180


def test_quaternion_round_trip_and_ros_order():
    rng = np.random.default_rng(0)
    for _ in range(200):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        m = quaternion_to_matrix(q)
        q2 = matrix_to_quaternion(m)
        assert np.allclose(quaternion_to_matrix(q2), m, atol=1e-9) and q2[3] >= 0
    for axis in "xyz":  # 180 degrees: the trace-negative branches
        q = matrix_to_quaternion(rot(axis, 180.0))
        assert np.allclose(quaternion_to_matrix(q), rot(axis, 180.0), atol=1e-9)
    # (x, y, z, w): 90 degrees about z
    assert np.allclose(matrix_to_quaternion(rot("z", 90.0)), [0, 0, np.sqrt(0.5), np.sqrt(0.5)])


def test_degenerate_and_unsupported_input_raise():
    with pytest.raises(ValueError, match="coincide"):
        palm_frame(np.zeros((21, 3)), HANDS2019_21)
    line = np.zeros((21, 3))
    line[:, 1] = np.arange(21)
    with pytest.raises(ValueError, match="collinear"):
        palm_frame(line, HANDS2019_21)
    with pytest.raises(ValueError, match="no wrist"):
        palm_frame(np.zeros((14, 3)), get_skeleton("nyu_14"))
