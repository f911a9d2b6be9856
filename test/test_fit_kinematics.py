"""The fit's hand model (vvhand_core.fit.hand_np) equals the generator's, to 0.01 mm.

One hand, defined once (``data.synthetic.hand_model``), posed by two codes: the
generator's ``pose_hand`` (its frames' bytes are pinned) and the fit's closed form.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
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
from vvhand_core.fit.tables import PIVOT_MM

TOL_MM = 0.01


def _numpy_model(angles, shape, scale, left, rot, trans):
    g = pose_hand(angles, shape).scaled(scale)
    g = g.mirrored() if left else g
    return g.transformed(rot, trans - rot @ (np.asarray(PIVOT_MM) * scale))


def test_every_primitive_equals_the_generator_model():
    """Random articulations (also past the limits), shapes, scales, sides and placements."""
    rng = np.random.default_rng(0)
    for i in range(24):
        shape = sample_hand_shape(rng)[0] if i % 2 else HandShape()
        shape = replace(shape, forearm_length=float(rng.uniform(80, 300)))
        angles = rng.uniform(LIMITS_DEG[:, 0] - 20, LIMITS_DEG[:, 1] + 20)
        scale, left = float(rng.uniform(0.8, 1.2)), i % 3 == 0
        rot = Rotation.random(random_state=i).as_matrix()
        trans = rng.uniform(-300, 300, 3) + [0, 0, 700]
        ref = _numpy_model(angles, shape, scale, left, rot, trans)
        h = hand_np.pose(angles, rot, trans, scale, hand_np.ShapeArrays.from_shape(shape),
                         left, axes=True)
        p0, p1, r = h.round_parts()
        c, ell_rot, semi = h.ellipsoids()
        pairs = [(h.joints, ref.joints), (p0[:26], ref.spheres[:, :3]),
                 (r[:26], ref.spheres[:, 3]), (p0[26:], ref.capsules[:, :3]),
                 (p1[26:], ref.capsules[:, 3:6]), (r[26:], ref.capsules[:, 6]),
                 (c, ref.ell_centers), (semi, ref.ell_semi_axes),
                 (h.shape.joint_radius * scale, ref.joint_radius)]
        for ours, theirs in pairs:
            assert np.abs(ours - theirs).max() < TOL_MM
        assert np.abs(ell_rot - ref.ell_rotations).max() < 1e-9
        # free-space samples: the spheres' centres, then points on the capsules' axes
        centres, radii = h.samples()
        np.testing.assert_allclose(centres[:26], p0[:26])
        np.testing.assert_allclose(radii[:26], r[:26])
        on_axis = centres[26:86].reshape(20, 3, 3) - p0[26:, None]
        seg = p1[26:] - p0[26:]
        assert np.abs(np.cross(on_axis, seg[:, None])).max() < 1e-6 * np.abs(seg).max() ** 2
        # each angle turns the points it moves about its axis: a finite difference agrees
        k, step = 6, 1e-4  # middle pip, degrees
        bumped = angles.copy()
        bumped[k] += step
        moved = hand_np.pose(bumped, rot, trans, scale, h.shape, left).joints
        tip = h.joints[12]  # middle fingertip, which the middle pip moves
        velocity = np.cross(h.axes[k], tip - h.pivots[k]) * np.pi / 180.0
        np.testing.assert_allclose((moved[12] - tip) / step, velocity, atol=1e-4)


def _joints_from_meta(frame):
    """Rebuild a generated frame's joints from its meta with the fit's model."""
    m = frame.meta
    shape = HandShape()
    if "finger_length_scale" in m:  # scene version 2: per-finger lengths
        shape = with_finger_lengths(shape, m["finger_length_scale"])
    rot, scale = np.asarray(m["rotation"]), float(m["scale"])
    left = m["side"] == "left"
    arrays = hand_np.ShapeArrays.from_shape(shape)
    angles = np.asarray(m["articulation_deg"])
    at_zero = hand_np.pose(angles, rot, np.zeros(3), scale, arrays, left).joints
    # the generator puts the mean of the joints at center_mm
    trans = np.asarray(m["center_mm"]) - at_zero.mean(0)
    return hand_np.pose(angles, rot, trans, scale, arrays, left).joints


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
