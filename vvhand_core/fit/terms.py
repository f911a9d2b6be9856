"""The fit's parameter vector and its residual terms, each with its analytic Jacobian.

Parameters x (35,): [0:3] omega (rad, a rotation applied in the camera frame on top of a
fixed R0: R = exp(omega) R0), [3:6] translation t (mm), [6] scale s, [7:30] the 23 angles
(degrees), [30:35] finger length factors (thumb, index .. pinky; 1: the fitted shape's
lengths; held at 1 unless their bounds allow more). Each term returns weighted residuals
r (m,) whose squares sum to its cost,
``sqrt(weight / count) * psi(e / sigma)`` with the Cauchy-like ``psi`` of :func:`robust`
(so a term's weight is its share of the cost per element whatever its element count),
and their Jacobian (m, 35) by the chain rule: d r / d point (closed form; free space:
finite differences of the bilinear lookup) times the point's velocity
(:mod:`vvhand_core.fit.bodies`). ``test/test_fit.py`` checks them against finite
differences of the whole model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vvhand_core.data.synthetic.hand_model import LIMITS_DEG
from vvhand_core.fit import compiled, compiled_terms
from vvhand_core.fit.bodies import (
    FINGER_ROOT_JOINT,
    JOINT_BODY,
    NUM_PARAMS,
    PART_BODY,
    SAMPLE_BODY,
    jacobian_rows,
    left_jacobian,
)
from vvhand_core.fit.hand_np import HandPose, ShapeArrays, pose
from vvhand_core.fit.observe import Observation, lookup
from vvhand_core.fit.surface import NUM_ROUND, nearest_surface

NUM_FIT_PARAMS = NUM_PARAMS
SCALE_INDEX = 6
ANGLES = slice(7, 30)
LENGTHS = slice(30, 35)
_ROOTS = np.array(FINGER_ROOT_JOINT)


def bounds(scale_range: tuple[float, float], length_range: tuple[float, float] = (1.0, 1.0)
           ) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds (35,) of the parameters.

    Rotation and translation free, scale, joint limits, finger length factors
    (``length_range``: scalars or (5,) each; default: held at 1).
    """
    big = np.full(6, 1e9)
    fl_lo, fl_hi = (np.broadcast_to(np.asarray(v, np.float64), (5,)) for v in length_range)
    lo = np.concatenate([-big, [scale_range[0]], LIMITS_DEG[:, 0], fl_lo])
    hi = np.concatenate([big, [scale_range[1]], LIMITS_DEG[:, 1], fl_hi])
    return lo.astype(np.float64), hi.astype(np.float64)


def pack(rotation_delta, translation_mm, scale: float, angles_deg, finger_lengths=None
         ) -> np.ndarray:
    """Parameter vector (35,) from its parts (finger length factors default to 1)."""
    fl = np.ones(5) if finger_lengths is None else np.asarray(finger_lengths, np.float64)
    return np.concatenate([np.asarray(rotation_delta, np.float64).reshape(3),
                           np.asarray(translation_mm, np.float64).reshape(3), [float(scale)],
                           np.asarray(angles_deg, np.float64).reshape(23), fl.reshape(5)])


def rotation_np(omega: np.ndarray) -> np.ndarray:
    """Rodrigues (numpy): axis-angle (3,) rad -> rotation (3, 3).

    R = cos t I + sin t [k]x + (1 - cos t) k k^T for the unit axis k, from scalars (this
    runs a dozen times per fitted frame).
    """
    x, y, z = omega.tolist()
    theta = math.sqrt(x * x + y * y + z * z)
    if theta < 1e-12:
        return np.eye(3)
    x, y, z = x / theta, y / theta, z / theta
    c, s = math.cos(theta), math.sin(theta)
    v = 1.0 - c
    return np.array([[c + v * x * x, v * x * y - s * z, v * x * z + s * y],
                     [v * x * y + s * z, c + v * y * y, v * y * z - s * x],
                     [v * x * z - s * y, v * y * z + s * x, c + v * z * z]])


def placement(x: np.ndarray, r0: np.ndarray) -> np.ndarray:
    """R = exp(omega) R0 (3, 3) of parameter vector x (35,)."""
    return rotation_np(x[0:3]) @ r0


def model(x: np.ndarray, r0: np.ndarray, shape: ShapeArrays, left: bool,
          axes: bool = False) -> HandPose:
    """The posed hand of parameter vector x (35,) with base rotation r0 (3, 3)."""
    return pose(x[ANGLES], placement(x, r0), x[3:6], float(x[SCALE_INDEX]), shape, left, axes,
                x[LENGTHS], compiled_kernel=True)


@dataclass
class Linearisation:
    """The model at one parameter vector, with what its Jacobians need (camera frame).

    posed: the hand with its joint axes; jl (3, 3) left Jacobian of omega; t (3,); s;
    lengths (5,) the finger length factors.
    """

    posed: HandPose
    jl: np.ndarray
    t: np.ndarray
    s: float
    lengths: np.ndarray

    @property
    def joints(self) -> np.ndarray:
        """(21, 3) mm."""
        return self.posed.joints

    def rows(self, points, bodies, g, scale_extra=None, anchors=None) -> np.ndarray:
        """Jacobian rows (N, 35) for sensitivities g (N, 3) of points on bodies.

        anchors (N, 3): where each point's finger length velocity is taken (``bodies``
        module doc; None: the points).
        """
        p = self.posed
        return jacobian_rows(points, bodies, g, p.axes, p.pivots, self.jl, self.t, self.s,
                             p.points[28], scale_extra, p.points[_ROOTS], self.lengths,
                             anchors)


def linearise(x: np.ndarray, r0: np.ndarray, shape: ShapeArrays, left: bool,
              axes: bool = True) -> Linearisation:
    """The model at x (35,) with its joint axes (without ``axes``: no Jacobians)."""
    return Linearisation(model(x, r0, shape, left, axes), left_jacobian(x[0:3]), x[3:6],
                         float(x[SCALE_INDEX]), x[LENGTHS])


def robust(e: np.ndarray, c: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """psi(e) = sign(e) c sqrt(log(1 + (e / c)^2)) and its derivative d psi / d e.

    Its square is twice Cauchy's rho; psi(e) ~ e near 0.
    """
    u = np.abs(e) / c if c != 1.0 else np.abs(e)
    u2 = u * u
    root = np.sqrt(np.log1p(u2))
    psi = np.copysign(root * c if c != 1.0 else root, e)
    dpsi = u / (np.maximum(root, 1e-150) * (1.0 + u2))
    dpsi[u2 < 1e-8] = 1.0
    return psi, dpsi


@dataclass
class Weights:
    """Term weights (share of the cost per element) and scales (mm).

    joints: pull to the network's joints (sigma ``joint_mm``), data: observed points to
    the model surface (``data_mm``; Cauchy scale ``data_robust`` sigmas), free: model where
    the camera sees past it (``free_mm``, ``front_margin_mm`` of depth tolerated), scale:
    prior on s (``scale_sigma``), length: prior on the finger length factors
    (``length_sigma``; they move only where ``FitConfig.finger_length_range`` lets them),
    temporal: pull to the previous frame's joints (``temporal_mm``).

    Defaults chosen with the leg-3 model on tuning frames no other table reports
    (``benchmarks.splits.TUNING_SPLITS``; ``vvhand bench fit --tuning``, and ``--weights
    joint_mm=15,free=1,scale=0.1`` for the weights before, in docs/results.md): a weak
    scale prior (people's hands differ by +-20 %), a looser joint pull (sigma 25 mm) and
    half the free-space weight. The finger length prior (sigma 0.06, the spread of the
    generator's +-10 % per-finger variation) with ``FitConfig.finger_length_range`` (0.85,
    1.15) lowered the mean error on 16 of the 20 tuning rows against lengths held at the
    mean hand's (``--finger-lengths 1,1``; docs/results.md, 2026-12-02 14:40 UTC). The
    temporal pull's sigma (25 mm, was 10) was chosen on 6 x 30 frames of tuning person-scene
    sequences (seeds 7 + 100 k, not the bench's; leg-4 model, one-off runs: 6.16 mm after
    the fit carried vs 6.76 at 10 mm, 6.42 at 15, 6.87 at 40). Rerunnable with the leg-5
    model: ``vvhand bench fit --tuning --frames 60 --noise-mm '' --sequences 6
    --sequence-frames 30`` with and without ``--weights temporal_mm=10``: 5.51 vs 6.42 mm
    carried, 6.87 per frame (docs/results.md, 2026-12-02 16:42 and 16:43 UTC).
    """

    joints: float = 0.3
    data: float = 1.0
    free: float = 0.5
    scale: float = 0.01
    temporal: float = 0.3
    joint_mm: float = 25.0
    data_mm: float = 3.0
    free_mm: float = 6.0
    front_margin_mm: float = 8.0
    scale_sigma: float = 0.1
    temporal_mm: float = 25.0
    data_robust: float = 1.0
    length: float = 0.01
    length_sigma: float = 0.06

    @property
    def scale_k(self) -> float:
        """The scale prior's factor: sqrt(scale) / scale_sigma."""
        return self.scale ** 0.5 / self.scale_sigma

    @property
    def length_k(self) -> float:
        """The finger length prior's factor: sqrt(length) / length_sigma."""
        return self.length ** 0.5 / self.length_sigma


def _pull_weights(weight: float, conf: np.ndarray) -> np.ndarray:
    """Per-joint factors (21,) of a pull: sqrt(weight * conf[j] / sum(conf))."""
    return np.sqrt(weight * conf / max(float(conf.sum()), 1e-9))


def _shared_factor(weight: float, count: int) -> float:
    """The factor of each of ``count`` residuals sharing ``weight``: sqrt(weight / count)."""
    return (weight / max(count, 1)) ** 0.5


def point_pull(lin: Linearisation, target: np.ndarray, conf: np.ndarray, weight: float,
               sigma_mm: float, jac: bool):
    """Joints to targets (21, 3), joint j weighted by conf[j]: r (63,), J (63, 35)."""
    w = _pull_weights(weight, conf)[:, None]
    psi, dpsi = robust((lin.joints - target) / sigma_mm)
    r = (psi * w).reshape(-1)
    if not jac:
        return r, None
    g = (dpsi * (w / sigma_mm)).reshape(-1)[:, None] * _EYE_ROWS  # row (j, c): e_c dr/dp
    return r, (np.repeat(lin.joints, 3, axis=0), _JOINT_BODY3, g, None, None)


def data_term(lin: Linearisation, points: np.ndarray, weight: float, sigma_mm: float,
              robust_scale: float, jac: bool, candidates: np.ndarray | None = None,
              count: int | None = None):
    """Observed points (N, 3) to the model's surface: r (N,), J (N, 35).

    candidates: the round parts considered per point (``surface.nearest_surface``);
    count: the number of points the weight is shared by (None: N; more than N when some
    of the points first selected were dropped, so that the rest keep their weight).
    """
    d, grad, part = nearest_surface(points, lin.posed, candidates, jac)
    k = _shared_factor(weight, points.shape[0] if count is None else count)
    psi, dpsi = robust(d / sigma_mm, robust_scale)
    if not jac:
        return psi * k, None
    dr_dd = dpsi * (k / sigma_mm)
    # the model moving by v is the point moving by -v: sensitivity -dr/dx
    g = -dr_dd[:, None] * grad
    # a round part's axis point nearest to the data point: its finger length velocity
    radius = lin.posed.shape.round_r.take(np.minimum(part, NUM_ROUND - 1)) * lin.s
    anchors = points - grad * (d + radius)[:, None]
    return psi * k, (points, PART_BODY[part], g, dr_dd * d / lin.s, anchors)


_EYE_ROWS = np.tile(np.eye(3), (21, 1))
_JOINT_BODY3 = np.repeat(JOINT_BODY, 3)
_SAMPLE_BODY2 = np.tile(SAMPLE_BODY, 2)
_STEP_MM = 1e-3
_PROBE = np.concatenate([np.zeros((1, 3)), np.eye(3)]) * _STEP_MM  # (4, 3)


def free_term(lin: Linearisation, obs: Observation, weight: float, sigma_mm: float,
              margin_mm: float, jac: bool):
    """Free space: r (2K,), J (2K, 35).

    Samples projecting past the near pixels, or in front of the observed depth by more
    than the margin. Compiled where numba is (:mod:`.compiled`).
    """
    centres, radii = lin.posed.samples()
    k = _shared_factor(weight, centres.shape[0])
    if compiled.ENABLED:
        r, g, extra = compiled.free_residuals(obs, centres, radii, k, sigma_mm, margin_mm,
                                              lin.s, _STEP_MM, jac)
        return (r, None) if not jac else (r, (np.concatenate([centres, centres]),
                                              _SAMPLE_BODY2, g, extra, None))
    probes = centres[None] + _PROBE[:, None] if jac else centres[None]
    outside, depth = lookup(obs, probes)  # (4 or 1, K)
    front_raw = depth - margin_mm - (probes[..., 2] - radii)
    active = (front_raw[0] > 0) & (depth[0] > 0)
    front = np.where(active, front_raw[0], 0.0)
    psi, dpsi = robust(np.concatenate([outside[0], front]) / sigma_mm)
    if not jac:
        return psi * k, None
    d_out = ((outside[1:] - outside[0]) / _STEP_MM).T  # (K, 3)
    d_front = ((front_raw[1:] - front_raw[0]) / _STEP_MM).T * active[:, None]
    f = dpsi * (k / sigma_mm)
    nk = centres.shape[0]
    g = np.concatenate([d_out * f[:nk, None], d_front * f[nk:, None]])
    extra = np.concatenate([np.zeros_like(radii), f[nk:] * active * radii / lin.s])
    return psi * k, (np.concatenate([centres, centres]), _SAMPLE_BODY2, g, extra, None)


def scale_prior(x: np.ndarray, prior: float, w: Weights, jac: bool):
    """(s - prior) / sigma: r (1,), J (1, 35)."""
    k = w.scale_k
    r = (x[SCALE_INDEX:SCALE_INDEX + 1] - prior) * k
    if not jac:
        return r, None
    j = np.zeros((1, NUM_FIT_PARAMS))
    j[0, SCALE_INDEX] = k
    return r, j


def length_prior(x: np.ndarray, w: Weights, jac: bool):
    """(l_f - 1) / sigma per finger: r (5,), J (5, 35)."""
    k = w.length_k
    r = (x[LENGTHS] - 1.0) * k
    if not jac:
        return r, None
    j = np.zeros((5, NUM_FIT_PARAMS))
    j[np.arange(5), np.arange(30, 35)] = k
    return r, j


def stack_terms(lin: Linearisation, parts, jac: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """All terms' residuals (m,) and Jacobian (m, 35).

    A term gives (r, J) or (r, its points' sensitivities (points, bodies, g, scale extra
    or None, anchors or None)); the latter's rows are made in one :func:`jacobian_rows`
    call.
    """
    if not jac:
        return np.concatenate([p[0] for p in parts]), None
    chain = [p for p in parts if isinstance(p[1], tuple)]
    direct = [p for p in parts if not isinstance(p[1], tuple)]
    r = np.concatenate([p[0] for p in chain + direct])
    if not chain:
        return r, np.concatenate([p[1] for p in direct])
    sens = [p[1] for p in chain]
    extra = np.concatenate([np.zeros(len(x[0])) if x[3] is None else x[3] for x in sens])
    anchors = np.concatenate([x[0] if x[4] is None else x[4] for x in sens])
    rows = lin.rows(*(np.concatenate([x[k] for x in sens]) for k in range(3)), extra, anchors)
    return r, np.concatenate([rows] + [p[1] for p in direct])


def free_space_cost(obs: Observation, posed: HandPose, margin_mm: float = 8.0) -> float:
    """Mean violation (mm) of the free-space constraints (outside + in front), unweighted."""
    centres, radii = posed.samples()
    outside, depth = lookup(obs, centres)
    front = np.maximum(depth - margin_mm - (centres[:, 2] - radii), 0.0)
    front = np.where(depth > 0, front, 0.0)
    return float((outside + front).mean())


@dataclass
class Terms:
    """One LM problem's residual terms, all but the model (the IK's, or a side's depth fit).

    target (21, 3) network joints mm and conf (21,) their confidence; prev (21, 3) the
    last fit's joints (the temporal pull; None: none); points (N, 3) / candidates: the data
    points (None: no data term); obs: the free-space observation (None: no free-space
    term); length_prior: whether the finger length prior is a term. ``build`` takes the
    weights; the ``*_w`` / ``*_k`` fields are the factors the term functions compute
    from them, once per problem. :meth:`evaluate` returns every term's rows in one
    order (``compiled_terms`` module doc).
    """

    w: Weights
    target: np.ndarray
    conf: np.ndarray
    prev: np.ndarray | None
    points: np.ndarray | None
    candidates: np.ndarray | None
    count: int | None
    obs: Observation | None
    length_prior: bool
    scale_prior: float
    joint_w: np.ndarray
    temporal_w: np.ndarray
    data_k: float
    free_k: float

    @staticmethod
    def build(w: Weights, target: np.ndarray, conf: np.ndarray, prev: np.ndarray | None = None,
              points: np.ndarray | None = None, candidates: np.ndarray | None = None,
              count: int | None = None, obs: Observation | None = None,
              length_prior: bool = False, scale_prior: float = 1.0) -> Terms:
        """The terms of a problem (arguments: class doc; ``prev`` used when w.temporal > 0)."""
        conf = np.ascontiguousarray(conf, np.float64)
        prev = None if prev is None or w.temporal <= 0 else np.ascontiguousarray(prev, np.float64)
        n = 0 if points is None else len(points)
        cand = None if candidates is None else np.ascontiguousarray(candidates, np.int64)
        return Terms(
            w, np.ascontiguousarray(target, np.float64), conf, prev,
            None if points is None else np.ascontiguousarray(points, np.float64), cand, count, obs,
            length_prior, scale_prior, _pull_weights(w.joints, conf),
            _pull_weights(w.temporal, _ONES21),
            _shared_factor(w.data, n if count is None else count),
            _shared_factor(w.free, NUM_SAMPLES))

    scale_k = property(lambda self: self.w.scale_k)
    length_k = property(lambda self: self.w.length_k)
    joint_mm = property(lambda self: self.w.joint_mm)
    temporal_mm = property(lambda self: self.w.temporal_mm)
    data_mm = property(lambda self: self.w.data_mm)
    data_robust = property(lambda self: self.w.data_robust)
    free_mm = property(lambda self: self.w.free_mm)
    margin_mm = property(lambda self: self.w.front_margin_mm)
    step_mm = _STEP_MM

    def evaluate(self, lin: Linearisation, x: np.ndarray, jac: bool
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        """Residuals (m,) and Jacobian (m, 35) (or None) at x, lin its linearisation.

        One compiled kernel where numba is (:mod:`.compiled_terms`), else the term functions
        above stacked; the same rows either way.
        """
        if compiled.ENABLED:
            return compiled_terms.residuals(lin, x, self, jac)
        w = self.w
        parts = [point_pull(lin, self.target, self.conf, w.joints, w.joint_mm, jac)]
        if self.points is not None and len(self.points):
            parts.append(data_term(lin, self.points, w.data, w.data_mm, w.data_robust, jac,
                                   self.candidates, self.count))
        if self.obs is not None:
            parts.append(free_term(lin, self.obs, w.free, w.free_mm, w.front_margin_mm, jac))
        if self.prev is not None:
            parts.append(point_pull(lin, self.prev, _ONES21, w.temporal, w.temporal_mm, jac))
        parts.append(scale_prior(x, self.scale_prior, w, jac))
        if self.length_prior:
            parts.append(length_prior(x, w, jac))
        return stack_terms(lin, parts, jac)

    def depth_parts(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The data term's residuals (N,) and the free-space term's (2K,) within r."""
        n = 0 if self.points is None else len(self.points)
        k = 0 if self.obs is None else 2 * NUM_SAMPLES
        return r[63:63 + n], r[63 + n:63 + n + k]


NUM_SAMPLES = len(SAMPLE_BODY)  # free-space samples per hand (HandPose.samples)
_ONES21 = np.ones(21)
