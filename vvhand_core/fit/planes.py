"""A large flat surface next to the hand (a table, a wall), found where the hand is not.

A hand lies on a table, presses a button on it or holds something over it: near the hand
the depth shows the table too, and the table's points would pull the hand model into
it. :func:`dominant_plane` finds the plane holding most of the observed points that lie
well away from the hand (RANSAC over point triples, refined by least squares on its
inliers); the fit then does not take points on that plane for the hand
(``FitConfig.plane_mm``). Deterministic: the triples come from a fixed seed, so a frame's
fit is reproducible.
"""

from __future__ import annotations

import numpy as np

HYPOTHESES = 40  # point triples tried
MIN_POINTS = 30  # fewer points away from the hand: no plane is looked for


def dominant_plane(points_mm: np.ndarray, tolerance_mm: float, min_share: float
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """(point on the plane (3,), unit normal (3,)) of the plane most points lie on, or None.

    points_mm (N, 3): points away from the hand. A point lies on a plane within
    ``tolerance_mm``; the plane must hold at least ``min_share`` of the points (and the
    points must number ``MIN_POINTS``), else None.
    """
    pts = np.asarray(points_mm, np.float64)
    n = len(pts)
    if n < MIN_POINTS or tolerance_mm <= 0:
        return None
    rng = np.random.default_rng(0)
    idx = rng.integers(0, n, (HYPOTHESES, 3))
    a = pts[idx[:, 0]]
    normal = np.cross(pts[idx[:, 1]] - a, pts[idx[:, 2]] - a)
    length = np.linalg.norm(normal, axis=1)
    ok = length > 1e-6
    if not ok.any():
        return None
    normal, a = normal[ok] / length[ok, None], a[ok]
    offset = np.einsum("hk,hk->h", normal, a)
    inliers = np.abs(pts @ normal.T - offset) < tolerance_mm  # (N, H)
    best = int(inliers.sum(axis=0).argmax())
    on = inliers[:, best]
    if on.sum() < max(min_share * n, 3):
        return None
    q = pts[on]
    centre = q.mean(axis=0)
    normal = np.linalg.svd(q - centre, full_matrices=False)[2][2]
    return centre, normal


def on_plane(points_mm: np.ndarray, plane: tuple[np.ndarray, np.ndarray] | None,
             tolerance_mm: float) -> np.ndarray:
    """Mask (N,) of the points within ``tolerance_mm`` of the plane (all False for None)."""
    if plane is None:
        return np.zeros(len(points_mm), bool)
    centre, normal = plane
    return np.abs((np.asarray(points_mm, np.float64) - centre) @ normal) < tolerance_mm
