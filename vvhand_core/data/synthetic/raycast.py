"""Exact depth rendering by ray casting against spheres, capsules, ellipsoids and planes.

The ray through pixel (u, v) (pixel centres at integer coordinates) is t * d with
d = ((u - cx) / fx, (v - cy) / fy, 1), so the ray parameter t *is* the depth z in mm. Each
primitive is intersected analytically, only over the pixels of its projected bounding box;
the nearest hit wins (z-buffer), which gives correct self-occlusion and no holes. The
camera must be outside every primitive (the hand is hundreds of mm away).
"""

from __future__ import annotations

import numpy as np

from vvhand_core.camera import Intrinsics, project_np
from vvhand_core.data.synthetic.hand_model import HandGeometry

_NEAR_MM = 1.0
VISIBILITY_TOLERANCE_MM = 3.0


def ray_grid(intr: Intrinsics, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Ray slopes: a (W,) = (u - cx) / fx per column, b (H,) = (v - cy) / fy per row.

    The dtype of the rays is the precision every intersection is computed in (float32
    halves the cost of scene version 2; version 1 stays float64, bit for bit).
    """
    a = (np.arange(intr.width, dtype=np.float64) - intr.cx) / intr.fx
    b = (np.arange(intr.height, dtype=np.float64) - intr.cy) / intr.fy
    return a.astype(dtype, copy=False), b.astype(dtype, copy=False)


_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)],
                  dtype=np.float64)  # fmt: skip


def _rect(center: np.ndarray, radius: float, intr: Intrinsics) -> tuple[int, int, int, int]:
    """Pixel rectangle [u0, u1) x [v0, v1) containing the projection of a bounding sphere."""
    return _box_rect(center, np.full(3, radius), intr)


def _box_rect(center: np.ndarray, half: np.ndarray, intr: Intrinsics) -> tuple[int, int, int, int]:
    """Pixel rectangle [u0, u1) x [v0, v1) containing an axis-aligned box's projection.

    Box: centre (3,), half extents (3,); the whole image when it reaches the camera.
    """
    corners = center[None, :] + half[None, :] * _SIGNS
    if corners[:, 2].min() <= _NEAR_MM:
        return 0, intr.width, 0, intr.height
    u = intr.fx * corners[:, 0] / corners[:, 2] + intr.cx
    v = intr.fy * corners[:, 1] / corners[:, 2] + intr.cy
    u0 = max(int(np.floor(u.min())), 0)
    u1 = min(int(np.ceil(u.max())) + 1, intr.width)
    v0 = max(int(np.floor(v.min())), 0)
    v1 = min(int(np.ceil(v.max())) + 1, intr.height)
    return u0, u1, v0, v1


def _box_rects(centers: np.ndarray, halves: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """:func:`_box_rect` of N boxes at once: (N, 4) int rows u0, u1, v0, v1.

    The same arithmetic element by element, so the same rectangles (and the same pixels
    ray-cast) as one call per box, without a numpy call per primitive.
    """
    corners = centers[:, None, :] + halves[:, None, :] * _SIGNS  # (N, 8, 3)
    z = corners[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = intr.fx * corners[..., 0] / z + intr.cx
        v = intr.fy * corners[..., 1] / z + intr.cy
    out = np.stack([np.maximum(np.floor(u.min(axis=1)), 0),
                    np.minimum(np.ceil(u.max(axis=1)) + 1, intr.width),
                    np.maximum(np.floor(v.min(axis=1)), 0),
                    np.minimum(np.ceil(v.max(axis=1)) + 1, intr.height)], axis=1)
    near = z.min(axis=1) <= _NEAR_MM
    out[near] = (0, intr.width, 0, intr.height)
    return out.astype(np.int64)


def _nearest_root(qa: np.ndarray, qb: np.ndarray, qc: float) -> np.ndarray:
    """Smaller root of qa t^2 + 2 qb t + qc = 0 (inf where none or not in front).

    qa > 0 for spheres and ellipsoids; for cylinders qa = 0 only on rays parallel to the
    axis, whose huge or infinite root the cylinder's length test rejects.
    """
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        t = (-qb - np.sqrt(qb * qb - qa * qc)) / qa  # nan where there is no root
        return np.where(t > _NEAR_MM, t, np.inf)


def _sphere_t(a: np.ndarray, b: np.ndarray, c: np.ndarray, r: float) -> np.ndarray:
    """Depth of the front surface of a sphere over a grid of rays; a (1, w), b (h, 1)."""
    qc = float(c @ c - r * r)
    c = np.asarray(c, dtype=a.dtype)
    qa = a * a + b * b + 1.0
    qb = -(a * c[0] + b * c[1] + c[2])
    return _nearest_root(qa, qb, qc)


def _cylinder_t(a: np.ndarray, b: np.ndarray, p0: np.ndarray, p1: np.ndarray, r: float):
    """Depth of the side surface of the finite cylinder p0-p1 (caps left to end spheres)."""
    axis = p1 - p0
    length = float(np.linalg.norm(axis))
    w = axis / length
    m = -p0  # ray origin (camera) relative to p0
    mw = float(m @ w)
    qc = float(m @ m) - mw * mw - r * r
    w, p0 = np.asarray(w, dtype=a.dtype), np.asarray(p0, dtype=a.dtype)
    dw = a * w[0] + b * w[1] + w[2]  # d . w
    md = -(a * p0[0] + b * p0[1] + p0[2])  # m . d
    qa = a * a + b * b + 1.0 - dw * dw
    qb = md - mw * dw
    t = _nearest_root(qa, qb, qc)
    with np.errstate(invalid="ignore"):
        s = mw + t * dw  # nan where t = inf and dw = 0: compares False below
    return np.where((s >= 0.0) & (s <= length), t, np.inf)


def _ellipsoid_t(a, b, center: np.ndarray, rot: np.ndarray, semi: np.ndarray) -> np.ndarray:
    """Depth of the front surface of an ellipsoid (semi-axis directions = rot's columns)."""
    m = (rot / semi[None, :]).T  # maps camera offsets into the unit-sphere frame
    q0 = -(m @ center)
    qc = float(q0 @ q0) - 1.0
    m, q0 = np.asarray(m, dtype=a.dtype), np.asarray(q0, dtype=a.dtype)
    qd = [a * m[k, 0] + b * m[k, 1] + m[k, 2] for k in range(3)]
    qa = qd[0] ** 2 + qd[1] ** 2 + qd[2] ** 2
    qb = q0[0] * qd[0] + q0[1] * qd[1] + q0[2] * qd[2]
    return _nearest_root(qa, qb, qc)


def capsule_rect(cap: np.ndarray, intr: Intrinsics) -> tuple[int, int, int, int]:
    """Pixel rectangle of a capsule [p0 (3), p1 (3), r]: union of its end spheres' rectangles.

    The capsule lies in the convex hull of its two end spheres, whose projection lies in
    the bounding box of the two spheres' projections (much tighter than one sphere around
    a long, slanted capsule).
    """
    a = _rect(cap[0:3], float(cap[6]), intr)
    b = _rect(cap[3:6], float(cap[6]), intr)
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def splat_geometry(
    geom: HandGeometry,
    intr: Intrinsics,
    depth: np.ndarray,
    labels: np.ndarray,
    label: int | np.ndarray | None = None,
    rays: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Ray-cast primitives into an existing z-buffer, in place (camera frame, mm).

    depth (H, W) float64, np.inf where empty; labels (H, W) integer. Where a primitive is
    nearer than ``depth``, depth takes its hit and labels takes ``label`` (an int for every
    primitive, a (P,) array per primitive in part order, or None for the part index).
    ``geom`` may hold any primitives (joints unused). ``rays``: ``ray_grid(intr)``.
    """
    ra, rb = rays if rays is not None else ray_grid(intr)
    if label is None:
        label = np.arange(geom.num_parts)
    per_part = np.broadcast_to(np.asarray(label), (geom.num_parts,))
    pid = 0

    def splat(t_of, rect, rects=None):
        nonlocal pid
        for u0, u1, v0, v1 in rects if rects is not None else (rect,):
            if u0 < u1 and v0 < v1:
                t = t_of(ra[None, u0:u1], rb[v0:v1, None])
                view = depth[v0:v1, u0:u1]
                closer = t < view
                view[closer] = t[closer]
                labels[v0:v1, u0:u1][closer] = per_part[pid]
        pid += 1

    sph = _box_rects(geom.spheres[:, :3], np.repeat(geom.spheres[:, 3:4], 3, axis=1), intr)
    caps = geom.capsules
    ends = _box_rects(np.concatenate([caps[:, 0:3], caps[:, 3:6]]),
                      np.repeat(np.concatenate([caps[:, 6:7]] * 2), 3, axis=1), intr)
    a, b = ends[: len(caps)], ends[len(caps):]
    cap_rects = np.stack([np.minimum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1]),
                          np.minimum(a[:, 2], b[:, 2]), np.maximum(a[:, 3], b[:, 3])], axis=1)
    ell_rects = _box_rects(geom.ell_centers, np.sqrt(
        ((geom.ell_rotations * geom.ell_semi_axes[:, None, :]) ** 2).sum(axis=2)), intr)
    for s, rect in zip(geom.spheres, sph.tolist()):
        splat(lambda a, b, s=s: _sphere_t(a, b, s[:3], s[3]), rect)
    for c, rect in zip(geom.capsules, cap_rects.tolist()):
        splat(lambda a, b, c=c: _cylinder_t(a, b, c[0:3], c[3:6], c[6]), rect,
              _capsule_pieces(c, rect, intr))
    for ctr, rot, semi, rect in zip(geom.ell_centers, geom.ell_rotations, geom.ell_semi_axes,
                                    ell_rects.tolist()):  # fmt: skip
        splat(lambda a, b, ctr=ctr, rot=rot, semi=semi: _ellipsoid_t(a, b, ctr, rot, semi), rect)


def _capsule_pieces(cap: np.ndarray, rect: list[int], intr: Intrinsics
                    ) -> list[list[int]] | None:
    """Rectangles of a long capsule's pieces when they cover much fewer pixels than ``rect``.

    A slanted forearm's rectangle can span most of the image while the capsule covers a
    strip of it. Cut along its axis into pieces about 3 radii long, each piece lies in the
    hull of its end spheres, so the union of the pieces' rectangles holds every pixel the
    capsule can hit; the full cylinder is still what is intersected there, so every pixel
    gets the same depth as over ``rect`` (pixels in two pieces get it twice, idempotently).
    None: keep ``rect``.
    """
    p0, p1, r = cap[0:3], cap[3:6], float(cap[6])
    n = min(int(np.ceil(np.linalg.norm(p1 - p0) / (3.0 * r))), 24)
    if n < 3:
        return None
    pts = p0[None] + np.linspace(0.0, 1.0, n + 1)[:, None] * (p1 - p0)[None]
    ends = _box_rects(pts, np.full((n + 1, 3), r), intr)
    a, b = ends[:-1], ends[1:]
    pieces = np.stack([np.minimum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1]),
                       np.minimum(a[:, 2], b[:, 2]), np.maximum(a[:, 3], b[:, 3])], axis=1)
    area = (np.clip(pieces[:, 1] - pieces[:, 0], 0, None)
            * np.clip(pieces[:, 3] - pieces[:, 2], 0, None)).sum()
    full = max(rect[1] - rect[0], 0) * max(rect[3] - rect[2], 0)
    return pieces.tolist() if area < 0.6 * full else None


def splat_planes(
    planes: np.ndarray,
    intr: Intrinsics,
    depth: np.ndarray,
    labels: np.ndarray,
    label: int,
    max_depth_mm: float,
    rays: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Ray-cast planes [nx, ny, nz, h] (P, 4) into a z-buffer in place (see splat_geometry).

    Hits beyond ``max_depth_mm`` or behind the camera are ignored.
    """
    ra, rb = rays if rays is not None else ray_grid(intr, depth.dtype)
    for nx, ny, nz, h in np.asarray(planes, dtype=np.float64).reshape(-1, 4).tolist():
        with np.errstate(divide="ignore", invalid="ignore"):
            t = h / (ra[None, :] * nx + (rb * ny + nz)[:, None])
            closer = (t < depth) & (t > _NEAR_MM) & (t <= max_depth_mm)
        depth[closer] = t[closer]
        labels[closer] = label


def render_geometry(geom: HandGeometry, intr: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast a posed hand (camera frame, mm) into (depth (H, W) float32, part (H, W) int16).

    depth is 0 where no primitive is hit; part is the index of the visible primitive
    (see ``HandGeometry``) or -1.
    """
    depth = np.full((intr.height, intr.width), np.inf)
    part = np.full((intr.height, intr.width), -1, dtype=np.int16)
    splat_geometry(geom, intr, depth, part)
    out = np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)
    return out, part


def ray_depths(geom: HandGeometry, points_mm: np.ndarray) -> np.ndarray:
    """(N,) depth of the nearest primitive of ``geom`` along the rays through points (N, 3).

    np.inf where a ray misses every primitive. Cheap occlusion tests on a few rays.
    """
    pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    a = (pts[:, 0] / pts[:, 2])[None, :]
    b = (pts[:, 1] / pts[:, 2])[None, :]
    t = np.full(a.shape, np.inf)
    for s in geom.spheres:
        t = np.minimum(t, _sphere_t(a, b, s[:3], s[3]))
    for c in geom.capsules:
        t = np.minimum(t, _cylinder_t(a, b, c[0:3], c[3:6], c[6]))
    for ctr, rot, semi in zip(geom.ell_centers, geom.ell_rotations, geom.ell_semi_axes):
        t = np.minimum(t, _ellipsoid_t(a, b, ctr, rot, semi))
    return t[0]


def render_planes(
    planes: np.ndarray, intr: Intrinsics, max_depth_mm: float, dtype=np.float64
) -> np.ndarray:
    """Depth (H, W) float32 of planes n . p = h given as rows [nx, ny, nz, h] (unit n).

    Hits beyond ``max_depth_mm`` (the sensor's range) or behind the camera give 0.
    ``dtype``: precision of the computation (see ``ray_grid``).
    """
    ra, rb = ray_grid(intr, dtype)
    depth = np.full((intr.height, intr.width), np.inf, dtype=dtype)
    for nx, ny, nz, h in np.asarray(planes, dtype=np.float64).reshape(-1, 4).tolist():
        nd = ra[None, :] * nx + rb[:, None] * ny + nz
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(np.abs(nd) > 1e-9, h / nd, np.inf)
        t = np.where((t > _NEAR_MM) & (t <= max_depth_mm), t, np.inf)
        depth = np.minimum(depth, t)
    return np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)


def joint_visibility(
    joints_mm: np.ndarray, joint_radius_mm: np.ndarray, hand_depth_mm: np.ndarray, intr: Intrinsics
) -> np.ndarray:
    """(J,) bool: the hand's visible surface at a joint's pixel belongs to that joint.

    A joint is visible when the rendered depth at its (rounded) pixel is not nearer than
    its centre minus its radius minus ``VISIBILITY_TOLERANCE_MM``; outside the image or
    behind other parts it is not.
    """
    uv = np.rint(project_np(joints_mm, intr)).astype(int)
    h, w = hand_depth_mm.shape
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    vis = np.zeros(len(joints_mm), dtype=bool)
    for j in np.nonzero(inside)[0]:
        d = hand_depth_mm[uv[j, 1], uv[j, 0]]
        vis[j] = d > 0 and d >= joints_mm[j, 2] - joint_radius_mm[j] - VISIBILITY_TOLERANCE_MM
    return vis
