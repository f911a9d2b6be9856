"""Distances to the hand model's surface (free-space samples: ``HandPose.samples``).

The model is a union of primitives: spheres (26), capsules (20: only their cylinders are
drawn, but their ends always sit inside spheres at least as wide, so a full capsule
gives the same union) and ellipsoids (2). A sphere is a capsule of length 0, so spheres
and capsules share one closed form: distance to the segment minus the radius. Primitive
index k < 46 is such a "capsule" (spheres first, in ``Geometry`` order); 46, 47 are the
ellipsoids. Ellipsoid distance: the first-order approximation k0 (k0 - 1) / k1 with
k0 = |q / a|, k1 = |q / a^2| (q in the ellipsoid's axes): exact on the axes, smooth, and
within a few per cent near the surface of the palm's shape. Signed: < 0 inside.

Free-space samples (``hand_np.HandPose.samples``): sphere centres, three points along each
capsule's axis, five points in the palm ellipsoid's mid-plane (radius: its half-thickness
there) and the wrist ellipsoid's centre (radius: its smallest semi-axis). A point with
radius r has model surface within r of it in every direction, so the model's depth along
the point's ray is at most z - r.
"""

from __future__ import annotations

import numpy as np

from vvhand_core.fit import compiled
from vvhand_core.fit.hand_np import HandPose
from vvhand_core.fit.tables import NUM_CAPSULES, NUM_SPHERES

NUM_ROUND = NUM_SPHERES + NUM_CAPSULES  # spheres and capsules: "capsules" of the union
_EPS = 1e-9


def round_distance(points: np.ndarray, hp: HandPose, candidates: np.ndarray | None = None,
                   dtype=np.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signed distance (N, K) of points (N, 3) to round parts, offsets (3, N, K), lengths.

    candidates (N, K): the parts per point; None: all 46 (K = 46). Coordinates lead
    (3, N, K): sums over them are sums of three contiguous planes, the cheap kind.
    dtype: of the computation (float32 halves the cost of gating many points).
    """
    p0, p1, r = (x.astype(dtype, copy=False) for x in hp.round_parts())
    points = points.astype(dtype, copy=False)
    d = p1 - p0
    inv = 1.0 / (np.einsum("ij,ij->i", d, d) + _EPS)
    p0t, dt = p0.T, d.T  # (3, 46)
    if candidates is None:
        p0t, dt = p0t[:, None, :], dt[:, None, :]
    else:  # take with a flat index: much cheaper than fancy indexing here
        flat, shape = candidates.reshape(-1), (3,) + candidates.shape
        p0t, dt = p0t.take(flat, axis=1).reshape(shape), dt.take(flat, axis=1).reshape(shape)
        inv, r = inv.take(candidates), r.take(candidates)
    off = points.T[:, :, None] - p0t  # (3, N, K): point - p0, then - t d (in place)
    tmp = off * dt
    t = tmp[0] + tmp[1]
    t += tmp[2]
    t *= inv
    np.clip(t, 0.0, 1.0, out=t)
    np.multiply(t, dt, out=tmp)
    off -= tmp
    np.multiply(off, off, out=tmp)
    length = tmp[0] + tmp[1]
    length += tmp[2]
    np.sqrt(length, out=length)
    return length - r, off, length


def round_distances(points: np.ndarray, hp: HandPose) -> np.ndarray:
    """Signed distance (N, 46) of points (N, 3) to every round part: a gate's distances.

    Compiled where numba is (:mod:`.compiled`); else :func:`round_distance` in float32
    (ample for a gate, half the cost).
    """
    if compiled.ENABLED:
        return compiled.round_distances(points, hp)
    return round_distance(points, hp, dtype=np.float32)[0]


def ellipsoid_distance(points: np.ndarray, hp: HandPose):
    """Approximate signed distance (N, 2) to the two ellipsoids (module doc), with parts.

    Also e = q / a, f = q / a^2 (N, 2, 3) and k0 = |e|, k1 = |f| (N, 2), q the point in
    the ellipsoid's axes, a its semi-axes (2, 3). Both in one product: points (N, 3) @
    [R_0 R_1] (3, 6).
    """
    c, rot, semi = hp.ellipsoids()
    rr = np.concatenate([rot[0], rot[1]], axis=1)  # (3, 6): q = R^T (p - c) per ellipsoid
    q = (points @ rr - np.concatenate([c[0] @ rot[0], c[1] @ rot[1]])).reshape(-1, 2, 3)
    e = q / semi
    f = e / semi
    e2, f2 = e * e, f * f
    k0 = np.sqrt(e2[..., 0] + e2[..., 1] + e2[..., 2]) + _EPS
    k1 = np.sqrt(f2[..., 0] + f2[..., 1] + f2[..., 2]) + _EPS
    return k0 * (k0 - 1.0) / k1, e, f, k0, k1


def nearest_surface(points: np.ndarray, hp: HandPose, candidates: np.ndarray | None = None,
                    grad: bool = True) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Signed distance (N,) mm of points (N, 3) to the hand's surface, gradient and part.

    The union's distance (the nearest primitive), its gradient (N, 3) with respect to
    the point (None without ``grad``), and the part index (N,).

    candidates (N, K): the round parts (< 46) to consider per point (the two ellipsoids
    always are); None: all of them. Compiled where numba is (:mod:`.compiled`).
    """
    if compiled.ENABLED:
        return compiled.nearest_surface(points, hp, candidates, grad)
    dist_r, off, length = round_distance(points, hp, candidates)
    dist_e, e, f, k0, k1 = ellipsoid_distance(points, hp)
    nk = dist_r.shape[1]
    every = np.concatenate([dist_r, dist_e], axis=1)
    col = every.argmin(axis=1)
    n = np.arange(len(points))
    dist = every.take(n * (nk + 2) + col)
    is_round = col < nk
    pr = n * nk + np.minimum(col, nk - 1)  # flat index of the nearest round part
    pe = np.maximum(col - nk, 0)
    part = np.where(is_round, pr - n * nk if candidates is None else candidates.take(pr),
                    NUM_ROUND + pe)
    if not grad:
        return dist, None, part
    g = (off.reshape(3, -1).take(pr, axis=1) / np.maximum(length.take(pr), _EPS)).T
    on_ell = np.flatnonzero(~is_round)
    if len(on_ell):  # the ellipsoid's gradient where it is the nearest part
        _, rot, semi = hp.ellipsoids()
        pe = pe.take(on_ell)
        flat = on_ell * 2 + pe  # flat index into (N, 2)
        k0e, k1e = k0.take(flat)[:, None], k1.take(flat)[:, None]
        ae = semi.take(pe, axis=0)
        dq = (2 * k0e - 1) / (k1e * k0e * ae) * e.reshape(-1, 3).take(flat, axis=0) \
            - k0e * (k0e - 1) / (k1e * k1e * k1e * ae * ae) * f.reshape(-1, 3).take(flat, axis=0)
        g[on_ell] = (rot.take(pe, axis=0) @ dq[:, :, None])[:, :, 0]
    return dist, g, part


def candidate_parts(dist_round: np.ndarray, k: int) -> np.ndarray:
    """(N, k) the k round parts nearest to each point, from its distances (N, 46).

    ``round_distance(points, hand)[0]``; all parts (in order) when k >= 46.
    """
    if k >= dist_round.shape[1]:
        return np.broadcast_to(np.arange(dist_round.shape[1]), dist_round.shape).copy()
    return np.ascontiguousarray(np.argpartition(dist_round, k - 1, axis=1)[:, :k])
