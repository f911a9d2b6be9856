"""Numpy twins of the crop, the view matrices and the mapping back to camera mm.

Each function mirrors its torch counterpart (same name) in :mod:`vvhand_core.crop`,
:mod:`vvhand_core.views` and :mod:`vvhand_core.jointspace`, for the shapes the pipeline
uses, and evaluates the same float32 operations in the same order, so the results agree
to the last bit or to a few float32 ulps (sin/cos, 3-term sums); ``test/test_lite.py``
checks each against torch. Conventions are the torch modules': millimetres, K =
[fx, fy, cx, cy] per frame (B, 4), crop transforms T (B, 3, 3) mapping full-image pixels
to crop pixels, view angles (azimuth_deg, elevation_deg), elevation-major grids.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32

# num_views -> (n_elevation, n_azimuth); vvhand_core.views uses these (defined once here)
GRID_SHAPES: dict[int, tuple[int, int]] = {1: (1, 1), 3: (1, 3), 9: (3, 3), 15: (3, 5),
                                           25: (5, 5), 81: (9, 9)}
GRID_MAX_DEG = 60.0


# --------------------------------------------------------------------------- crop


def crop_transform(centre_mm: np.ndarray, k: np.ndarray, cube_mm: float,
                   crop_size: int) -> np.ndarray:
    """Crop transforms T (B, 3, 3) float32 from centres (B, 3) camera mm and K (B, 4)."""
    c, k = centre_mm.astype(F32), k.astype(F32)
    uc = k[:, 0] * c[:, 0] / c[:, 2] + k[:, 2]
    vc = k[:, 1] * c[:, 1] / c[:, 2] + k[:, 3]
    half = F32(cube_mm) / F32(2)
    zc = c[:, 2]
    a_px = np.maximum(half * k[:, 0] / zc, half * k[:, 1] / zc)
    s = (F32(1) / (F32(2) * a_px)) * F32(crop_size)  # as torch's int / tensor
    mid = F32((crop_size - 1) / 2)
    t = np.zeros((len(c), 3, 3), F32)
    t[:, 0, 0] = s
    t[:, 1, 1] = s
    t[:, 0, 2] = mid - s * uc
    t[:, 1, 2] = mid - s * vc
    t[:, 2, 2] = 1
    return t


def crop_intrinsics(t: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Intrinsics (B, 4) [fx, fy, cx, cy] of the crops seen as pinhole images: T K."""
    return np.stack((t[:, 0, 0] * k[:, 0], t[:, 1, 1] * k[:, 1],
                     t[:, 0, 0] * k[:, 2] + t[:, 0, 2], t[:, 1, 1] * k[:, 3] + t[:, 1, 2]),
                    axis=-1)


def crop_depth(depth_mm: np.ndarray, centre_mm: np.ndarray, k: np.ndarray, cube_mm: float,
               crop_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Crops (B, S, S) float32 mm (0 = empty) and T (B, 3, 3) float32.

    depth_mm (B, H, W) float32 (0 = invalid), centre_mm (B, 3), K (B, 4): the nearest
    source pixel per crop pixel, 0 outside the image, the cube window or the depth slab.
    """
    _, h, w = depth_mm.shape
    c, k = centre_mm.astype(F32), k.astype(F32)
    t = crop_transform(c, k, cube_mm, crop_size)
    inv_s_u, inv_s_v = F32(1) / t[:, 0, 0], F32(1) / t[:, 1, 1]
    off_u, off_v = -t[:, 0, 2] / t[:, 0, 0], -t[:, 1, 2] / t[:, 1, 1]
    grid = np.arange(crop_size, dtype=F32)
    mid = F32((crop_size - 1) / 2)
    u_src = np.round(inv_s_u[:, None] * grid + off_u[:, None])  # (B, S) source column
    v_src = np.round(inv_s_v[:, None] * grid + off_v[:, None])  # (B, S) source row
    half = F32(cube_mm) / F32(2)
    zc = c[:, 2]
    a_u = half * k[:, 0] / zc * t[:, 0, 0]
    a_v = half * k[:, 1] / zc * t[:, 1, 1]
    eps = F32(1e-6)
    ok_u = (np.abs(grid - mid) <= a_u[:, None] + eps) & (u_src >= 0) & (u_src <= w - 1)
    ok_v = (np.abs(grid - mid) <= a_v[:, None] + eps) & (v_src >= 0) & (v_src <= h - 1)
    u_idx = np.clip(u_src, 0, w - 1).astype(np.intp)
    v_idx = np.clip(v_src, 0, h - 1).astype(np.intp)
    b_idx = np.arange(len(c))[:, None, None]
    crop = depth_mm[b_idx, v_idx[:, :, None], u_idx[:, None, :]].astype(F32)
    keep = (ok_v[:, :, None] & ok_u[:, None, :] & (crop > 0)
            & (np.abs(crop - zc[:, None, None]) <= half))
    return np.where(keep, crop, F32(0)), t


def normalise(crop_mm: np.ndarray, centre_z_mm: np.ndarray, cube_mm: float) -> np.ndarray:
    """Network input: d_n = (d - z_c) / (cube/2), background (0) -> +1.

    crop_mm (B, S, S) or (B, V, S, S) float32, centre_z_mm (B,); same shape out.
    """
    zc = centre_z_mm.astype(F32).reshape((-1,) + (1,) * (crop_mm.ndim - 1))
    norm = (crop_mm - zc) / (F32(cube_mm) / F32(2))
    return np.where(crop_mm > 0, norm, F32(1)).astype(F32)


# --------------------------------------------------------------------------- views


def view_grid(num_views: int, max_deg: float = GRID_MAX_DEG) -> np.ndarray:
    """Candidate view angles (V, 2) float32 = (azimuth_deg, elevation_deg), elevation-major."""
    if num_views not in GRID_SHAPES:
        raise ValueError(f"num_views must be one of {sorted(GRID_SHAPES)}, got {num_views}")
    n_el, n_az = GRID_SHAPES[num_views]

    def axis(n: int) -> np.ndarray:
        return np.zeros(1) if n == 1 else np.linspace(-max_deg, max_deg, n)

    el, az = np.meshgrid(axis(n_el), axis(n_az), indexing="ij")
    return np.stack((az.ravel(), el.ravel()), axis=-1).astype(F32)


def grid_subset_indices(n: int, m: int) -> np.ndarray:
    """Indices (N,) int64 of the N-grid's views in the M-grid (ValueError if one is missing)."""
    sub, full = view_grid(n).astype(np.float64), view_grid(m).astype(np.float64)
    dist = np.abs(sub[:, None] - full[None]).max(-1)  # (N, M) deg
    if (dist.min(1) > 1e-3).any():
        raise ValueError(f"the uniform {n}-view grid is not a subset of the {m}-view "
                         "candidate grid")
    return dist.argmin(1).astype(np.int64)


def rotation_matrices(angles_deg: np.ndarray) -> np.ndarray:
    """Ry(azimuth) @ Rx(elevation) for angles (..., 2) deg -> (..., 3, 3), float32."""
    rad = angles_deg.astype(F32) * F32(np.pi / 180)
    a, e = rad[..., 0], rad[..., 1]
    ca, sa, ce, se = np.cos(a), np.sin(a), np.cos(e), np.sin(e)
    zero = np.zeros_like(a)
    rows = ((ca, sa * se, sa * ce), (zero, ce, -se), (-sa, ca * se, ca * ce))
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def view_matrices(angles_deg: np.ndarray, centre_mm: np.ndarray) -> np.ndarray:
    """View matrices M = T(C) Ry(az) Rx(el) T(-C): angles (V, 2), centres (B, 3) -> (B, V, 4, 4).

    float32, camera mm; the translation C - R C is exactly 0 for the identity view.
    """
    rot = np.broadcast_to(rotation_matrices(angles_deg), (len(centre_mm),) + angles_deg.shape[:1]
                          + (3, 3))
    c = np.broadcast_to(centre_mm.astype(F32)[:, None, :], rot.shape[:-1])
    mats = np.zeros(rot.shape[:-2] + (4, 4), F32)
    mats[..., :3, :3] = rot
    mats[..., :3, 3] = c - (rot * c[..., None, :]).sum(-1)
    mats[..., 3, 3] = 1
    return mats


def invert_rigid(mats: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms (..., 4, 4): [R^T, -R^T t; 0, 1]."""
    rot_t = np.swapaxes(mats[..., :3, :3], -1, -2)
    out = np.zeros_like(mats)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -(rot_t * mats[..., None, :3, 3]).sum(-1)
    out[..., 3, 3] = 1
    return out


def apply_transform(points: np.ndarray, mats: np.ndarray) -> np.ndarray:
    """Rigid transforms: points (..., J, 3), mats (..., 4, 4) -> (..., J, 3) (batch broadcasts)."""
    rot = mats[..., None, :3, :3]
    return (rot * points[..., None, :]).sum(-1) + mats[..., None, :3, 3]


# --------------------------------------------------------------------------- joints


def crop_uvd_to_camera_mm(uvd: np.ndarray, t: np.ndarray, k: np.ndarray,
                          centre_z_mm: np.ndarray, cube_mm: float) -> np.ndarray:
    """Crop (u_px, v_px, d_n) (B, ..., 3) -> camera mm (B, ..., 3), float32.

    T (B, 3, 3), K (B, 4), centre_z_mm (B,) broadcast over the middle dimensions.
    """
    shape = (-1,) + (1,) * (uvd.ndim - 2)
    kc = crop_intrinsics(t.astype(F32), k.astype(F32))
    fx, fy, cx, cy = (kc[:, i].reshape(shape) for i in range(4))
    zc = centre_z_mm.astype(F32).reshape(shape)
    z = uvd[..., 2] * (F32(cube_mm) / F32(2)) + zc
    x = (uvd[..., 0] - cx) / fx * z
    y = (uvd[..., 1] - cy) / fy * z
    return np.stack((x, y, z), axis=-1)


__all__ = ["GRID_MAX_DEG", "GRID_SHAPES", "apply_transform", "crop_depth", "crop_intrinsics",
           "crop_transform", "crop_uvd_to_camera_mm", "grid_subset_indices", "invert_rigid",
           "normalise", "rotation_matrices", "view_grid", "view_matrices"]
