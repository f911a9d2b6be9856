"""Fit the articulated hand model to one depth image, starting from a network's 21 joints.

``fit_hand(depth_mm, intrinsics, joints_mm, joint_confidence, previous, config)``:

1. side: the chirality of the network's joints (:mod:`vvhand_core.side`), the side held
   in a sequence, a fixed one, or both sides fitted and the lower cost kept;
2. inverse kinematics (:mod:`.ik`): placement, scale and angles from the joints;
3. a fixed budget of Levenberg-Marquardt iterations on: observed points near the hand to
   the model's surface, free space (the model must not project where the camera sees past
   the hand, nor stand in front of the observed depth), the pull toward the network's
   joints weighted by confidence, a scale prior and, in sequences, a pull toward the
   previous fit; the angles stay within the joint limits.

The fit never sees a frame's true hand shape: it uses the mean shape (``HandShape()``)
times its own scale, estimated per frame or, with ``shape_mode="calibrate"``, as the
median of the first ``calibration_frames`` frames' estimates and then held.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from vvhand_core.camera import Intrinsics
from vvhand_core.data.synthetic.hand_model import HandShape
from vvhand_core.fit.ik import solve_ik
from vvhand_core.fit.kinematics import Posed, ShapeTensors
from vvhand_core.fit.lm import levenberg_marquardt
from vvhand_core.fit.observe import Observation, observe
from vvhand_core.fit.surface import NUM_ROUND, candidate_parts, nearest_surface
from vvhand_core.fit.terms import (
    ANGLES,
    SCALE_INDEX,
    Weights,
    bounds,
    data_term,
    free_space_cost,
    free_term,
    linearise,
    model,
    placement,
    point_pull,
    scale_prior,
    stack_terms,
)
from vvhand_core.side import right_probability, side_score
from vvhand_core.skeletons import HANDS2019_21

SIDE_MODES = ("auto", "right", "left", "both")
SHAPE_MODES = ("frame", "calibrate")


@dataclass(frozen=True)
class FitConfig:
    """How the fit runs. Units: mm, degrees; budgets are iteration counts.

    side: auto (the joints' chirality when P(side) >= ``side_margin``, else both; held in
    sequences), right, left, or both (fit both, keep the lower cost). shape_mode: frame
    (scale estimated every frame) or calibrate (median of the first
    ``calibration_frames`` estimates, then held).
    candidates: the nearest primitives (at the start of the depth fit) that each data point
    may be matched to (46: all). hand_shape: the proportions fitted (times the scale);
    None = the mean hand, ``HandShape()`` (the honest choice: a frame's true shape is unknown).
    """

    ik_iterations: int = 4
    iterations: int = 8
    max_points: int = 192
    radius_mm: float = 160.0
    window_px: int = 80
    gate_mm: float = 40.0
    candidates: int = 8
    forearm_mm: float = 120.0
    scale_range: tuple[float, float] = (0.75, 1.3)
    side: str = "auto"
    side_margin: float = 0.9
    shape_mode: str = "frame"
    calibration_frames: int = 10
    weights: Weights = field(default_factory=Weights)
    hand_shape: HandShape | None = None

    def __post_init__(self) -> None:
        """Validate the choices and budgets."""
        if self.side not in SIDE_MODES:
            raise ValueError(f"side must be one of {SIDE_MODES}, got {self.side!r}")
        if self.shape_mode not in SHAPE_MODES:
            raise ValueError(f"shape_mode must be one of {SHAPE_MODES}, got {self.shape_mode!r}")
        if self.ik_iterations < 0 or self.iterations < 0 or self.max_points < 1:
            raise ValueError("ik_iterations >= 0, iterations >= 0 and max_points >= 1 needed")


@dataclass
class FitState:
    """What a sequence carries from frame to frame: the last fit and the shape estimate."""

    joints_mm: np.ndarray
    side: str
    scale_estimates: list[float]
    fixed_scale: float | None = None


@dataclass
class FitResult:
    """One frame's fit (camera frame, mm, degrees).

    joints_mm (21, 3) HANDS2019_21; angles_deg (23,) ``PARAM_NAMES`` order; rotation (3, 3)
    and translation_mm (3,) of the placement (``kinematics`` module doc); scale; side;
    residual_mm: how badly the model explains the data (see ``residual_terms``: mean
    distance of the observed points to the model, free-space violation, distance to the
    network's joints); iterations: LM model calls (IK + depth, all sides fitted);
    observed: whether a depth window was used (False: IK alone); cost: the final LM cost;
    state: pass as ``previous`` to the next frame; sides_fitted: the sides tried.
    """

    joints_mm: np.ndarray
    angles_deg: np.ndarray
    rotation: np.ndarray
    translation_mm: np.ndarray
    scale: float
    side: str
    residual_mm: float
    residual_terms: dict[str, float]
    iterations: int
    observed: bool
    cost: float
    state: FitState
    sides_fitted: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)


_SHAPES: dict[tuple, ShapeTensors] = {}


def _shape(cfg: FitConfig) -> ShapeTensors:
    key = (cfg.hand_shape, cfg.forearm_mm)
    if key not in _SHAPES:
        if len(_SHAPES) > 16:
            _SHAPES.clear()
        _SHAPES[key] = ShapeTensors.from_shape(cfg.hand_shape).with_forearm(cfg.forearm_mm)
    return _SHAPES[key]


def choose_sides(joints_mm: np.ndarray, previous: FitState | None, mode: str,
                 margin: float = 0.9) -> list[str]:
    """Sides to fit.

    Fixed, held from the sequence, both, or (auto) the side of the joints' chirality
    when its probability reaches ``margin``, else both.
    """
    if mode in ("right", "left"):
        return [mode]
    if mode == "both":
        return ["right", "left"]
    if previous is not None:
        return [previous.side]
    p_right = right_probability(side_score(joints_mm, HANDS2019_21))
    if max(p_right, 1.0 - p_right) < margin:
        return ["right", "left"]
    return ["right" if p_right >= 0.5 else "left"]


def _data_points(obs: Observation, posed: Posed, cfg: FitConfig) -> torch.Tensor:
    """Observed points within ``gate_mm`` of the model (hand 0), at most ``max_points``."""
    pts = obs.points_mm
    if len(pts) > 3 * cfg.max_points:  # a uniform pre-thinning bounds the gating cost
        pts = pts[torch.linspace(0, len(pts) - 1, 3 * cfg.max_points).long()]
    d = nearest_surface(pts, posed)[0]
    pts = pts[d.abs() < cfg.gate_mm]
    if len(pts) > cfg.max_points:
        pts = pts[torch.linspace(0, len(pts) - 1, cfg.max_points).long()]
    return pts


def _fit_side(depth_mm, intr, target, conf, left, previous, cfg, timings):
    """IK then the depth fit for one side: (x, r0, cost, observation, points, calls)."""
    w = cfg.weights
    prev_j = None if previous is None else previous.joints_mm
    fixed = None if previous is None else previous.fixed_scale
    t0 = time.perf_counter()
    shape = _shape(cfg)
    ik, r0 = solve_ik(target, conf, shape, left, w, cfg.ik_iterations, cfg.scale_range,
                      previous_joints_mm=prev_j, fixed_scale=fixed)  # fmt: skip
    timings["ik"] = timings.get("ik", 0.0) + (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    x, calls = ik.x, ik.evaluations
    posed = model(x, r0, shape, left)
    obs = observe(depth_mm, intr, posed.joints[0].mean(0).numpy(), cfg.radius_mm, cfg.window_px)
    pts = None if obs is None else _data_points(obs, posed, cfg)
    timings["observe"] = timings.get("observe", 0.0) + (time.perf_counter() - t0) * 1e3
    if obs is None or len(pts) == 0 or cfg.iterations == 0:
        return x, r0, ik.cost, obs, pts, calls
    t0 = time.perf_counter()
    tgt = torch.as_tensor(target, dtype=torch.float64)
    cf = torch.as_tensor(conf, dtype=torch.float64)
    prev = None if prev_j is None else torch.as_tensor(prev_j, dtype=torch.float64)
    lo, hi = bounds(cfg.scale_range if fixed is None else (fixed, fixed))

    ones = torch.ones(21, dtype=torch.float64)
    cand = candidate_parts(pts, posed, cfg.candidates) if cfg.candidates < NUM_ROUND else None

    def residuals(xx: torch.Tensor, jac: bool):
        lin = linearise(xx, r0, shape, left)
        parts = [point_pull(lin, tgt, cf, w.joints, w.joint_mm, jac),
                 data_term(lin, pts, w.data, w.data_mm, w.data_robust, jac, cand),
                 free_term(lin, obs, w.free, w.free_mm, w.front_margin_mm, jac),
                 scale_prior(xx, 1.0, w, jac)]
        if prev is not None and w.temporal > 0:
            parts.append(point_pull(lin, prev, ones, w.temporal, w.temporal_mm, jac))
        return stack_terms(lin, parts, jac)

    res = levenberg_marquardt(residuals, x, lo, hi, cfg.iterations)
    timings["fit"] = timings.get("fit", 0.0) + (time.perf_counter() - t0) * 1e3
    return res.x, r0, res.cost, obs, pts, calls + res.evaluations


def residual_terms(posed: Posed, target: np.ndarray, obs: Observation | None,
                   pts: torch.Tensor | None) -> dict[str, float]:
    """Diagnostics of a fit (hand 0 of ``posed``).

    data_mm (mean |distance| of the data points to the model, each capped at 30 mm),
    free_mm (mean free-space violation) and joints_mm (mean distance of the fitted joints
    to the network's).
    """
    out = {"joints_mm": float(np.linalg.norm(posed.joints[0].numpy() - target, axis=1).mean())}
    if obs is not None and pts is not None and len(pts):
        d = nearest_surface(pts, posed)[0].abs().clamp_max(30.0)
        out["data_mm"] = float(d.mean())
        out["free_mm"] = float(free_space_cost(obs, posed)[0])
    return out


def fit_hand(depth_mm: np.ndarray, intrinsics: Intrinsics, joints_mm: np.ndarray,
             joint_confidence: np.ndarray | None = None, previous: FitState | None = None,
             config: FitConfig | None = None) -> FitResult:
    """Fit the hand model to a depth image (H, W) mm (0 / NaN invalid) from 21 joints.

    joints_mm (21, 3) camera mm (HANDS2019_21, e.g. ``HandPoseResult.joints_mm``);
    joint_confidence (21,) in [0, 1] or None (all 1); previous: the last frame's
    ``FitResult.state`` in a sequence, else None. ValueError for bad shapes or
    non-finite joints.
    """
    cfg = config or FitConfig()
    target = np.asarray(joints_mm, dtype=np.float64)
    if target.shape != (21, 3) or not np.isfinite(target).all():
        raise ValueError(f"joints_mm must be finite (21, 3), got shape {target.shape}")
    conf = np.ones(21) if joint_confidence is None else np.asarray(joint_confidence, np.float64)
    if conf.shape != (21,):
        raise ValueError(f"joint_confidence must be (21,), got {conf.shape}")
    conf = np.where(np.isfinite(conf), np.clip(conf, 0.0, 1.0), 1.0)
    if conf.sum() <= 1e-6:
        conf = np.ones(21)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    best, calls = None, 0
    sides = choose_sides(target, previous, cfg.side, cfg.side_margin)
    for side in sides:
        out = _fit_side(depth_mm, intrinsics, target, conf, side == "left", previous, cfg,
                        timings)  # fmt: skip
        calls += out[5]
        if best is None or out[2] < best[1][2]:
            best = (side, out)
    side, (x, r0, cost, obs, pts, _) = best
    posed = model(x, r0, _shape(cfg), side == "left")
    terms = residual_terms(posed, target, obs, pts)
    scale = float(x[SCALE_INDEX])
    joints = posed.joints[0].numpy()
    state = _next_state(previous, joints, side, scale, cfg)
    timings["total"] = (time.perf_counter() - t_start) * 1e3
    rot = placement(x, r0).numpy()
    return FitResult(
        joints_mm=joints.astype(np.float32), angles_deg=x[ANGLES].numpy().copy(),
        rotation=rot, translation_mm=x[3:6].numpy().copy(), scale=scale, side=side,
        residual_mm=terms.get("data_mm", terms["joints_mm"]), residual_terms=terms,
        iterations=calls, observed=obs is not None, cost=cost, state=state, timings_ms=timings,
        sides_fitted=tuple(sides),
    )  # fmt: skip


def _next_state(previous: FitState | None, joints: np.ndarray, side: str, scale: float,
                cfg: FitConfig) -> FitState:
    """The sequence state after this frame (calibrated scale held once enough frames)."""
    est = ([] if previous is None else list(previous.scale_estimates)) + [scale]
    fixed = None if previous is None else previous.fixed_scale
    if cfg.shape_mode == "calibrate" and fixed is None and len(est) >= cfg.calibration_frames:
        fixed = float(np.median(est))
    state = FitState(joints_mm=joints, side=side, scale_estimates=est, fixed_scale=fixed)
    return replace(state) if cfg.shape_mode == "calibrate" else replace(state, fixed_scale=None)
