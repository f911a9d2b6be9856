"""Rigid bodies of the hand model and the analytic Jacobian of anything attached to them.

18 bodies: 0 palm, 1 forearm, 2-4 the thumb's metacarpal, proximal and distal segments,
5 + 3 i + k segment k (proximal, middle, distal) of long finger i (index..pinky), 17 the
wrist ellipsoid (it turns with the forearm's angles but about its own centre, not the
wrist joint: ``wrist_centre``). Every primitive and joint rides on one body (a joint's
sphere on the segment that ends there: turning about its own centre does not move a
sphere). ``PARAM_MOVES[b, j]``: angle j moves body b.

Velocities (camera frame) of a point p on body b:

* angle j (per degree): PARAM_MOVES[b, j] * (axis_j x (p - pivot_j)) * pi / 180;
* rotation omega_k (R = exp(omega) R0): (Jl(omega) e_k) x (p - t), Jl the left Jacobian;
* translation t_k: e_k;  scale s: (p - t) / s (radii grow by r / s);
* finger length factor l_f (the segment lengths of finger f, thumb first, times l_f about
  the finger's root: the thumb's carpometacarpal joint, a long finger's MCP):
  (a - root_f) / l_f for a point on one of the finger's bodies (``FINGER_OF_BODY``), a its
  anchor: the point itself for joints and axis points; for a point on a part's surface
  the nearest point of the part's axis (the radius does not stretch).

A residual r that depends on a point p through a sensitivity g = dr/dp (for a data point
seen by a moving model: g = -dr/dx) has the Jacobian row g . velocity(p):
:func:`jacobian_rows`. Parameter order: ``vvhand_core.fit.terms`` (omega, t, s, angles,
finger length factors).
"""

from __future__ import annotations

import math

import numpy as np

from vvhand_core.fit import compiled


def _tables():
    moves = np.zeros((18, 23), dtype=bool)
    for i in range(4):
        segs = [5 + 3 * i + k for k in range(3)]
        moves[segs, 4 * i] = moves[segs, 4 * i + 1] = True
        moves[segs[1:], 4 * i + 2] = True
        moves[segs[2:], 4 * i + 3] = True
    moves[[2, 3, 4], 16] = moves[[2, 3, 4], 17] = moves[[2, 3, 4], 18] = True
    moves[[3, 4], 19] = True
    moves[4, 20] = True
    moves[[1, 17], 21] = moves[[1, 17], 22] = True
    joints = [0, 0, 2, 3, 4] + sum(([0, 5 + 3 * i, 6 + 3 * i, 7 + 3 * i] for i in range(4)), [])
    spheres = [0, 2, 3, 4] + sum(([0, 5 + 3 * i, 6 + 3 * i, 7 + 3 * i, 0] for i in range(4)), [])
    spheres += [1, 1]
    capsules = [2, 3, 4] + sum(([5 + 3 * i, 6 + 3 * i, 7 + 3 * i, 0] for i in range(4)), []) + [1]
    samples = spheres + [b for b in capsules for _ in range(3)] + [0] * 5 + [17]
    return (moves.astype(np.float64), *(np.array(x) for x in
            (joints, spheres + capsules + [0, 17], samples)))  # fmt: skip


PARAM_MOVES, JOINT_BODY, PART_BODY, SAMPLE_BODY = _tables()
"""(18, 23) float 0/1; body per joint (21,), per primitive (48: spheres, capsules,
ellipsoids) and per free-space sample (92, ``HandPose.samples`` order)."""

FINGER_OF_BODY = np.array([-1, -1, 0, 0, 0] + [1 + i for i in range(4) for _ in range(3)] + [-1])
"""(18,) the finger (0 thumb .. 4 pinky) whose length factor stretches a body; -1: none."""
FINGER_ROOT_JOINT = (1, 5, 9, 13, 17)  # HANDS2019_21: thumb CMC, index..pinky MCP
NUM_PARAMS = 35  # omega 3, t 3, s, 23 angles, 5 finger length factors

_DEG = math.pi / 180.0


def skew(v: np.ndarray) -> np.ndarray:
    """[v]_x (3, 3): [v]_x u = v x u."""
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The cross product a x b over the last axis (np.cross costs more on small arrays)."""
    return a.take(_P, axis=-1) * b.take(_Q, axis=-1) - a.take(_Q, axis=-1) * b.take(_P, axis=-1)


_P, _Q = np.array([1, 2, 0]), np.array([2, 0, 1])


def left_jacobian(omega: np.ndarray) -> np.ndarray:
    """Left Jacobian (3, 3) of SO(3) at omega (3,): exp(omega + d) ~ exp(Jl d) exp(omega).

    Jl = I + a [w]x + b [w]x^2 with a = (1 - cos t) / t^2, b = (t - sin t) / t^3 (t = |w|;
    a = 1/2, b = 0 near 0) and [w]x^2 = w w^T - t^2 I, from scalars.
    """
    x, y, z = omega.tolist()
    theta2 = x * x + y * y + z * z
    if theta2 < 1e-12:
        a, b = 0.5, 0.0
    else:
        theta = math.sqrt(theta2)
        a, b = (1 - math.cos(theta)) / theta2, (theta - math.sin(theta)) / (theta2 * theta)
    d = 1.0 - b * theta2
    return np.array([[d + b * x * x, b * x * y - a * z, b * x * z + a * y],
                     [b * x * y + a * z, d + b * y * y, b * y * z - a * x],
                     [b * x * z - a * y, b * y * z + a * x, d + b * z * z]])


_EYE3 = np.eye(3)


def jacobian_rows(points: np.ndarray, bodies: np.ndarray, g: np.ndarray, axes: np.ndarray,
                  pivots: np.ndarray, jl: np.ndarray, t: np.ndarray, s: float,
                  wrist_centre: np.ndarray, scale_extra: np.ndarray | None = None,
                  roots: np.ndarray | None = None, lengths: np.ndarray | None = None,
                  anchors: np.ndarray | None = None) -> np.ndarray:
    """Jacobian rows (N, 35) of N residuals.

    Residual i depends on point i (N, 3, on body ``bodies[i]``) through g (N, 3);
    ``scale_extra`` (N,): its further derivative by the scale (radii). axes, pivots
    (23, 3); jl (3, 3) left Jacobian; t (3,) mm; s scale; wrist_centre (3,) the wrist
    ellipsoid's centre (camera mm). roots (5, 3) the fingers' roots (camera mm) and
    lengths (5,) their length factors (None: those columns are 0); anchors (N, 3): each
    point's anchor (module doc; None: the points).
    """
    # one product for rotation and angles: (p - t) x g = p x g - t x g, then Jl; angle j:
    # g . (a_j x (p - q_j)) = (p x g) . a_j - g . (a_j x q_j)
    coef = np.empty((6, 26))
    coef[:3, :3] = jl
    coef[3:, :3] = -skew(t).T @ jl
    coef[:3, 3:] = axes.T
    coef[3:, 3:] = -cross(axes, pivots).T
    # the wrist ellipsoid turns about its own centre, not the wrist
    wrist_coef = cross(axes[21:], pivots[21:] - wrist_centre)
    if compiled.ENABLED:
        return compiled.jacobian_rows(points, bodies, g, coef, wrist_coef, _MOVES_DEG,
                                      FINGER_OF_BODY, t, s, scale_extra, roots, lengths, anchors)
    pg = np.concatenate([cross(points, g), g], axis=1)  # (N, 6): p x g, g
    prod = pg @ coef
    on_wrist = np.flatnonzero(bodies == 17)
    if len(on_wrist):
        prod[on_wrist, 24:26] += g[on_wrist] @ wrist_coef.T
    out = np.zeros((len(points), NUM_PARAMS))
    out[:, 0:3] = prod[:, :3]
    out[:, 3:6] = g
    out[:, 6] = np.einsum("ij,ij->i", g, points - t) / s
    if scale_extra is not None:
        out[:, 6] += scale_extra
    out[:, 7:30] = prod[:, 3:] * _MOVES_DEG.take(bodies, axis=0)
    if roots is not None and lengths is not None:
        finger = FINGER_OF_BODY.take(bodies)
        on = np.flatnonzero(finger >= 0)
        f = finger.take(on)
        a = (points if anchors is None else anchors).take(on, axis=0)
        out[on, 30 + f] = np.einsum("ij,ij->i", g.take(on, axis=0),
                                    a - roots.take(f, axis=0)) / lengths.take(f)
    return out


_MOVES_DEG = PARAM_MOVES * _DEG
