"""Distances to the hand model's surface (free-space samples: ``Posed.samples``).

The model is a union of primitives: spheres (26), capsules (20: only their cylinders are
drawn, but their ends always sit inside spheres at least as wide, so a full capsule
gives the same union) and ellipsoids (2). A sphere is a capsule of length 0, so spheres
and capsules share one closed form: distance to the segment minus the radius. Primitive
index k < 46 is such a "capsule" (spheres first, in ``Geometry`` order); 46, 47 are the
ellipsoids. Ellipsoid distance: the first-order approximation k0 (k0 - 1) / k1 with
k0 = |q / a|, k1 = |q / a^2| (q in the ellipsoid's axes): exact on the axes, smooth, and
within a few per cent near the surface of the palm's shape. Signed: < 0 inside.

Free-space samples (``kinematics.Posed.samples``): sphere centres, three points along each
capsule's axis, five points in the palm ellipsoid's mid-plane (radius: its half-thickness
there) and the wrist ellipsoid's centre (radius: its smallest semi-axis). A point with
radius r has model surface within r of it in every direction, so the model's depth along
the point's ray is at most z - r.
"""

from __future__ import annotations

import torch

from vvhand_core.fit.kinematics import NUM_CAPSULES, NUM_SPHERES, Posed

NUM_ROUND = NUM_SPHERES + NUM_CAPSULES  # spheres and capsules: "capsules" of the union
_EPS = 1e-9
_ONES3 = torch.ones(3, dtype=torch.float64)


def dot3(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Dot product over the last axis of size 3.

    A matrix-vector product: torch's CPU reductions over a trailing axis of 3 are several
    times slower.
    """
    return (a * b) @ _ONES3


def norm3(a: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the last axis of size 3."""
    return ((a * a) @ _ONES3).sqrt()


def rotate_back(v: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """R^T v for v (..., 3) and rotations (..., 3, 3) broadcast together.

    Three scaled rows: no batched matmul of many 3x3 matrices.
    """
    return v[..., 0:1] * rotation[..., 0, :] + v[..., 1:2] * rotation[..., 1, :] \
        + v[..., 2:3] * rotation[..., 2, :]


def nearest_surface(points: torch.Tensor, posed: Posed, candidates: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Signed distance (N,) mm of points (N, 3) to hand 0's surface, gradient and part.

    The union's distance (the nearest primitive), its gradient (N, 3) with respect to
    the point, and the part index (N,).

    candidates (N, K): the round parts (< 46) to consider per point (the two ellipsoids
    always are); None: all of them.
    """
    p0, p1, r = (x[0] for x in posed.round_parts())
    if candidates is None:
        w, d, rr = points[:, None] - p0, (p1 - p0)[None], r
    else:
        w, d, rr = points[:, None] - p0[candidates], (p1 - p0)[candidates], r[candidates]
    t = (dot3(w, d) / (dot3(d, d) + _EPS)).clamp(0.0, 1.0)
    off = w - t[..., None] * d
    length = norm3(off)  # (N, K)
    c, rot, semi = (x[0] for x in posed.ellipsoids())
    q = rotate_back(points[:, None] - c, rot)  # (N, 2, 3) in the ellipsoids' axes
    e, f = q / semi, q / (semi * semi)
    k0, k1 = norm3(e) + _EPS, norm3(f) + _EPS
    nk = length.shape[1]
    dist, col = torch.cat([length - rr, k0 * (k0 - 1.0) / k1], dim=1).min(dim=1)
    n = torch.arange(len(points))
    pr = col.clamp(max=nk - 1)
    g_round = off[n, pr] / length[n, pr].clamp_min(_EPS)[:, None]
    pe = (col - nk).clamp(min=0)
    k0e, k1e, ae = k0[n, pe][:, None], k1[n, pe][:, None], semi[pe]
    dq = (2 * k0e - 1) / k1e * e[n, pe] / (k0e * ae) \
        - k0e * (k0e - 1) / (k1e * k1e) * f[n, pe] / (k1e * ae * ae)
    g_ell = (rot[pe] @ dq[:, :, None])[..., 0]
    is_round = col < nk
    part = torch.where(is_round, pr if candidates is None else candidates[n, pr], NUM_ROUND + pe)
    return dist, torch.where(is_round[:, None], g_round, g_ell), part


def candidate_parts(points: torch.Tensor, posed: Posed, k: int) -> torch.Tensor:
    """(N, k) the k round parts nearest to each point (N, 3) (by signed distance)."""
    p0, p1, r = (x[0] for x in posed.round_parts())
    d = p1 - p0
    w = points[:, None] - p0
    t = (dot3(w, d) / (dot3(d, d) + _EPS)).clamp(0.0, 1.0)
    dist = norm3(w - t[..., None] * d) - r
    return dist.topk(k, dim=1, largest=False).indices
