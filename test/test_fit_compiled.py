"""The fit's compiled kernels (vvhand_core.fit.compiled) equal their numpy twins.

Each kernel is compared with the numpy code it replaces on a real frame's observation and
a posed hand away from the rest pose (left side, finger lengths off 1, omega off 0), with
the kernels switched off and on (``compiled.ENABLED``); then whole fits, and the two
savings that hold on both paths: the LM skips rows nothing moves, and a side's problem
poses a parameter vector once.
"""

from __future__ import annotations

import numpy as np
import pytest

from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.data.synthetic.hand_model import HandShape
from vvhand_core.fit import (
    FitConfig,
    bench,
    compiled,
    compiled_lm,
    compiled_terms,
    fit_hand,
    problem,
)
from vvhand_core.fit.hand_np import ShapeArrays
from vvhand_core.fit.ik import solve_ik
from vvhand_core.fit.lm import _normal_equations, levenberg_marquardt
from vvhand_core.fit.observe import lookup, observe
from vvhand_core.fit.problem import data_points
from vvhand_core.fit.surface import nearest_surface, round_distances
from vvhand_core.fit.terms import (
    LENGTHS,
    Terms,
    Weights,
    data_term,
    free_term,
    linearise,
    point_pull,
    stack_terms,
)

pytestmark = pytest.mark.skipif(compiled.numba is None, reason="numba is not installed")
SHAPE = ShapeArrays.from_shape(HandShape(), 120.0)


@pytest.fixture(scope="module")
def frames():
    gen = SyntheticHandGenerator(SynthConfig(scene_version=2, seed=5))
    return [gen.frame(i) for i in range(3)]


@pytest.fixture(scope="module")
def scene(frames):
    """(linearisation, observation, data points, candidates, target) of a left hand."""
    f = frames[0]
    target = bench.noisy_joints(f.joints_mm, 15.0, np.random.default_rng(0))
    ik, r0 = solve_ik(target, np.ones(21), SHAPE, True, Weights(), 4, (0.75, 1.3))
    x = ik.x.copy()
    x[:3] = [0.05, -0.02, 0.03]
    x[LENGTHS] = [1.06, 0.93, 1.1, 0.9, 1.03]
    lin = linearise(x, r0, SHAPE, True)
    obs = observe(f.depth_mm, f.intrinsics, lin.joints.mean(0))
    dp = data_points(obs, lin.posed, 40.0, 192, 8)
    return lin, obs, dp.points, dp.candidates, target


def _both(monkeypatch, fn):
    """fn() with the numpy code, then with the kernels."""
    monkeypatch.setattr(compiled, "ENABLED", False)
    reference = fn()
    monkeypatch.setattr(compiled, "ENABLED", True)
    return reference, fn()


def test_pose_kernel_equals_numpy(monkeypatch):
    """Random articulations past the limits, both sides, finger lengths, with and without axes.

    Only the fit asks for the kernel: the generator's grasps keep numpy's rounding.
    """
    from scipy.spatial.transform import Rotation

    from vvhand_core.data.synthetic.hand_model import LIMITS_DEG
    from vvhand_core.fit.hand_np import pose

    rng = np.random.default_rng(6)
    for i in range(12):
        angles = rng.uniform(LIMITS_DEG[:, 0] - 20, LIMITS_DEG[:, 1] + 20)
        rot, trans = Rotation.random(random_state=i).as_matrix(), rng.uniform(-200, 200, 3)
        lengths = None if i % 3 == 0 else rng.uniform(0.85, 1.15, 5)
        args = (angles, rot, trans, 0.9 + 0.02 * i, SHAPE, i % 2 == 1, i % 4 != 0, lengths)
        a, b = _both(monkeypatch, lambda args=args: pose(*args, compiled_kernel=True))
        np.testing.assert_array_equal(pose(*args).points, a.points)  # numpy unless asked
        np.testing.assert_allclose(b.points, a.points, rtol=0, atol=1e-9)
        np.testing.assert_allclose(b.ell_rot, a.ell_rot, rtol=0, atol=1e-12)
        assert (a.axes is None) == (b.axes is None) == (i % 4 == 0) and a.scale == b.scale
        if a.axes is not None:
            np.testing.assert_allclose(b.axes, a.axes, rtol=0, atol=1e-12)


def test_nearest_surface_kernel_equals_numpy(monkeypatch, scene):
    lin, obs, pts, cand, _ = scene
    rng = np.random.default_rng(1)
    # observed points, points inside the hand and far ones: every kind of nearest part
    points = np.concatenate([pts, lin.joints + rng.normal(0, 3, (21, 3)),
                             lin.joints.mean(0) + rng.normal(0, 60, (50, 3))])
    for candidates in (None, np.concatenate([cand, cand[:71]])):
        (d0, g0, p0), (d1, g1, p1) = _both(
            monkeypatch, lambda c=candidates: nearest_surface(points, lin.posed, c))
        np.testing.assert_array_equal(p0, p1)
        assert p0.min() < 46 and p0.max() >= 46  # round parts and an ellipsoid were nearest
        np.testing.assert_allclose(d1, d0, rtol=0, atol=1e-9)
        np.testing.assert_allclose(g1, g0, rtol=0, atol=1e-9)
    (d0, g0, _), (d1, g1, _) = _both(
        monkeypatch, lambda: nearest_surface(points, lin.posed, None, grad=False))
    assert g0 is None and g1 is None
    np.testing.assert_allclose(d1, d0, rtol=0, atol=1e-9)
    r0, r1 = _both(monkeypatch, lambda: round_distances(points, lin.posed))
    np.testing.assert_allclose(r1, r0, rtol=0, atol=1e-3)  # numpy gates in float32


def test_lookup_and_free_term_kernels_equal_numpy(monkeypatch, scene):
    lin, obs, *_ = scene
    rng = np.random.default_rng(2)
    centres, _ = lin.posed.samples()
    # the samples, points beyond the window's edges and behind the camera's near plane
    points = np.concatenate([centres, centres + rng.normal(0, 200, centres.shape),
                             [[0.0, 0.0, 0.5], [1e4, -1e4, 300.0]]])
    (o0, z0), (o1, z1) = _both(monkeypatch, lambda: lookup(obs, points[None]))
    assert o0.shape == o1.shape == (1, len(points))
    assert (o0 > 0).any() and (o0 == 0).any() and (z0 > 0).any() and (z0 == 0).any()
    np.testing.assert_allclose(o1, o0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(z1, z0, rtol=0, atol=1e-9)
    for jac in (False, True):
        ref, out = _both(monkeypatch, lambda j=jac: free_term(lin, obs, 0.5, 6.0, 8.0, j))
        np.testing.assert_allclose(out[0], ref[0], rtol=0, atol=1e-9)
        assert np.abs(ref[0]).sum() > 0
        if jac:
            for a, b in zip(ref[1], out[1]):
                np.testing.assert_allclose(np.asarray(b, float), np.asarray(a, float),
                                           rtol=0, atol=1e-6)


def test_jacobian_rows_kernel_equals_numpy(monkeypatch, scene):
    lin, obs, pts, cand, target = scene
    conf = np.linspace(0.2, 1.0, 21)
    parts = [point_pull(lin, target, conf, 0.3, 25.0, True),
             data_term(lin, pts, 1.0, 3.0, 1.0, True, cand),
             free_term(lin, obs, 0.5, 6.0, 8.0, True)]
    (r0, j0), (r1, j1) = _both(monkeypatch, lambda: stack_terms(lin, parts, True))
    np.testing.assert_array_equal(r0, r1)
    assert (j0[:, 30:] != 0).any() and (j0[:, 29] != 0).any()  # finger lengths, wrist dev
    np.testing.assert_allclose(j1, j0, rtol=0, atol=1e-9 * np.abs(j0).max())


@pytest.mark.parametrize("problem_kind", ["ik", "depth", "depth, every part, sequence"])
def test_the_terms_kernel_equals_the_stacked_numpy_terms(monkeypatch, scene, problem_kind):
    """One compiled evaluation (compiled_terms) gives the numpy terms' rows, in their order:
    the IK's (joints, scale prior), a depth fit's (joints, data points among candidates with
    a count above N, free space, scale and finger length priors) and a sequence's with every
    round part a candidate and the temporal pull."""
    lin, obs, pts, cand, target = scene
    conf = np.linspace(0.2, 1.0, 21)
    x = np.concatenate([[0.05, -0.02, 0.03], lin.t, [lin.s], np.zeros(23), lin.lengths])
    x[7:30] = np.random.default_rng(1).uniform(-5.0, 5.0, 23)  # only the priors read x here
    kinds = {"ik": {"scale_prior": 1.1},
             "depth": dict(points=pts, candidates=cand, count=len(pts) + 9, obs=obs,
                           length_prior=True),
             "depth, every part, sequence": dict(points=pts, obs=obs, length_prior=True,
                                                 prev=target + 4.0)}
    terms = Terms.build(Weights(data_robust=1.5), target, conf, **kinds[problem_kind])
    for jac in (True, False):
        (r0, j0), (r1, j1) = _both(monkeypatch, lambda j=jac: terms.evaluate(lin, x, j))
        np.testing.assert_allclose(r1, r0, rtol=0, atol=1e-12)
        if jac:
            np.testing.assert_allclose(j1, j0, rtol=0, atol=1e-9 * np.abs(j0).max())
            jacobian = j0
        else:
            assert j0 is None and j1 is None
    data, free = terms.depth_parts(r1)
    if problem_kind == "ik":
        assert len(r1) == 64 and len(data) == len(free) == 0
        return
    n = len(pts)
    assert len(data) == n and len(free) == 2 * 92 and np.abs(free).max() > 0
    np.testing.assert_array_equal(data, r1[63:63 + n])
    assert (jacobian[:, 30:] != 0).any() and (jacobian[63:63 + n, 7:30] != 0).any()
    assert (jacobian[63 + n:63 + n + 184] != 0).any()  # free space moves the model somewhere


def test_the_residual_quantile_is_numpys():
    """problem.quantile is np.quantile's linear method, float for float."""
    rng = np.random.default_rng(4)
    for n in (1, 2, 3, 7, 150, 192):
        values = rng.uniform(0.0, 30.0, n)
        for q in (0.0, 0.25, 0.5, 0.7, 0.95, 1.0):
            assert problem.quantile(values, q) == float(np.quantile(values, q))


def test_fits_with_and_without_the_kernels_agree(monkeypatch, frames):
    """Whole fits: the same joints to rounding (chaotic only where a choice flips)."""
    for i, f in enumerate(frames):
        start = bench.noisy_joints(f.joints_mm, 15.0, np.random.default_rng(i))
        a, b = _both(monkeypatch, lambda s=start, f=f: fit_hand(
            f.depth_mm, f.intrinsics, s, config=FitConfig()))
        assert a.sides_fitted == b.sides_fitted and a.fallback == b.fallback
        np.testing.assert_allclose(b.joints_mm, a.joints_mm, rtol=0, atol=1e-3)
        assert b.residual_mm == pytest.approx(a.residual_mm, abs=1e-4)


def _lm_problem(pad=0):
    rng = np.random.default_rng(3)
    a, y = rng.normal(size=(30, 6)), rng.normal(size=30)
    y[:10] += 3.0 * np.tanh(a[:10, 0])  # not linear: several steps, some rejected

    def fn(x, jac):
        r = np.concatenate([a @ x + 0.3 * np.sin(x[1]) * a[:, 2] - y, np.zeros(pad)])
        if not jac:
            return r, None
        j = a.copy()
        j[:, 1] += 0.3 * np.cos(x[1]) * a[:, 2]
        return r, np.concatenate([j, np.zeros((pad, 6))])
    return fn


def test_lm_kernels_equal_numpy_and_skip_rows_that_nothing_moves(monkeypatch):
    """Same steps with the kernels and without, with or without rows of J that are all zero
    (r 0 there: they add nothing); a bound holds some parameters, one is held by its bounds."""
    lo, hi = np.full(6, -0.3), np.full(6, 0.3)
    lo[4] = hi[4] = 0.1
    runs = {}
    for pad in (0, 40):
        runs[pad] = _both(monkeypatch, lambda p=pad: levenberg_marquardt(
            _lm_problem(p), np.zeros(6), lo, hi, 5))
    x = np.array([0.3, 0.1, -0.2, 0.0, 0.1, -0.3])  # at bounds: gradients point out of some
    held = lo >= hi
    for pad in (0, 40):
        r, jac = _lm_problem(pad)(x, True)
        (jtj0, g0), (jtj1, g1) = _both(monkeypatch, lambda r=r, jac=jac: _normal_equations(
            jac, r, x, lo, hi, held))
        r, jac = _lm_problem(0)(x, True)
        full, grad = jac.T @ jac, jac.T @ r
        fixed = held | ((x <= lo) & (grad > 0)) | ((x >= hi) & (grad < 0))
        assert fixed.sum() >= 2 and not fixed.all()
        free = np.outer(~fixed, ~fixed)
        for jtj, g in ((jtj0, g0), (jtj1, g1)):
            np.testing.assert_allclose(jtj, np.where(free, full, 0.0), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(g, np.where(fixed, 0.0, grad), rtol=1e-12, atol=1e-12)
    plain = runs[0][0]
    assert plain.accepted > 1 and plain.x[4] == 0.1 and np.isclose(np.abs(plain.x), 0.3).any()
    for ref, out in runs.values():
        np.testing.assert_allclose(out.x, plain.x, rtol=0, atol=1e-9)
        np.testing.assert_allclose(ref.x, plain.x, rtol=0, atol=1e-9)
        assert out.accepted == ref.accepted == plain.accepted
        assert out.cost == pytest.approx(plain.cost, rel=1e-9)


def test_a_side_poses_each_parameter_vector_once(monkeypatch, frames):
    """The pose cache returns what posing again would, and the fit is the same without it."""
    f = frames[1]
    start = bench.noisy_joints(f.joints_mm, 15.0, np.random.default_rng(5))
    cached = fit_hand(f.depth_mm, f.intrinsics, start, config=FitConfig(side="right"))
    calls = []
    original = problem.SideProblem.linearise

    def uncached(self, x, shape, axes=True):
        calls.append(x.tobytes())
        self._posed.clear()
        return original(self, x, shape, axes)

    monkeypatch.setattr(problem.SideProblem, "linearise", uncached)
    fresh = fit_hand(f.depth_mm, f.intrinsics, start, config=FitConfig(side="right"))
    np.testing.assert_array_equal(cached.joints_mm, fresh.joints_mm)
    assert cached.residual_terms == fresh.residual_terms
    assert len(set(calls)) < len(calls)  # the same vectors are asked for again


def test_a_fit_stage_compiles_the_kernels_when_it_is_made(monkeypatch):
    """Made-up frame at construction: every kernel has run (compiled or loaded) before the
    first real frame."""
    from vvhand_core.fit import stage

    monkeypatch.setattr(stage, "_WARM", [])
    ran = set()
    called = {compiled: ("_nearest", "_round_all", "_lookup", "_pose"),
              compiled_lm: ("_normal", "_step"),
              compiled_terms: ("_evaluate",)}  # the kernels the fit calls from Python
    for module, names in called.items():
        for name in names:
            kernel = getattr(module, name)
            monkeypatch.setattr(module, name,
                                lambda *a, k=kernel, n=name: ran.add(n) or k(*a))
    stage.FitStage(FitConfig())
    assert ran == {n for names in called.values() for n in names}
    ran.clear()
    stage.FitStage(FitConfig())  # once per process
    assert not ran
