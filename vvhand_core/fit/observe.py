"""What the fit sees of one depth image: points near the hand, depth and free space.

Around a hand centre C (mm) the image window covering a ball of ``radius_mm`` is
sampled on a grid of at most ``max_side_px`` cells a side (stride s px, nearest pixel),
so the cost does not grow with the image size or nearness. In that window:

* near pixels: valid depth whose 3D point lies within the ball -> the data points;
* the distance transform ``dt_px`` (full-resolution pixels) of every cell to the nearest
  near pixel: the model must not project where the camera sees past the hand (a far
  surface or nothing). Invalid pixels (0) are unknown rather than empty (dropouts at
  silhouette edges, shadows of structured light), so they get ``invalid_tolerance_px``
  of slack, valid far pixels ``valid_tolerance_px``;
* the observed depth per cell (0 invalid): the model must not stand in front of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt

from vvhand_core.camera import Intrinsics
from vvhand_core.fit import compiled


@dataclass
class Observation:
    """A depth window around a hand (see module doc); arrays float64.

    points_mm (N, 3) near points (camera mm); depth_mm (h, w) window depth (0 invalid);
    slack_px (h, w) distance beyond the near pixels that is tolerated, full-res px;
    u0, v0: full-res pixel of cell (0, 0); stride: px per cell; k: [fx, fy, cx, cy];
    both (h * w, 2): slack and depth per cell, flat (one gather for both).
    """

    points_mm: np.ndarray
    depth_mm: np.ndarray
    slack_px: np.ndarray
    u0: int
    v0: int
    stride: int
    k: np.ndarray
    both: np.ndarray


def window(intr: Intrinsics, centre_mm: np.ndarray, radius_mm: float,
           max_side_px: int) -> tuple[int, int, int, int, int] | None:
    """(u0, v0, u1, v1, stride): the image window covering the ball, or None if off-image.

    The ball's projection is bounded with the ball's nearest depth (at least 50 mm).
    """
    cx, cy, cz = (float(x) for x in centre_mm)
    if cz <= 0:
        return None
    z = max(cz - radius_mm, 50.0)
    u, v = intr.fx * cx / cz + intr.cx, intr.fy * cy / cz + intr.cy
    ru, rv = intr.fx * radius_mm / z, intr.fy * radius_mm / z
    u0, u1 = max(int(np.floor(u - ru)), 0), min(int(np.ceil(u + ru)) + 1, intr.width)
    v0, v1 = max(int(np.floor(v - rv)), 0), min(int(np.ceil(v + rv)) + 1, intr.height)
    if u1 - u0 < 2 or v1 - v0 < 2:
        return None
    stride = max(1, int(np.ceil(max(u1 - u0, v1 - v0) / max_side_px)))
    return u0, v0, u1, v1, stride


def observe(depth_mm: np.ndarray, intr: Intrinsics, centre_mm: np.ndarray,
            radius_mm: float = 160.0, max_side_px: int = 96,
            invalid_tolerance_px: float = 4.0, valid_tolerance_px: float = 1.5,
            ) -> Observation | None:
    """The :class:`Observation` of ``depth_mm`` (H, W) mm (0 / NaN invalid) around a centre.

    None when the window is off the image or holds no near pixel.
    """
    win = window(intr, np.asarray(centre_mm, dtype=np.float64), radius_mm, max_side_px)
    if win is None:
        return None
    u0, v0, u1, v1, s = win
    d = np.asarray(depth_mm)[v0:v1:s, u0:u1:s].astype(np.float64)  # the window only
    d = np.where(np.isfinite(d) & (d > 0), d, 0.0)
    uu = (u0 + s * np.arange(d.shape[1], dtype=np.float64) - intr.cx) / intr.fx
    vv = (v0 + s * np.arange(d.shape[0], dtype=np.float64) - intr.cy) / intr.fy
    pts = np.stack([uu[None, :] * d, vv[:, None] * d, d], axis=-1)
    rel = pts - np.asarray(centre_mm, dtype=np.float64)
    near = (d > 0) & (np.einsum("ijk,ijk->ij", rel, rel) < radius_mm ** 2)
    if not near.any() or min(d.shape) < 2:
        return None
    dt = distance_transform_edt(~near) * s
    tol = np.where(d > 0, valid_tolerance_px, invalid_tolerance_px)
    slack = np.maximum(dt - tol, 0.0)
    return Observation(
        points_mm=pts[near], depth_mm=d, slack_px=slack, u0=u0, v0=v0, stride=s,
        k=np.array([intr.fx, intr.fy, intr.cx, intr.cy], dtype=np.float64),
        both=np.stack([slack.reshape(-1), d.reshape(-1)], axis=1),
    )  # fmt: skip


def lookup(obs: Observation, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Free space at camera points (..., 3): (outside_mm, observed_depth_mm), each (...).

    Both bilinear in the window (continuous, so finite differences see no jumps).
    outside_mm: how far (mm at the point's depth) the point projects beyond the near
    pixels' slack, growing linearly outside the window; observed_depth_mm: the window's
    depth, invalid cells counting as 0 (so they lower it: unknown is not a violation), 0
    off the window. Compiled where numba is (:mod:`.compiled`).
    """
    if compiled.ENABLED:
        return compiled.lookup(obs, points_mm)
    z = np.maximum(points_mm[..., 2], 1.0)
    fx, fy, cx, cy = obs.k
    gu = ((fx * points_mm[..., 0] / z + cx) - obs.u0) / obs.stride
    gv = ((fy * points_mm[..., 1] / z + cy) - obs.v0) / obs.stride
    h, w = obs.slack_px.shape
    cu, cv = np.clip(gu, 0.0, w - 1.0), np.clip(gv, 0.0, h - 1.0)
    off = (np.abs(gu - cu) + np.abs(gv - cv)) * obs.stride
    iu = np.minimum(np.floor(cu), w - 2).astype(np.intp)
    iv = np.minimum(np.floor(cv), h - 2).astype(np.intp)
    fu, fv = (cu - iu)[..., None], (cv - iv)[..., None]
    c = obs.both.take((iv * w + iu)[..., None] + np.array([0, 1, w, w + 1]), axis=0)
    top = c[..., 0, :] + fu * (c[..., 1, :] - c[..., 0, :])  # (..., 2): slack, depth
    vals = top + fv * (c[..., 2, :] + fu * (c[..., 3, :] - c[..., 2, :]) - top)
    outside = (vals[..., 0] + off) * z / fx
    depth = np.where(off > 0, 0.0, vals[..., 1])
    return outside, depth
