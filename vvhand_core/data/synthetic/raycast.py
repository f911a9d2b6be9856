"""Exact depth rendering by ray casting against spheres, capsules, ellipsoids and planes.

The ray through pixel (u, v) (pixel centres at integer coordinates) is t * d with
d = ((u - cx) / fx, (v - cy) / fy, 1), so the ray parameter t *is* the depth z in mm. Each
primitive is intersected analytically, only over the pixels of its projected bounding box;
the nearest hit wins (z-buffer), which gives correct self-occlusion and no holes. The
camera must be outside every primitive (the hand is hundreds of mm away).
"""

from __future__ import annotations

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_core.data.synthetic.hand_model import HandGeometry

_NEAR_MM = 1.0


def ray_grid(intr: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Ray slopes: a (W,) = (u - cx) / fx per column, b (H,) = (v - cy) / fy per row."""
    a = (np.arange(intr.width, dtype=np.float64) - intr.cx) / intr.fx
    b = (np.arange(intr.height, dtype=np.float64) - intr.cy) / intr.fy
    return a, b


def _rect(center: np.ndarray, radius: float, intr: Intrinsics) -> tuple[int, int, int, int]:
    """Pixel rectangle [u0, u1) x [v0, v1) containing the projection of a bounding sphere."""
    corners = center[None, :] + radius * np.array(
        [[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=np.float64
    )
    if corners[:, 2].min() <= _NEAR_MM:
        return 0, intr.width, 0, intr.height
    u = intr.fx * corners[:, 0] / corners[:, 2] + intr.cx
    v = intr.fy * corners[:, 1] / corners[:, 2] + intr.cy
    u0 = max(int(np.floor(u.min())), 0)
    u1 = min(int(np.ceil(u.max())) + 1, intr.width)
    v0 = max(int(np.floor(v.min())), 0)
    v1 = min(int(np.ceil(v.max())) + 1, intr.height)
    return u0, u1, v0, v1


def _nearest_root(qa: np.ndarray, qb: np.ndarray, qc: np.ndarray) -> np.ndarray:
    """Smaller root of qa t^2 + 2 qb t + qc = 0 (inf where none or not in front)."""
    disc = qb * qb - qa * qc
    ok = (disc >= 0.0) & (qa > 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (-qb - np.sqrt(np.where(ok, disc, 0.0))) / np.where(ok, qa, 1.0)
    return np.where(ok & (t > _NEAR_MM), t, np.inf)


def _sphere_t(a: np.ndarray, b: np.ndarray, c: np.ndarray, r: float) -> np.ndarray:
    """Depth of the front surface of a sphere over a grid of rays; a (1, w), b (h, 1)."""
    qa = a * a + b * b + 1.0
    qb = -(a * c[0] + b * c[1] + c[2])
    qc = c @ c - r * r
    return _nearest_root(qa, qb, np.full_like(qa, qc))


def _cylinder_t(a: np.ndarray, b: np.ndarray, p0: np.ndarray, p1: np.ndarray, r: float):
    """Depth of the side surface of the finite cylinder p0-p1 (caps left to end spheres)."""
    axis = p1 - p0
    length = float(np.linalg.norm(axis))
    w = axis / length
    dw = a * w[0] + b * w[1] + w[2]  # d . w
    m = -p0  # ray origin (camera) relative to p0
    mw = float(m @ w)
    md = -(a * p0[0] + b * p0[1] + p0[2])  # m . d
    qa = a * a + b * b + 1.0 - dw * dw
    qb = md - mw * dw
    qc = float(m @ m) - mw * mw - r * r
    t = _nearest_root(qa, qb, np.full_like(qa, qc))
    with np.errstate(invalid="ignore"):
        s = mw + t * dw  # nan where t = inf and dw = 0: compares False below
    return np.where((s >= 0.0) & (s <= length), t, np.inf)


def _ellipsoid_t(a, b, center: np.ndarray, rot: np.ndarray, semi: np.ndarray) -> np.ndarray:
    """Depth of the front surface of an ellipsoid (semi-axis directions = rot's columns)."""
    m = (rot / semi[None, :]).T  # maps camera offsets into the unit-sphere frame
    q0 = -(m @ center)
    qd = [a * m[k, 0] + b * m[k, 1] + m[k, 2] for k in range(3)]
    qa = qd[0] ** 2 + qd[1] ** 2 + qd[2] ** 2
    qb = q0[0] * qd[0] + q0[1] * qd[1] + q0[2] * qd[2]
    qc = float(q0 @ q0) - 1.0
    return _nearest_root(qa, qb, np.full_like(qa, qc))


def render_geometry(geom: HandGeometry, intr: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast a posed hand (camera frame, mm) into (depth (H, W) float32, part (H, W) int16).

    depth is 0 where no primitive is hit; part is the index of the visible primitive
    (see ``HandGeometry``) or -1.
    """
    ra, rb = ray_grid(intr)
    depth = np.full((intr.height, intr.width), np.inf)
    part = np.full((intr.height, intr.width), -1, dtype=np.int16)
    bounds = geom.bounding_spheres()
    pid = 0

    def splat(t_of, bound):
        nonlocal pid
        u0, u1, v0, v1 = _rect(bound[:3], float(bound[3]), intr)
        if u0 < u1 and v0 < v1:
            t = t_of(ra[None, u0:u1], rb[v0:v1, None])
            view = depth[v0:v1, u0:u1]
            closer = t < view
            view[closer] = t[closer]
            part[v0:v1, u0:u1][closer] = pid
        pid += 1

    for s in geom.spheres:
        splat(lambda a, b, s=s: _sphere_t(a, b, s[:3], s[3]), bounds[pid])
    for c in geom.capsules:
        splat(lambda a, b, c=c: _cylinder_t(a, b, c[0:3], c[3:6], c[6]), bounds[pid])
    for ctr, rot, semi in zip(geom.ell_centers, geom.ell_rotations, geom.ell_semi_axes):
        splat(lambda a, b, ctr=ctr, rot=rot, semi=semi: _ellipsoid_t(a, b, ctr, rot, semi),
              bounds[pid])  # fmt: skip
    out = np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)
    return out, part


def render_planes(planes: np.ndarray, intr: Intrinsics, max_depth_mm: float) -> np.ndarray:
    """Depth (H, W) float32 of planes n . p = h given as rows [nx, ny, nz, h] (unit n).

    Hits beyond ``max_depth_mm`` (the sensor's range) or behind the camera give 0.
    """
    ra, rb = ray_grid(intr)
    depth = np.full((intr.height, intr.width), np.inf)
    for nx, ny, nz, h in np.asarray(planes, dtype=np.float64).reshape(-1, 4):
        nd = ra[None, :] * nx + rb[:, None] * ny + nz
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(np.abs(nd) > 1e-9, h / nd, np.inf)
        t = np.where((t > _NEAR_MM) & (t <= max_depth_mm), t, np.inf)
        depth = np.minimum(depth, t)
    return np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)
