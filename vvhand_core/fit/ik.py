"""Inverse kinematics: the global pose, scale and 23 angles that best explain 21 joints.

Two steps. (1) Rigid: the wrist, the thumb's root and the four finger MCPs do not move
with any angle, so a weighted similarity (Umeyama: rotation, scale, translation) of the
model's six palm joints onto the targets' gives the hand's placement in closed form.
(2) Articulated: Levenberg-Marquardt over the parameters (the finger length factors held:
at 1, or at a sequence's calibrated values) on the joint residuals
(robust, weighted by confidence), a prior on the scale and, in sequences, a pull toward
the previous fit's joints, from the rest articulation; the angles stay within the limits.
"""

from __future__ import annotations

import numpy as np

from vvhand_core.data.synthetic.hand_model import rest_articulation
from vvhand_core.fit.hand_np import ShapeArrays
from vvhand_core.fit.lm import LMResult, levenberg_marquardt
from vvhand_core.fit.tables import PIVOT_MM
from vvhand_core.fit.terms import Terms, Weights, bounds, linearise, pack

PALM_JOINTS = (0, 1, 5, 9, 13, 17)  # wrist, thumb root, index..pinky MCPs: angle-free


def similarity(source: np.ndarray, target: np.ndarray, weights: np.ndarray,
               scale_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted Umeyama: (R (3, 3), t (3,), s) minimising sum w |s R source + t - target|^2.

    source, target (K, 3) mm; weights (K,) >= 0; s clamped to ``scale_range``.
    """
    w = np.asarray(weights, dtype=np.float64)
    w = w / max(w.sum(), 1e-12)
    ms, mt = w @ source, w @ target
    xs, xt = source - ms, target - mt
    cov = (xt * w[:, None]).T @ xs
    u, sv, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2] = -1.0
    rot = u @ np.diag(d) @ vt
    var = float(w @ (xs ** 2).sum(axis=1))
    s = float(np.clip((sv * d).sum() / max(var, 1e-12), *scale_range))
    return rot, mt - s * rot @ ms, s


def rigid_init(target_mm: np.ndarray, conf: np.ndarray, shape: ShapeArrays, left: bool,
               scale_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, float]:
    """(R, t, s) of the placement (``hand_np`` module doc) from the palm joints."""
    local = np.concatenate([np.zeros((1, 3)), shape.thumb_cmc[None], shape.mcp])
    if left:
        local = local * np.array([-1.0, 1.0, 1.0])
    q = local - np.asarray(PIVOT_MM)
    idx = list(PALM_JOINTS)
    return similarity(q, target_mm[idx], conf[idx] + 1e-6, scale_range)


def finger_angles(target_mm: np.ndarray, rot: np.ndarray, t: np.ndarray, s: float,
                  left: bool, shape: ShapeArrays) -> np.ndarray:
    """Abduction and flexions (4, 4) degrees of the long fingers, in closed form.

    The targets go to the hand frame through the placement (R, t, s). A finger's bones
    are perpendicular to its flexion axis (cos phi, sin phi, 0), so phi is the
    least-squares normal of the bones' projections on the palm plane (of the two opposite
    normals, the one nearer the rest splay; the rest splay when the projections are too
    short to tell); each bone's flexion is its elevation in the finger's plane.
    """
    q = (np.asarray(target_mm) - t) @ rot / s + np.asarray(PIVOT_MM)
    if left:
        q = q * np.array([-1.0, 1.0, 1.0])
    splay = shape.rest_splay_rad
    bones = np.diff(q[5:21].reshape(4, 4, 3), axis=1)  # (4, 3, 3) mcp->pip->dip->tip
    xy = bones[..., :2]
    vals, vecs = np.linalg.eigh(xy.transpose(0, 2, 1) @ xy)  # all four fingers at once
    n = vecs[:, :, 0]  # the normal: the eigenvector of the smaller eigenvalue
    cand = np.arctan2(n[:, 1], n[:, 0])[:, None] + np.array([0.0, np.pi])
    pick = np.abs(_wrap(cand + splay[:, None])).argmin(axis=1)
    shows = vals[:, 1] > 0.05 * (bones ** 2).sum(axis=(1, 2))  # the projections show a direction
    phi = np.where(shows, cand[np.arange(4), pick], -splay)
    along = bones[..., 0] * -np.sin(phi)[:, None] + bones[..., 1] * np.cos(phi)[:, None]
    c = np.unwrap(np.arctan2(bones[..., 2], along), axis=1)
    abd = _wrap(-(phi + splay) * np.array([1.0, 1.0, -1.0, -1.0]))
    return np.degrees(np.concatenate([abd[:, None], c[:, :1], np.diff(c, axis=1)], axis=1))


def _wrap(angle: np.ndarray) -> np.ndarray:
    """Angles wrapped to (-pi, pi]."""
    return np.angle(np.exp(1j * angle))


def solve_ik(target_mm: np.ndarray, conf: np.ndarray, shape: ShapeArrays, left: bool,
             weights: Weights, iterations: int, scale_range: tuple[float, float],
             prior_scale: float = 1.0, previous_joints_mm: np.ndarray | None = None,
             fixed_scale: float | None = None, fixed_lengths: np.ndarray | None = None
             ) -> tuple[LMResult, np.ndarray]:
    """Fit the model's joints to ``target_mm`` (21, 3); returns (LM result, R0 (3, 3)).

    The result's x holds omega relative to R0 (``terms`` module doc). ``fixed_scale``
    holds the scale and ``fixed_lengths`` (5,) the finger length factors (sequences after
    calibration; None: 1).
    """
    rot, t, s = rigid_init(target_mm, conf, shape, left, scale_range)
    if fixed_scale is not None:
        s = fixed_scale
        rot, t, _ = rigid_init(target_mm, conf, shape, left, (s, s))
    r0 = np.asarray(rot, dtype=np.float64)
    angles = rest_articulation()
    angles[:16] = finger_angles(target_mm, rot, t, s, left, shape).reshape(16)
    lengths = np.ones(5) if fixed_lengths is None else np.asarray(fixed_lengths, np.float64)
    x0 = pack(np.zeros(3), t, s, angles, lengths)
    lo, hi = bounds(scale_range if fixed_scale is None else (fixed_scale, fixed_scale),
                    (lengths, lengths))
    terms = Terms.build(weights, target_mm, conf, previous_joints_mm, scale_prior=prior_scale)

    def residuals(x: np.ndarray, jac: bool):
        return terms.evaluate(linearise(x, r0, shape, left, jac), x, jac)

    if iterations == 0:
        x0 = np.minimum(np.maximum(x0, lo), hi)
        r, _ = residuals(x0, False)
        return LMResult(x0, 0.5 * float(r @ r), 0, 0), r0
    return levenberg_marquardt(residuals, x0, lo, hi, iterations), r0
