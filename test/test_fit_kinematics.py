"""The torch hand model (vvhand_core.fit.kinematics) equals the generator's, to 0.01 mm."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.data.synthetic.hand_model import (
    LIMITS_DEG,
    HandShape,
    pose_hand,
    with_finger_lengths,
)
from vvhand_core.data.synthetic.person import sample_hand_shape
from vvhand_core.fit import hand_np
from vvhand_core.fit.kinematics import (
    PIVOT_MM,
    ShapeTensors,
    hand_joints,
    hand_model,
    pose,
    rotation_from_vector,
)

TOL_MM = 0.01


def _t(x):
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _numpy_model(angles, shape, scale, left, rot, trans):
    g = pose_hand(angles, shape).scaled(scale)
    g = g.mirrored() if left else g
    return g.transformed(rot, trans - rot @ (np.asarray(PIVOT_MM) * scale))


def test_every_primitive_equals_the_generator_model():
    """Random articulations (also past the limits), shapes, scales, sides and placements."""
    rng = np.random.default_rng(0)
    cases = []
    for i in range(24):
        shape = sample_hand_shape(rng)[0] if i % 2 else HandShape()
        shape = replace(shape, forearm_length=float(rng.uniform(80, 300)))
        angles = rng.uniform(LIMITS_DEG[:, 0] - 20, LIMITS_DEG[:, 1] + 20)
        cases.append((angles, shape, float(rng.uniform(0.8, 1.2)), i % 3 == 0,
                      Rotation.random(random_state=i).as_matrix(),
                      rng.uniform(-300, 300, 3) + [0, 0, 700]))
    for angles, shape, scale, left, rot, trans in cases:
        ref = _numpy_model(angles, shape, scale, left, rot, trans)
        g = hand_model(_t(angles)[None], _t(rot)[None], _t(trans)[None], _t([scale]),
                       ShapeTensors.from_shape(shape), left)
        pairs = [(g.joints, ref.joints), (g.joint_radius, ref.joint_radius),
                 (g.sph_c, ref.spheres[:, :3]), (g.sph_r, ref.spheres[:, 3]),
                 (g.cap_p0, ref.capsules[:, :3]), (g.cap_p1, ref.capsules[:, 3:6]),
                 (g.cap_r, ref.capsules[:, 6]), (g.ell_c, ref.ell_centers),
                 (g.ell_semi, ref.ell_semi_axes)]
        for ours, theirs in pairs:
            assert np.abs(ours[0].numpy() - theirs).max() < TOL_MM
        assert np.abs(g.ell_rot[0].numpy() - ref.ell_rotations).max() < 1e-9
        assert torch.allclose(hand_joints(_t(angles)[None], _t(rot)[None], _t(trans)[None],
                                          _t([scale]), ShapeTensors.from_shape(shape), left),
                              g.joints)
        # the fit's numpy model (one hand): the same primitives and the torch model's axes
        sh = ShapeTensors.from_shape(shape)
        arrays = hand_np.ShapeArrays.from_fields({k: v.numpy() for k, v in vars(sh).items()})
        h = hand_np.pose(angles, rot, trans, scale, arrays, left, axes=True)
        p0, p1, r = h.round_parts()
        c, ell_rot, semi = h.ellipsoids()
        pairs = [(h.joints, ref.joints), (p0[:26], ref.spheres[:, :3]),
                 (r[:26], ref.spheres[:, 3]), (p0[26:], ref.capsules[:, :3]),
                 (p1[26:], ref.capsules[:, 3:6]), (r[26:], ref.capsules[:, 6]),
                 (c, ref.ell_centers), (semi, ref.ell_semi_axes)]
        for ours, theirs in pairs:
            assert np.abs(ours - theirs).max() < TOL_MM
        assert np.abs(ell_rot - ref.ell_rotations).max() < 1e-9
        t = pose(_t(angles)[None], _t(rot)[None], _t(trans)[None], _t([scale]), sh, left, True)
        assert np.abs(h.axes - t.axes[0].numpy()).max() < 1e-9
        assert np.abs(h.pivots - t.pivots[0].numpy()).max() < TOL_MM
        assert np.abs(h.samples()[0] - t.samples()[0][0].numpy()).max() < TOL_MM


def _joints_from_meta(frame, pivot_free=True):
    """Rebuild a generated frame's joints from its meta with the torch model."""
    m = frame.meta
    shape = HandShape()
    if "finger_length_scale" in m:  # scene version 2: per-finger lengths
        shape = with_finger_lengths(shape, m["finger_length_scale"])
    rot, scale = _t(m["rotation"])[None], _t([m["scale"]])
    left = m["side"] == "left"
    sh = ShapeTensors.from_shape(shape)
    angles = _t(m["articulation_deg"])[None]
    at_zero = hand_joints(angles, rot, torch.zeros(1, 3, dtype=torch.float64), scale, sh, left)
    # the generator puts the mean of the joints at center_mm
    trans = _t(m["center_mm"])[None] - at_zero.mean(1)
    return hand_joints(angles, rot, trans, scale, sh, left)[0].numpy()


@pytest.mark.parametrize("config", [SynthConfig(seed=3), SynthConfig(scene_version=2, seed=5)],
                         ids=["v1", "v2"])
def test_generated_frames_are_reproduced(config):
    gen = SyntheticHandGenerator(config)
    sides = set()
    for i in range(4):
        f = gen.frame(i)
        sides.add(f.meta["side"])
        assert np.abs(_joints_from_meta(f) - f.joints_mm).max() < TOL_MM
    if config.scene_version == 2:
        assert sides == {"left", "right"}, "the v2 frames should include both sides"


def test_model_is_differentiable():
    """Autograd through the model agrees with a finite difference (a torch model, not numpy)."""
    angles = torch.tensor(np.random.default_rng(1).uniform(LIMITS_DEG[:, 0], LIMITS_DEG[:, 1]),
                          dtype=torch.float64, requires_grad=True)
    rot = rotation_from_vector(_t([[0.3, -0.2, 0.5]]))
    args = (rot, _t([[10.0, 5.0, 500.0]]), _t([1.1]), ShapeTensors.from_shape())
    g = hand_model(angles[None], *args)
    loss = (g.joints ** 2).sum() + (g.cap_p1 ** 2).sum()
    (grad,) = torch.autograd.grad(loss, angles)
    k, h = 11, 1e-5
    bumped = angles.detach().clone()
    bumped[k] += h
    g2 = hand_model(bumped[None], *args)
    fd = (((g2.joints ** 2).sum() + (g2.cap_p1 ** 2).sum()) - loss.detach()) / h
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert abs(float(fd) - float(grad[k])) < 1e-3 * max(1.0, abs(float(fd)))


def test_finger_length_factors_equal_a_shape_with_those_lengths():
    """The fit's per-finger length factors pose the generator's hand with scaled fingers."""
    rng = np.random.default_rng(4)
    base = hand_np.ShapeArrays.from_shape(HandShape())
    for i in range(6):
        lf = rng.uniform(0.85, 1.15, 5)
        shape = with_finger_lengths(HandShape(), lf)
        angles = rng.uniform(LIMITS_DEG[:, 0], LIMITS_DEG[:, 1])
        rot, trans = Rotation.random(random_state=10 + i).as_matrix(), np.array([0, 0, 600.0])
        ref = _numpy_model(angles, shape, 1.1, i % 2 == 1, rot, trans)
        h = hand_np.pose(angles, rot, trans, 1.1, base, i % 2 == 1, finger_lengths=lf)
        p0, p1, r = h.round_parts()
        assert np.abs(h.joints - ref.joints).max() < TOL_MM
        assert np.abs(p1[26:] - ref.capsules[:, 3:6]).max() < TOL_MM
        assert np.abs(r[26:] - ref.capsules[:, 6]).max() < TOL_MM  # radii do not stretch
        assert np.abs(h.joints - hand_np.pose(angles, rot, trans, 1.1, base, i % 2 == 1).joints
                      ).max() > 1.0  # the factors do change the hand
