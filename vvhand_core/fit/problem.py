"""One side's fit problem: the IK start, what the depth shows near it, the depth LM.

:func:`start` runs inverse kinematics (:mod:`.ik`) and gathers the observation around the
result (:mod:`.observe`): the data points within ``gate_mm`` of the IK model and, per
point, the round parts it may be matched to. :func:`refine` runs Levenberg-Marquardt on
the depth terms (:mod:`.terms`) from the current parameters; it can be called again to
continue (both sides: a few iterations each, then the better one goes on).
:func:`drop_unexplained` removes the data points that the model, after the first
iterations, still does not explain (a held object, the table, the other hand): from then
on they do not pull it, while the free-space term still treats them as surfaces that may
hide the hand (a model behind them is occluded, not wrong).
:func:`residual_terms` is the diagnostic that the fit reports and the safeguard compares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_core.fit.hand_np import HandPose, ShapeArrays
from vvhand_core.fit.ik import solve_ik
from vvhand_core.fit.lm import levenberg_marquardt
from vvhand_core.fit.observe import Observation, observe
from vvhand_core.fit.planes import dominant_plane, on_plane
from vvhand_core.fit.surface import (
    NUM_ROUND,
    candidate_parts,
    ellipsoid_distance,
    nearest_surface,
    round_distances,
)
from vvhand_core.fit.terms import (
    Linearisation,
    Terms,
    Weights,
    bounds,
    free_space_cost,
    linearise,
)

DATA_CAP_MM = 30.0  # residual_terms: a data point counts at most this far
PRETHIN = 3  # data_points: at most PRETHIN * max_points observed points are gated
MIN_EXPLAINED = 8  # drop_unexplained keeps every point when fewer would be left
# residual_terms' data_mm: the distance within which this share of the points near the hand
# lie; an object or the table may take the rest without raising it (docs/results.md, v3)
RESIDUAL_QUANTILE = 0.7
PLANE_AWAY_MM = 20.0  # data_points: a plane is looked for among points this far from the model
POSE_CACHE = 8  # SideProblem.linearise: poses kept per side


@dataclass
class SideProblem:
    """The fit of one side: parameters (``terms`` module doc) and what they are fitted to.

    x (35,) current parameters, x_ik those of the IK start, r0 (3, 3) base rotation,
    cost: the last LM cost (IK's until the depth fit runs), obs / pts (N, 3) / cand (N, K):
    the observation, data points and their candidate parts (None: no depth near the
    joints), calls: model evaluations so far, depth_costs: the depth terms' cost at each
    parameter vector the depth fit evaluated with the current data points (``depth_cost``;
    the safeguard compares the IK start's with the result's), count: the data points
    first selected (the data term's normalisation), dropped: how many of them
    :func:`drop_unexplained` removed; near / near_cand: every point near the IK model and
    their candidate parts (``DataPoints``; the residual's); start_residuals: the data
    term's residual per point and the free-space cost at the IK start, once evaluated (so
    its depth cost on fewer points needs no model call).
    """

    side: str
    x: np.ndarray
    x_ik: np.ndarray
    r0: np.ndarray
    cost: float
    obs: Observation | None
    pts: np.ndarray | None
    cand: np.ndarray | None
    calls: int
    depth_costs: dict[bytes, float] = field(default_factory=dict)
    count: int = 0
    dropped: int = 0
    near: np.ndarray | None = None
    near_cand: np.ndarray | None = None
    start_residuals: tuple[np.ndarray, float] | None = None
    _posed: dict[bytes, Linearisation] = field(default_factory=dict, repr=False)

    def linearise(self, x: np.ndarray, shape: ShapeArrays, axes: bool = True) -> Linearisation:
        """The model at x (``terms.linearise``), reused where x was posed before.

        The LM, the dropping of points and the result pose the same few parameter vectors
        again (the IK start, the best point of a chunk); a pose with joint axes serves a
        request without them. At most ``POSE_CACHE`` poses are kept.
        """
        key = x.tobytes()
        lin = self._posed.get(key)
        if lin is None or (axes and lin.posed.axes is None):
            if len(self._posed) >= POSE_CACHE:
                self._posed.clear()
            lin = self._posed[key] = linearise(x, self.r0, shape, self.left, axes)
        return lin

    def model(self, x: np.ndarray, shape: ShapeArrays) -> HandPose:
        """The posed hand at x (``terms.model``), reused where x was posed before."""
        return self.linearise(x, shape, axes=False).posed

    def depth_cost(self, x: np.ndarray) -> float | None:
        """The depth terms' part (data + free space) of the LM cost at an evaluated x."""
        return self.depth_costs.get(np.asarray(x, np.float64).tobytes())

    @property
    def left(self) -> bool:
        """Whether this is the left side."""
        return self.side == "left"

    @property
    def observed(self) -> bool:
        """Whether there are data points to fit."""
        return self.obs is not None and self.pts is not None and len(self.pts) > 0


def thin(items: np.ndarray, n: int) -> np.ndarray:
    """At most n of the items, uniformly spread over their order (the image's rows)."""
    if len(items) <= n:
        return items
    return items[np.linspace(0, len(items) - 1, n).astype(np.int64)]


@dataclass
class DataPoints:
    """What the depth shows near the model (camera mm).

    points (N, 3): the points the model is fitted to, candidates (N, K) the round parts
    each may be matched to (None: all 46); near (M, 3) / near_candidates: every point near
    the model, those on a plane too (what :func:`residual_terms` measures).
    """

    points: np.ndarray
    candidates: np.ndarray | None
    near: np.ndarray
    near_candidates: np.ndarray | None


def data_points(obs: Observation, posed: HandPose, gate_mm: float, max_points: int,
                candidates: int, plane_mm: float = 0.0, plane_share: float = 0.3,
                near_mm: float | None = None) -> DataPoints:
    """Observed points within ``gate_mm`` of the model, at most ``max_points`` (each set).

    ``near``: those within ``near_mm`` (None: ``gate_mm``) instead.
    With ``plane_mm`` > 0, the plane that holds at least ``plane_share`` of the observed
    points farther than ``PLANE_AWAY_MM`` from the model (a table, a wall:
    :func:`.planes.dominant_plane`) is found, and the points within ``plane_mm`` of it are
    left out of the points fitted (not of ``near``).
    """
    pts = thin(obs.points_mm, int(PRETHIN * max_points))  # bounds the gating cost
    dist_round = round_distances(pts, posed)
    d = np.abs(np.minimum(dist_round.min(axis=1), ellipsoid_distance(pts, posed)[0].min(axis=1)))
    gated = d < gate_mm
    near = thin(np.flatnonzero(d < (gate_mm if near_mm is None else near_mm)), max_points)
    plane = (dominant_plane(pts[d > PLANE_AWAY_MM], plane_mm, plane_share) if plane_mm > 0
             else None)
    flat = on_plane(pts, plane, plane_mm)
    keep = thin(np.flatnonzero(gated & ~flat), max_points)

    def parts(ix: np.ndarray) -> np.ndarray | None:
        return candidate_parts(dist_round[ix], candidates) if candidates < NUM_ROUND else None

    same = len(keep) == len(near) and np.array_equal(keep, near)
    keep_cand = parts(keep)
    return DataPoints(pts[keep], keep_cand, pts[near], keep_cand if same else parts(near))


def start(depth_mm: np.ndarray, intr: Intrinsics, target: np.ndarray, conf: np.ndarray,
          side: str, shape: ShapeArrays, cfg, previous_joints: np.ndarray | None,
          fixed_scale: float | None, obs: Observation | None = None,
          fixed_lengths: np.ndarray | None = None) -> SideProblem:
    """IK from the joints, then the observation around the IK model (``cfg``: FitConfig).

    ``obs``: an observation to reuse (the other side's: both sides' IK models sit on the
    same joints, so their windows nearly coincide); fixed_scale / fixed_lengths: a
    sequence's calibrated shape (None: estimated).
    """
    left = side == "left"
    ik, r0 = solve_ik(target, conf, shape, left, cfg.weights, cfg.ik_iterations,
                      cfg.scale_range, previous_joints_mm=previous_joints,
                      fixed_scale=fixed_scale, fixed_lengths=fixed_lengths)
    p = SideProblem(side, ik.x, ik.x, r0, ik.cost, None, None, None, ik.evaluations)
    posed = p.linearise(ik.x, shape).posed  # with axes: the depth LM starts here
    if obs is None:
        obs = observe(depth_mm, intr, posed.joints.mean(0), cfg.radius_mm, cfg.window_px)
    if obs is None:
        return p
    dp = data_points(obs, posed, cfg.gate_mm, cfg.max_points, cfg.candidates, cfg.plane_mm,
                     cfg.plane_share, cfg.residual_gate_mm)
    p.obs, p.pts, p.cand, p.count = obs, dp.points, dp.candidates, len(dp.points)
    p.near, p.near_cand = dp.near, dp.near_candidates
    return p


def drop_unexplained(p: SideProblem, shape: ShapeArrays, explain_mm: float) -> SideProblem:
    """Drop the data points farther than ``explain_mm`` from the current model (p updated).

    The depth costs recorded so far are forgotten (they were of the other points) but the
    IK start's, recomputed from its residuals per point; the data term keeps sharing its
    weight by ``p.count``, so the points kept weigh what they did. Nothing is dropped when
    ``explain_mm`` <= 0 or fewer than ``MIN_EXPLAINED`` points would be left (the model
    explains nothing: its residual says so).
    """
    if not p.observed or explain_mm <= 0:
        return p
    posed = p.model(p.x, shape)
    keep = np.abs(nearest_surface(p.pts, posed, p.cand, grad=False)[0]) < explain_mm
    if keep.all() or keep.sum() < MIN_EXPLAINED:
        return p
    p.pts = p.pts[keep]
    p.cand = None if p.cand is None else p.cand[keep]
    p.dropped += int((~keep).sum())
    p.depth_costs.clear()
    if p.start_residuals is not None:
        data, free_cost = p.start_residuals
        p.start_residuals = data[keep], free_cost
        p.depth_costs[p.x_ik.tobytes()] = 0.5 * float(data[keep] @ data[keep]) + free_cost
    return p


def refine(p: SideProblem, target: np.ndarray, conf: np.ndarray, shape: ShapeArrays,
           w: Weights, iterations: int, scale_range: tuple[float, float],
           previous_joints: np.ndarray | None, fixed_scale: float | None,
           length_range: tuple = (1.0, 1.0)) -> SideProblem:
    """``iterations`` LM model calls on the depth terms from p.x (p updated and returned).

    length_range: bounds of the finger length factors (scalars or (5,) each; equal bounds
    hold them). When the IK start's depth cost is not known for the current data points
    (the IK start was not evaluated with them), it is evaluated once more (one model call,
    no Jacobian) for the safeguard.
    """
    if not p.observed or iterations <= 0:
        return p
    lo, hi = bounds(scale_range if fixed_scale is None else (fixed_scale, fixed_scale),
                    length_range)
    terms = Terms.build(w, target, conf, previous_joints, p.pts, p.cand, p.count, p.obs,
                        length_prior=True)
    start_key = p.x_ik.tobytes()

    def residuals(xx: np.ndarray, jac: bool):
        r, jacobian = terms.evaluate(p.linearise(xx, shape, jac), xx, jac)
        data, free = terms.depth_parts(r)
        key, free_cost = xx.tobytes(), 0.5 * float(free @ free)
        p.depth_costs[key] = 0.5 * float(data @ data) + free_cost
        if key == start_key:
            p.start_residuals = data.copy(), free_cost
        return r, jacobian

    res = levenberg_marquardt(residuals, p.x, lo, hi, iterations)
    p.x, p.cost, p.calls = res.x, res.cost, p.calls + res.evaluations
    if p.depth_cost(p.x_ik) is None:
        residuals(p.x_ik, False)
        p.calls += 1
    return p


def residual_terms(posed: HandPose, target: np.ndarray, obs: Observation | None,
                   pts: np.ndarray | None, cand: np.ndarray | None = None
                   ) -> dict[str, float]:
    """Diagnostics of a posed model.

    Of the points pts (N, 3) near the hand (``SideProblem.near``: those on a plane
    too; cand: the round parts considered per point, None: all) and their |distance| to
    the model, each capped at ``DATA_CAP_MM``: data_mm, the ``RESIDUAL_QUANTILE``
    quantile (the fit residual: a held object or the table may take the farthest share
    of the points without raising it, while a model placed on something that is not a
    hand explains few of them well) and data_mean_mm, the mean. free_mm: mean free-space
    violation; joints_mm: mean distance of the model's joints to the network's.
    """
    out = {"joints_mm": float(np.linalg.norm(posed.joints - target, axis=1).mean())}
    if obs is not None and pts is not None and len(pts):
        d = np.minimum(np.abs(nearest_surface(pts, posed, cand, grad=False)[0]), DATA_CAP_MM)
        out["data_mm"] = quantile(d, RESIDUAL_QUANTILE)
        out["data_mean_mm"] = float(d.mean())
        out["free_mm"] = free_space_cost(obs, posed)
    return out


def quantile(values: np.ndarray, q: float) -> float:
    """``np.quantile(values, q)`` (method "linear", the same float) of a 1-D array, cheaply.

    np.quantile's general machinery costs ~10x the partition it needs on a few hundred
    values.
    """
    n = len(values)
    at = (n - 1) * q
    lo = int(math.floor(at))
    hi = min(lo + 1, n - 1)
    part = np.partition(values, (lo, hi))
    a, b, t = float(part[lo]), float(part[hi]), at - lo
    diff = b - a  # numpy's _lerp, with its branch for t >= 0.5
    return b - diff * (1.0 - t) if t >= 0.5 else a + diff * t
