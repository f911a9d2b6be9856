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
* translation t_k: e_k;  scale s: (p - t) / s (radii grow by r / s).

A residual r that depends on a point p through a sensitivity g = dr/dp (for a data point
seen by a moving model: g = -dr/dx) has the Jacobian row g . velocity(p):
:func:`jacobian_rows`. Parameter order: ``vvhand_core.fit.terms`` (omega, t, s, angles).
"""

from __future__ import annotations

import math

import numpy as np
import torch


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
    return (torch.from_numpy(moves).to(torch.float64), *(torch.tensor(x) for x in
            (joints, spheres + capsules + [0, 17], samples)))  # fmt: skip


PARAM_MOVES, JOINT_BODY, PART_BODY, SAMPLE_BODY = _tables()
"""(18, 23) float 0/1; body per joint (21,), per primitive (48: spheres, capsules,
ellipsoids) and per free-space sample (92, ``surface.inner_samples`` order)."""

_DEG = math.pi / 180.0


def skew(v: np.ndarray) -> np.ndarray:
    """[v]_x (3, 3): [v]_x u = v x u."""
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def left_jacobian(omega: torch.Tensor) -> torch.Tensor:
    """Left Jacobian (3, 3) of SO(3) at omega (3,): exp(omega + d) ~ exp(Jl d) exp(omega)."""
    w = omega.numpy()
    theta2 = float(w @ w)
    k = skew(w)
    if theta2 < 1e-12:
        return torch.from_numpy(np.eye(3) + 0.5 * k)
    theta = math.sqrt(theta2)
    return torch.from_numpy(np.eye(3) + (1 - math.cos(theta)) / theta2 * k
                            + (theta - math.sin(theta)) / (theta2 * theta) * (k @ k))


@torch.no_grad()
def jacobian_rows(points: torch.Tensor, bodies: torch.Tensor, g: torch.Tensor,
                  axes: torch.Tensor, pivots: torch.Tensor, jl: torch.Tensor,
                  t: torch.Tensor, s: float, wrist_centre: torch.Tensor,
                  scale_extra: torch.Tensor | None = None) -> torch.Tensor:
    """Jacobian rows (N, 30) of N residuals.

    Residual i depends on point i (N, 3, on body ``bodies[i]``) through g (N, 3);
    ``scale_extra`` (N,): its further derivative by the scale (radii). axes, pivots
    (23, 3); jl (3, 3) left Jacobian; t (3,) mm; s scale; wrist_centre (3,) the wrist
    ellipsoid's centre (camera mm).
    """
    rel = points - t
    j_rot = torch.linalg.cross(rel, g) @ jl
    j_s = ((g * rel) @ _ONES3 / s)[:, None]
    if scale_extra is not None:
        j_s = j_s + scale_extra[:, None]
    w = torch.linalg.cross(axes, pivots)  # (23, 3)
    gw = g @ w.T
    on_wrist = bodies == 17
    if bool(on_wrist.any()):
        gw[on_wrist, 21:] = g[on_wrist] @ torch.linalg.cross(axes[21:], wrist_centre.expand(2, 3)).T
    j_ang = (torch.linalg.cross(points, g) @ axes.T - gw) * PARAM_MOVES[bodies] * _DEG
    return torch.cat([j_rot, g, j_s, j_ang], dim=1)


_ONES3 = torch.ones(3, dtype=torch.float64)
