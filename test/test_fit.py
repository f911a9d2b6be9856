"""The model fit (vvhand_core.fit): Jacobians, inverse kinematics, depth fit, free space."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hands import other_side

from vvhand_core.data.synthetic.generator import (
    SynthConfig,
    SyntheticHandGenerator,
    sample_sequence,
)
from vvhand_core.data.synthetic.hand_model import LIMITS_DEG, HandShape
from vvhand_core.fit import FitConfig, bench, fit_hand
from vvhand_core.fit.fit import SIDE_DECAY, choose_sides, confident_side, side_evidence
from vvhand_core.fit.hand_np import ShapeArrays
from vvhand_core.fit.ik import solve_ik
from vvhand_core.fit.observe import observe
from vvhand_core.fit.problem import data_points
from vvhand_core.fit.terms import (
    LENGTHS,
    NUM_FIT_PARAMS,
    Weights,
    data_term,
    free_space_cost,
    free_term,
    linearise,
    model,
    point_pull,
    stack_terms,
)

SHAPE = ShapeArrays.from_shape(HandShape(), 120.0)


@pytest.fixture(scope="module")
def v1_frames():
    gen = SyntheticHandGenerator(SynthConfig(seed=3))
    return [gen.frame(i) for i in range(4)]


@pytest.fixture(scope="module")
def v2_frames():
    gen = SyntheticHandGenerator(SynthConfig(scene_version=2, seed=5))
    return [gen.frame(i) for i in range(3)]


def _error(joints, frame):
    return bench.frame_error_mm(joints, frame.joints_mm)


def test_term_jacobians_match_finite_differences(v1_frames):
    f = v1_frames[1]
    target = bench.noisy_joints(f.joints_mm, 15.0, np.random.default_rng(0))
    ik, r0 = solve_ik(target, np.ones(21), SHAPE, False, Weights(), 4, (0.75, 1.3))
    x = ik.x.copy()
    x[:3] = [0.05, -0.02, 0.03]  # away from omega = 0 (left Jacobian)
    x[LENGTHS] = [1.06, 0.93, 1.1, 0.9, 1.03]  # and from the mean finger lengths
    posed = model(x, r0, SHAPE, False)
    obs = observe(f.depth_mm, f.intrinsics, posed.joints.mean(0))
    gated = data_points(obs, posed, 40.0, 192, 8)
    pts, cand = gated.points, gated.candidates
    tgt = target
    conf = np.linspace(0.2, 1.0, 21)
    terms = [lambda lin, j: point_pull(lin, tgt, conf, 0.3, 15.0, j),
             lambda lin, j: data_term(lin, pts, 1.0, 3.0, 1.0, j),
             lambda lin, j: data_term(lin, pts, 1.0, 3.0, 1.0, j, cand),
             lambda lin, j: free_term(lin, obs, 1.0, 6.0, 8.0, j)]
    for term in terms:
        lin = linearise(x, r0, SHAPE, False)
        r, jac = stack_terms(lin, [term(lin, True)], True)
        assert np.abs(r).sum() > 0
        fd = np.zeros_like(jac)
        for k in range(NUM_FIT_PARAMS):
            h = 1e-6 if k < 7 or k >= 30 else 1e-4
            xp = x.copy()
            xp[k] += h
            lp = linearise(xp, r0, SHAPE, False)
            fd[:, k] = (stack_terms(lp, [term(lp, False)], False)[0] - r) / h
        tol = 1e-3 * (1.0 + np.abs(fd))
        assert (np.abs(jac - fd) > tol).mean() < 0.01
        lengths = slice(30, NUM_FIT_PARAMS)  # few entries: checked on their own
        assert (np.abs(jac[:, lengths] - fd[:, lengths]) > tol[:, lengths]).mean() < 0.002


def test_finger_lengths_are_estimated_from_the_depth(v2_frames):
    """v2 hands vary their fingers' lengths: freeing the factors lowers the error (mean of
    the frames) and moves them toward the truth in every frame (the fit never sees the true
    shape)."""
    errors = []
    for i, f in enumerate(v2_frames):
        start = bench.noisy_joints(f.joints_mm, 5.0, np.random.default_rng(i))
        side = f.meta["side"]
        free = fit_hand(f.depth_mm, f.intrinsics, start, config=FitConfig(side=side))
        held = fit_hand(f.depth_mm, f.intrinsics, start,
                        config=FitConfig(side=side, finger_length_range=(1.0, 1.0)))
        np.testing.assert_array_equal(held.finger_lengths, np.ones(5))
        errors.append((_error(free.joints_mm, f), _error(held.joints_mm, f)))
        true = np.array(f.meta["finger_length_scale"])
        assert np.abs(free.finger_lengths - true).mean() < np.abs(1.0 - true).mean()
        assert np.all((free.finger_lengths >= 0.85) & (free.finger_lengths <= 1.15))
    free_mm, held_mm = np.mean(errors, axis=0)
    assert free_mm < held_mm


def test_ik_recovers_angles_from_exact_joints(v1_frames):
    """v1 hands have the mean shape: exact joints give back their angles and joints."""
    for f in v1_frames:
        ik, r0 = solve_ik(f.joints_mm.astype(np.float64), np.ones(21), SHAPE, False,
                          Weights(scale=0.0), 8, (0.75, 1.3))
        joints = model(ik.x, r0, SHAPE, False).joints
        assert _error(joints, f) < 1.0
        truth = np.array(f.meta["articulation_deg"])
        assert np.abs(ik.x[7:23] - truth[:16]).mean() < 1.5  # the long fingers
        assert abs(float(ik.x[6]) - f.meta["scale"]) < 0.02


def test_fit_reduces_the_error_of_noisy_joints(v1_frames, v2_frames):
    """Ground truth + 15 mm noise: the fit must halve the mean error."""
    rng = np.random.default_rng(1)
    before, after = [], []
    for f in v1_frames + v2_frames:
        start = bench.noisy_joints(f.joints_mm, 15.0, rng)
        res = fit_hand(f.depth_mm, f.intrinsics, start)
        assert res.observed and res.joints_mm.shape == (21, 3)
        before.append(_error(start, f))
        after.append(_error(res.joints_mm, f))
    assert np.mean(after) < 0.5 * np.mean(before), (before, after)


def test_the_depth_fit_beats_inverse_kinematics_alone(v1_frames):
    rng = np.random.default_rng(2)
    ik_only, fitted = [], []
    for f in v1_frames:
        start = bench.noisy_joints(f.joints_mm, 20.0, rng)
        ik_only.append(_error(fit_hand(f.depth_mm, f.intrinsics, start,
                                       config=FitConfig(iterations=0)).joints_mm, f))
        fitted.append(_error(fit_hand(f.depth_mm, f.intrinsics, start).joints_mm, f))
    assert np.mean(fitted) < 0.6 * np.mean(ik_only)


def test_joint_limits_hold(v1_frames):
    f = v1_frames[0]
    bent_back = f.joints_mm.astype(np.float64).copy()
    tips = [8, 12, 16, 20]
    palm_normal = np.cross(bent_back[9] - bent_back[0], bent_back[13] - bent_back[5])
    bent_back[tips] += 40.0 * palm_normal / np.linalg.norm(palm_normal)
    for start in (bent_back, bench.noisy_joints(f.joints_mm, 40.0, np.random.default_rng(3))):
        res = fit_hand(f.depth_mm, f.intrinsics, start)
        assert np.all(res.angles_deg >= LIMITS_DEG[:, 0] - 1e-9)
        assert np.all(res.angles_deg <= LIMITS_DEG[:, 1] + 1e-9)


def test_free_space_costs_more_in_front_of_the_depth_and_off_the_hand(v1_frames):
    f = v1_frames[2]
    ik, r0 = solve_ik(f.joints_mm.astype(np.float64), np.ones(21), SHAPE, False, Weights(),
                      8, (0.75, 1.3))
    obs = observe(f.depth_mm, f.intrinsics, f.joints_mm.mean(0))

    def cost(shift_mm):
        x = ik.x.copy()
        x[3:6] += shift_mm
        return free_space_cost(obs, model(x, r0, SHAPE, False))

    at_truth = cost([0.0, 0.0, 0.0])
    assert at_truth < 2.0
    assert cost([0.0, 0.0, -40.0]) > at_truth + 10.0  # in front of the observed surface
    assert cost([60.0, 0.0, 0.0]) > at_truth + 10.0  # where the camera sees past the hand


def test_both_sides_keeps_the_side_the_depth_shows(v2_frames):
    rng = np.random.default_rng(4)
    for f in v2_frames:
        start = bench.noisy_joints(f.joints_mm, 5.0, rng)
        res = fit_hand(f.depth_mm, f.intrinsics, start, config=FitConfig(side="both"))
        assert res.side == f.meta["side"]


def test_sequence_calibrates_then_holds_the_shape():
    cfg = FitConfig(shape_mode="calibrate", calibration_frames=3, iterations=3, ik_iterations=2)
    frames = list(sample_sequence(SynthConfig(seed=11), 4))
    state, scales, lengths = None, [], []
    for f in frames:
        res = fit_hand(f.depth_mm, f.intrinsics, f.joints_mm, previous=state, config=cfg)
        state = res.state
        scales.append(res.scale)
        lengths.append(res.finger_lengths)
    assert state.fixed_scale == pytest.approx(float(np.median(scales[:3])))
    assert scales[3] == pytest.approx(state.fixed_scale)
    np.testing.assert_allclose(state.fixed_lengths, np.median(lengths[:3], axis=0))
    np.testing.assert_allclose(lengths[3], state.fixed_lengths)
    assert "start_depth_cost" in res.residual_terms  # the safeguard still compares
    assert np.ptp(np.array(lengths[:3]), axis=0).max() > 0  # estimated per frame before
    assert state.side == "right"


def test_sequence_side_follows_the_network_after_a_wrong_start():
    """A sequence that starts with joints of the wrong chirality does not hold that side:
    once the network's joints turn (confidently) the other way, the fit follows within
    three frames; a single unsure frame does not flip a clear side."""
    frames = list(sample_sequence(SynthConfig(seed=11), 9))  # right hands
    cfg = FitConfig(iterations=2, ik_iterations=2)
    state, sides = None, []
    for i, f in enumerate(frames):
        joints = other_side(f.joints_mm) if i < 3 else f.joints_mm
        res = fit_hand(f.depth_mm, f.intrinsics, joints, previous=state, config=cfg)
        state = res.state
        sides.append(res.side)
    assert sides[:3] == ["left"] * 3 and sides[-3:] == ["right"] * 3, sides
    assert state.side_evidence > 0
    assert choose_sides(side_evidence(np.asarray(frames[0].joints_mm), state), "auto") == [
        "right"]
    # an unsure frame (P(right) 0.3) after a clear run keeps the side
    assert confident_side(math.log(0.3 / 0.7) + SIDE_DECAY * state.side_evidence, 0.9) == "right"
    assert confident_side(math.log(0.3 / 0.7), 0.9) is None  # alone it could not tell


def test_bad_input_is_refused(v1_frames):
    f = v1_frames[0]
    with pytest.raises(ValueError):
        fit_hand(f.depth_mm, f.intrinsics, np.zeros((20, 3)))
    with pytest.raises(ValueError):
        fit_hand(f.depth_mm, f.intrinsics, np.full((21, 3), np.nan))
    with pytest.raises(ValueError):
        fit_hand(f.depth_mm, f.intrinsics, f.joints_mm, np.ones(5))
    with pytest.raises(ValueError):
        FitConfig(side="middle")


def test_no_depth_near_the_joints_gives_inverse_kinematics(v1_frames):
    f = v1_frames[0]
    far = f.joints_mm.astype(np.float64) + np.array([0.0, 0.0, 3000.0])
    res = fit_hand(f.depth_mm, f.intrinsics, far)
    assert not res.observed
    assert bench.frame_error_mm(res.joints_mm, far) < 15.0


def test_bench_reports_a_table(v1_frames):
    out = bench.run(v1_frames[:3], noise_mm=10.0)
    assert out["frames"] == 3 and out["after_mean_mm"] < out["before_mean_mm"]
    table = bench.format_table({"gt+10": out})
    assert "after_mean_mm" in table and "gt+10" in table


def test_safeguard_returns_the_network_joints(v1_frames):
    """A fit that moves too far, or does not explain the depth better, gives the start back."""
    f = v1_frames[1]
    start = bench.noisy_joints(f.joints_mm, 20.0, np.random.default_rng(5))
    fitted = fit_hand(f.depth_mm, f.intrinsics, start)
    assert fitted.fallback == "" and not fitted.fell_back
    terms = fitted.residual_terms
    assert terms["depth_cost"] < terms["start_depth_cost"]  # the fit explains the depth better
    for cfg, why in ((FitConfig(guard_move_mm=1.0), "moved"),
                     (FitConfig(guard_margin=-1.0), "residual")):
        res = fit_hand(f.depth_mm, f.intrinsics, start, config=cfg)
        assert res.fallback == why and res.fell_back
        assert np.allclose(res.joints_mm, start, atol=1e-3)
        assert np.allclose(res.state.joints_mm, start)
        assert res.residual_mm == pytest.approx(terms["start_data_mm"])
    off = fit_hand(f.depth_mm, f.intrinsics, start, config=FitConfig(guard=False,
                                                                     guard_move_mm=1.0))
    assert off.fallback == "" and np.allclose(off.joints_mm, fitted.joints_mm)


def test_both_sides_share_the_budget(v2_frames):
    f = v2_frames[0]
    cfg = FitConfig(side="both", ik_iterations=2, iterations=6, both_sides_iterations=2)
    res = fit_hand(f.depth_mm, f.intrinsics, f.joints_mm, config=cfg)
    assert res.sides_fitted == ("right", "left")
    assert res.iterations == 2 * 2 + 2 * 2 + (6 - 2 + 1)  # IK, both sides, the better goes on
    assert res.side == f.meta["side"]
