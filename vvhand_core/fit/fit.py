"""Fit the articulated hand model to one depth image, starting from a network's 21 joints.

``fit_hand(depth_mm, intrinsics, joints_mm, joint_confidence, previous, config)``:

1. side: the chirality of the network's joints (:mod:`vvhand_core.side`; in a sequence
   the evidence of the frames before, decayed, added as log-odds), a fixed one, or both
   sides fitted and the lower cost kept when the evidence is not clear;
2. inverse kinematics (:mod:`.ik`): placement, scale and angles from the joints;
3. a fixed budget of Levenberg-Marquardt iterations on: observed points near the hand to
   the model's surface, free space (the model must not project where the camera sees past
   the hand, nor stand in front of the observed depth; surfaces in front of it may hide
   it), the pull toward the network's joints weighted by confidence, a scale prior and,
   in sequences, a pull toward the previous fit; the angles stay within the joint limits.
   With both sides, each gets ``both_sides_iterations`` and the lower cost goes on with
   the rest of the budget. What the hand model cannot explain must not pull it: the data
   points are those within ``gate_mm`` of the IK model, less those on a large plane found
   away from the hand (``plane_mm``: a table, a wall; :mod:`.planes`), and after
   ``explain_after`` iterations (and the side's choice) those the model still does not
   explain (farther than ``explain_mm``: a held object, the other hand) are dropped for
   the rest of the budget; where they hid fingers, the network's joints and the joint
   limits hold them;
4. the safeguard (``guard``): when the fitted model explains the depth worse than the
   model at the network's joints (the IK start) does, by the same terms (the data and
   free-space parts of the LM cost on the data points kept, recorded as the fit evaluates
   them; after points were dropped the IK start is evaluated once more), its joints
   moved implausibly far from the network's (mean > ``guard_move_mm``), or neither the
   network nor the depth shows a hand that the model takes (the IK start lies farther than
   ``guard_start_mm`` from the network's joints, mean, and the fitted model's residual is
   above ``guard_residual_mm``: from joints that no hand of the model reaches, the depth
   fit lands in a wrong pose, often the other side's, that explains the depth badly too),
   the network's joints are returned (``FitResult.fallback`` says why).

The fit never sees a frame's true hand shape: it uses the mean shape (``HandShape()``)
times its own scale and its own finger length factors (one per finger, within
``finger_length_range``, pulled toward 1), estimated per frame or, with
``shape_mode="calibrate"``, as the median of the first ``calibration_frames`` frames'
estimates and then held.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_core.data.synthetic.hand_model import HandShape
from vvhand_core.fit.hand_np import ShapeArrays
from vvhand_core.fit.problem import (
    SideProblem,
    drop_unexplained,
    refine,
    residual_terms,
    start,
)
from vvhand_core.fit.terms import ANGLES, LENGTHS, SCALE_INDEX, Weights, placement
from vvhand_core.side import confident_side, right_probability, side_score
from vvhand_core.skeletons import HANDS2019_21

SIDE_MODES = ("auto", "right", "left", "both")
SHAPE_MODES = ("frame", "calibrate")


@dataclass(frozen=True)
class FitConfig:
    """How the fit runs. Units: mm, degrees; budgets are iteration counts.

    side: auto (the joints' chirality, in sequences with the evidence of the frames before
    (``side_evidence``), when P(side) >= ``side_margin``, else both), right, left, or both
    (fit both, keep the lower cost). shape_mode: frame
    (scale estimated every frame) or calibrate (median of the first
    ``calibration_frames`` estimates, then held; scale and finger lengths alike).
    finger_length_range: bounds of the per-finger length factors the depth fit estimates
    ((1, 1): the fitted shape's lengths).
    candidates: the nearest primitives (at the start of the depth fit) that each data point
    may be matched to (46: all). hand_shape: the proportions fitted (times the scale);
    None = the mean hand, ``HandShape()`` (the honest choice: a frame's true shape is unknown).
    both_sides_iterations: depth iterations each side gets before the better one goes on
    (the chosen side gets ``iterations`` LM steps in all). guard: the safeguard (module
    doc); guard_margin: how much worse (relative, the depth terms' part of the LM cost)
    the fit may explain the depth than the IK start at the network's joints does before
    it is refused; guard_move_mm: the largest mean distance of the fitted joints from the
    network's that is believed; guard_start_mm / guard_residual_mm: the fit is also refused
    when the IK start is farther than guard_start_mm from the network's joints (mean) and
    the fit's residual is above guard_residual_mm (module doc; guard_start_mm 0: never).
    gate_mm: data points farther than this from the IK start's
    model are not used; residual_gate_mm: the residual measures the points this near the
    IK start's model (``problem.residual_terms``); plane_mm: points within this of the
    plane that holds at least ``plane_share`` of the points away from the hand are not
    used (0: no plane is looked for); explain_mm / explain_after: after ``explain_after``
    depth iterations (at least ``both_sides_iterations`` when both sides are fitted) the
    points farther than ``explain_mm`` from the model are dropped (0: never; module doc).
    These were chosen on tuning frames (``vvhand bench fit --tuning``, v3 seed 7, and
    the tuning sequences; docs/results.md).
    max_residual_mm: frames whose fit residual
    (``FitResult.residual_mm``) is larger are reported as no hand by the pipeline
    (``fit.stage``; 0 = never): with no hand in view the localiser can pick something
    hand-like, which the hand model explains badly (docs/ros.md, "Phantom hands").
    """

    ik_iterations: int = 4
    iterations: int = 8
    max_points: int = 192
    radius_mm: float = 160.0
    window_px: int = 80
    gate_mm: float = 30.0
    residual_gate_mm: float = 25.0
    explain_mm: float = 6.0
    explain_after: int = 6
    plane_mm: float = 4.0
    plane_share: float = 0.3
    candidates: int = 8
    forearm_mm: float = 120.0
    scale_range: tuple[float, float] = (0.75, 1.3)
    finger_length_range: tuple[float, float] = (0.85, 1.15)
    side: str = "auto"
    side_margin: float = 0.9
    both_sides_iterations: int = 4
    shape_mode: str = "frame"
    calibration_frames: int = 10
    weights: Weights = field(default_factory=Weights)
    hand_shape: HandShape | None = None
    guard: bool = True
    guard_margin: float = 0.0
    guard_move_mm: float = 45.0
    guard_start_mm: float = 12.0
    guard_residual_mm: float = 5.0
    max_residual_mm: float = 0.0

    def __post_init__(self) -> None:
        """Validate the choices and budgets."""
        if self.side not in SIDE_MODES:
            raise ValueError(f"side must be one of {SIDE_MODES}, got {self.side!r}")
        if self.shape_mode not in SHAPE_MODES:
            raise ValueError(f"shape_mode must be one of {SHAPE_MODES}, got {self.shape_mode!r}")
        if self.ik_iterations < 0 or self.iterations < 0 or self.max_points < 1:
            raise ValueError("ik_iterations >= 0, iterations >= 0 and max_points >= 1 needed")
        if self.explain_mm < 0 or self.explain_after < 1 or self.plane_mm < 0:
            raise ValueError(f"explain_mm >= 0, plane_mm >= 0 (0 = off) and explain_after "
                             f">= 1 needed, got {self.explain_mm}, {self.plane_mm}, "
                             f"{self.explain_after}")
        if not 0 < self.plane_share <= 1:
            raise ValueError(f"plane_share must be in (0, 1], got {self.plane_share}")
        if self.both_sides_iterations < 1 or self.candidates < 1 or self.calibration_frames < 1:
            raise ValueError("both_sides_iterations, candidates and calibration_frames >= 1 "
                             "needed")
        if not (self.guard_start_mm >= 0 and self.guard_residual_mm >= 0):
            raise ValueError(f"guard_start_mm and guard_residual_mm must be >= 0, got "
                             f"{self.guard_start_mm}, {self.guard_residual_mm}")
        if not self.max_residual_mm >= 0:
            raise ValueError(f"max_residual_mm must be >= 0 (0 = off), got "
                             f"{self.max_residual_mm}")
        lo, hi = self.finger_length_range
        if not 0 < lo <= 1 <= hi:
            raise ValueError(f"finger_length_range must hold 1 within (0, inf), got {lo, hi}")


@dataclass
class FitState:
    """What a sequence carries from frame to frame: the last fit and the shape estimate.

    side: the last fit's; side_evidence: log-odds that the hand is a right one, from the
    network's chirality over the frames so far (``side_evidence``); length_estimates: the
    finger length factors (5,) per frame; fixed_lengths (5,) once calibrated
    (``shape_mode="calibrate"``).
    """

    joints_mm: np.ndarray
    side: str
    scale_estimates: list[float]
    fixed_scale: float | None = None
    length_estimates: list[np.ndarray] = field(default_factory=list)
    fixed_lengths: np.ndarray | None = None
    side_evidence: float = 0.0


@dataclass
class FitResult:
    """One frame's fit (camera frame, mm, degrees).

    joints_mm (21, 3) HANDS2019_21; angles_deg (23,) ``PARAM_NAMES`` order; rotation (3, 3)
    and translation_mm (3,) of the placement (``hand_np`` module doc); scale;
    finger_lengths (5,) the finger length factors (thumb, index .. pinky) on the mean
    shape's lengths; side;
    residual_mm: how badly the model explains the data (see ``residual_terms``: the
    distance within which most of the observed points near the hand lie from the model,
    their mean distance, free-space violation, distance to the network's joints;
    ``start_*``: the same at the IK start; dropped: the share of the data points the fit
    dropped as unexplained); iterations: LM model calls
    (IK + depth, all sides fitted); observed: whether a depth window was used (False: IK
    alone); cost: the final LM cost; state: pass as ``previous`` to the next frame;
    sides_fitted: the sides tried; fallback: "" when the fit is returned, else why the
    safeguard returned the network's joints ("residual", "moved" or "unexplained"; the model
    parameters are then the IK start's, the residual the IK start's data residual).
    """

    joints_mm: np.ndarray
    angles_deg: np.ndarray
    rotation: np.ndarray
    translation_mm: np.ndarray
    scale: float
    finger_lengths: np.ndarray
    side: str
    residual_mm: float
    residual_terms: dict[str, float]
    iterations: int
    observed: bool
    cost: float
    state: FitState
    sides_fitted: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    fallback: str = ""

    @property
    def fell_back(self) -> bool:
        """Whether the network's joints were returned instead of the fit's."""
        return bool(self.fallback)


@functools.lru_cache(maxsize=16)
def _shape_arrays(hand_shape: HandShape | None, forearm_mm: float) -> ShapeArrays:
    """The fitted hand's arrays (a pure function of its arguments, so memoised)."""
    return ShapeArrays.from_shape(hand_shape, forearm_mm)


def _shape(cfg: FitConfig) -> ShapeArrays:
    return _shape_arrays(cfg.hand_shape, cfg.forearm_mm)


SIDE_DECAY = 0.7  # share of a sequence's side evidence carried to the next frame


def _logit(p: float) -> float:
    p = min(max(p, 0.01), 0.99)  # one frame's chirality counts at most log(99)
    return math.log(p / (1.0 - p))


def side_evidence(joints_mm: np.ndarray, previous: FitState | None) -> float:
    """Log-odds that the hand is a right one.

    The joints' chirality plus, in a sequence, ``SIDE_DECAY`` times the evidence before:
    a held side follows the network within a few frames of a confident change, and one
    unsure frame does not flip it.
    """
    evidence = _logit(right_probability(side_score(joints_mm, HANDS2019_21)))
    return evidence + (0.0 if previous is None else SIDE_DECAY * previous.side_evidence)


def choose_sides(evidence: float, mode: str, margin: float = 0.9) -> list[str]:
    """Sides to fit.

    Fixed, both, or (auto) the side of the :func:`side_evidence` ``evidence`` (the joints'
    chirality, and in a sequence the frames' before) when its probability reaches
    ``margin``, else both.
    """
    if mode in ("right", "left"):
        return [mode]
    if mode == "both":
        return ["right", "left"]
    side = confident_side(evidence, margin)
    return ["right", "left"] if side is None else [side]


def _check_inputs(joints_mm, joint_confidence) -> tuple[np.ndarray, np.ndarray]:
    target = np.asarray(joints_mm, dtype=np.float64)
    if target.shape != (21, 3) or not np.isfinite(target).all():
        raise ValueError(f"joints_mm must be finite (21, 3), got shape {target.shape}")
    conf = np.ones(21) if joint_confidence is None else np.asarray(joint_confidence, np.float64)
    if conf.shape != (21,):
        raise ValueError(f"joint_confidence must be (21,), got {conf.shape}")
    conf = np.where(np.isfinite(conf), np.clip(conf, 0.0, 1.0), 1.0)
    return target, (np.ones(21) if conf.sum() <= 1e-6 else conf)


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
    target, conf = _check_inputs(joints_mm, joint_confidence)
    t_start = time.perf_counter()
    shape = _shape(cfg)
    fixed = None if previous is None else previous.fixed_scale
    held = None if previous is None else previous.fixed_lengths
    lengths = cfg.finger_length_range if held is None else (held, held)
    evidence = side_evidence(target, previous)  # chooses the side, carried in the state
    sides = choose_sides(evidence, cfg.side, cfg.side_margin)
    # the previous fit's joints pull only a fit of the same side (not a side being changed)
    same_side = previous is not None and sides == [previous.side]
    prev_j = previous.joints_mm if same_side else None
    problems: list[SideProblem] = []
    for side in sides:
        problems.append(start(depth_mm, intrinsics, target, conf, side, shape, cfg, prev_j,
                              fixed, problems[0].obs if problems else None, held))
    timings = {"start": (time.perf_counter() - t_start) * 1e3}
    t0 = time.perf_counter()
    best = _depth_fit(problems, target, conf, shape, cfg, prev_j, fixed, lengths)
    timings["fit"] = (time.perf_counter() - t0) * 1e3
    result = _result(best, target, shape, cfg, previous, evidence)
    result.iterations = sum(p.calls for p in problems)
    result.sides_fitted = tuple(sides)
    timings["total"] = (time.perf_counter() - t_start) * 1e3
    result.timings_ms = timings
    return result


def _depth_fit(problems: list[SideProblem], target: np.ndarray, conf: np.ndarray,
               shape: ShapeArrays, cfg: FitConfig, prev_j: np.ndarray | None,
               fixed: float | None, lengths) -> SideProblem:
    """The depth LM of step 3 (module doc) on each side's problem; returns the best side.

    The budget runs in chunks: up to the side's choice (both sides), up to the dropping of
    unexplained points, then the rest; each chunk after the first starts with one more
    model call (LM restarts at the point the last chunk ended).
    """
    both = len(problems) > 1
    choose = cfg.both_sides_iterations if both else 0
    drop = max(cfg.explain_after, choose) if cfg.explain_mm > 0 else 0
    stops = sorted({b for b in (choose, drop) if 0 < b < cfg.iterations} | {cfg.iterations})
    alive, done = list(problems), 0
    for stop in stops:
        for p in alive:
            refine(p, target, conf, shape, cfg.weights, stop - done + (1 if done else 0),
                   cfg.scale_range, prev_j, fixed, lengths)
        done = stop
        if stop == choose and len(alive) > 1:  # the better side goes on
            alive = [min(alive, key=lambda p: p.cost)]
        if stop == drop:
            for p in alive:
                drop_unexplained(p, shape, cfg.explain_mm)
    return min(alive, key=lambda p: p.cost)


def _result(p: SideProblem, target: np.ndarray, shape: ShapeArrays, cfg: FitConfig,
            previous: FitState | None, evidence: float) -> FitResult:
    """The result of the chosen side, after the safeguard (``evidence``: of the side)."""
    posed = p.model(p.x, shape)
    terms = residual_terms(posed, target, p.obs, p.near, p.near_cand)
    if p.count:
        terms["dropped"] = p.dropped / p.count
    x, joints, fallback = p.x, posed.joints.copy(), ""
    start_cost, fit_cost = p.depth_cost(p.x_ik), p.depth_cost(p.x)
    if p.observed and start_cost is not None and fit_cost is not None:
        at_start = residual_terms(p.model(p.x_ik, shape), target, p.obs, p.near,
                                  p.near_cand)
        terms |= {f"start_{k}": v for k, v in at_start.items()}
        terms |= {"depth_cost": fit_cost, "start_depth_cost": start_cost}
        if cfg.guard:
            fallback = _guard(terms, cfg)
        if fallback:
            x, joints, terms["data_mm"] = p.x_ik, target.copy(), at_start["data_mm"]
    scale, lengths = float(x[SCALE_INDEX]), x[LENGTHS].copy()
    return FitResult(
        joints_mm=joints.astype(np.float32), angles_deg=x[ANGLES].copy(),
        rotation=placement(x, p.r0), translation_mm=x[3:6].copy(), scale=scale,
        finger_lengths=lengths, side=p.side,
        residual_mm=terms.get("data_mm", terms["joints_mm"]), residual_terms=terms,
        iterations=p.calls, observed=p.obs is not None, cost=p.cost,
        state=_next_state(previous, joints, p.side, scale, lengths, cfg, evidence),
        fallback=fallback,
    )  # fmt: skip


def _guard(terms: dict[str, float], cfg: FitConfig) -> str:
    """Why the fit is refused ("" if it is not): worse depth, far moved, unexplained (step 4)."""
    if terms["depth_cost"] > terms["start_depth_cost"] * (1.0 + cfg.guard_margin):
        return "residual"
    if terms["joints_mm"] > cfg.guard_move_mm:
        return "moved"
    if (cfg.guard_start_mm > 0 and terms["start_joints_mm"] > cfg.guard_start_mm
            and terms["data_mm"] > cfg.guard_residual_mm):
        return "unexplained"
    return ""


def _next_state(previous: FitState | None, joints: np.ndarray, side: str, scale: float,
                lengths: np.ndarray, cfg: FitConfig, evidence: float) -> FitState:
    """The sequence state after this frame (calibrated shape held once enough frames)."""
    # only the first calibration_frames estimates are ever used: a long run keeps no more
    n = cfg.calibration_frames
    est = ([] if previous is None else list(previous.scale_estimates))[:n - 1] + [scale]
    est_l = ([] if previous is None else list(previous.length_estimates))[:n - 1] + [lengths]
    fixed = None if previous is None else previous.fixed_scale
    fixed_l = None if previous is None else previous.fixed_lengths
    if cfg.shape_mode != "calibrate":
        fixed = fixed_l = None
    elif fixed is None and len(est) >= cfg.calibration_frames:
        fixed, fixed_l = float(np.median(est)), np.median(np.stack(est_l), axis=0)
    return FitState(joints_mm=joints, side=side, scale_estimates=est, fixed_scale=fixed,
                    length_estimates=est_l, fixed_lengths=fixed_l, side_evidence=evidence)
