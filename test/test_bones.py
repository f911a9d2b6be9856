"""Joint orientations (vvhand_core.bones): along the bone, bending about the fitted
model's axis when the fit was used, about the palm's y otherwise."""

from __future__ import annotations

import numpy as np

from vvhand_core.bones import BEND_ANGLE, fitted_bend_axes, joint_rotations
from vvhand_core.camera import Intrinsics
from vvhand_core.data.synthetic.hand_model import PARAM_NAMES, pose_hand
from vvhand_core.data.synthetic.poses import sample_articulation
from vvhand_core.fit import FitConfig
from vvhand_core.fit.fit import _shape_arrays, fit_hand
from vvhand_core.fit.hand_np import pose
from vvhand_core.palm import palm_frame
from vvhand_core.skeletons import HANDS2019_21, NYU_14

SK = HANDS2019_21
EMPTY, INTR = np.zeros((480, 640), np.float32), Intrinsics(475, 475, 319.5, 239.5, 640, 480)


def _hand(seed=0):
    rng = np.random.default_rng(seed)
    return pose_hand(sample_articulation(rng, 0.5, 5.0)).joints + [0.0, 0.0, 450.0]


def _check_frames(rot, joints):
    assert np.allclose(np.einsum("jab,jac->jbc", rot, rot), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(rot), 1.0)
    for j, p in enumerate(SK.parents):
        if p < 0:
            continue
        kids = [c for c, q in enumerate(SK.parents) if q == j]
        bone = joints[kids[0]] - joints[j] if kids else joints[j] - joints[p]
        assert np.allclose(rot[j][:, 0], bone / np.linalg.norm(bone), atol=1e-9)


def test_without_a_fit_the_bones_bend_about_the_palm_y():
    joints = _hand()
    rot = joint_rotations(joints, SK)
    _check_frames(rot, joints)
    _, palm = palm_frame(joints, SK)
    assert np.allclose(rot[0], palm)
    for j in range(1, 21):  # y: the palm's y with its part along the bone removed
        x = rot[j][:, 0]
        y = palm[:, 1] - (palm[:, 1] @ x) * x
        assert np.allclose(rot[j][:, 1], y / np.linalg.norm(y), atol=1e-9)
    assert joint_rotations(np.zeros((14, 3)), NYU_14) is None


def test_with_a_fit_the_bones_bend_about_the_fitted_model_s_axes():
    fit = fit_hand(EMPTY, INTR, _hand(1), None, None, FitConfig(iterations=0, guard=False))
    axes = fitted_bend_axes(fit)
    # the model posed with these arguments is the fitted hand
    cfg = FitConfig()
    posed = pose(fit.angles_deg, fit.rotation, fit.translation_mm, fit.scale,
                 _shape_arrays(cfg.hand_shape, cfg.forearm_mm), left=fit.side == "left",
                 finger_lengths=fit.finger_lengths)
    assert np.abs(posed.joints - fit.joints_mm).max() < 1e-3
    rot = joint_rotations(fit.joints_mm, SK, axes)
    _check_frames(rot, fit.joints_mm)
    plain = joint_rotations(fit.joints_mm, SK)
    for name, angle in BEND_ANGLE.items():
        j = SK.joint_names.index(name)
        x, axis = rot[j][:, 0], axes[PARAM_NAMES.index(angle)]
        y = axis - (axis @ x) * x
        assert abs(abs(rot[j][:, 1] @ (y / np.linalg.norm(y))) - 1) < 1e-9, name
    thumb = SK.joint_names.index("thumb_mcp")
    assert not np.allclose(rot[thumb], plain[thumb], atol=1e-3)  # the model's, not the palm's
