"""Joint coordinates: crop space (u, v, normalised depth) <-> camera mm, and view frames.

The A2J network predicts, per rendered view, (u, v) in crop pixels and depth in
normalised units d_n = (z - z_c) / (cube/2), where z is the depth in that view's camera.
Inside A2J (its depth head and its loss) depth may be carried in other units: see
:func:`depth_scale` (d_model = d_n * depth_scale); ``A2J.decode`` always returns d_n.
All rendered views share the camera K, the crop transform T and the centre C, so a view's
joints in camera mm are uvd -> xyz via T^-1 and K; M_i^-1 then returns them to the
original camera frame (where they are fused). The training targets go the other way:
ground-truth joints (camera mm) -> M_i -> crop uvd.

Shapes: B frames, V views, J joints. Per-frame tensors (T (B, 3, 3), K (B, 4),
centre_z_mm (B,), cube_mm float or (B,)) broadcast over any middle dimensions, so points
may be (B, J, 3) or (B, V, J, 3).
"""

from __future__ import annotations

import torch

from vvhand_core.crop import crop_intrinsics, frame_broadcast, per_frame
from vvhand_core.views import invert_rigid

DEPTH_UNITS = ("normalised", "pixels")


def depth_scale(units: str, crop_size: int) -> float:
    """Factor f from normalised depth d_n to the depth units A2J learns in (d = d_n * f).

    "normalised": f = 1 (d_n itself; checkpoints written before the choice existed).
    "pixels": f = S / 2, so d = (z - z_c) * S / cube: one unit of depth is as many mm as
    one crop pixel is at the hand centre, and depth errors weigh like u, v errors in the
    smooth-L1 loss (the A2J release likewise scales depth to pixel-like units).
    """
    if units == "normalised":
        return 1.0
    if units == "pixels":
        return crop_size / 2.0
    raise ValueError(f"depth units must be one of {DEPTH_UNITS}, got {units!r}")


def _crop_terms(t, k, centre_z_mm, cube_mm, like: torch.Tensor):
    """Crop intrinsics (B, ..., 4), centre depth and half cube (B, ...) broadcast to ``like``."""
    dims = like.dim() - 1
    kc = frame_broadcast(crop_intrinsics(t, k).to(like), dims)
    zc = frame_broadcast(centre_z_mm.to(like), dims)
    half = frame_broadcast(per_frame(cube_mm, like), dims) / 2
    return kc, zc, half


def crop_uvd_to_camera_mm(
    uvd: torch.Tensor,
    t: torch.Tensor,
    k: torch.Tensor,
    centre_z_mm: torch.Tensor,
    cube_mm: float | torch.Tensor,
) -> torch.Tensor:
    """Crop (u_crop, v_crop, d_n) (B, ..., 3) -> camera mm (B, ..., 3)."""
    kc, zc, half = _crop_terms(t, k, centre_z_mm, cube_mm, uvd)
    z = uvd[..., 2] * half + zc
    x = (uvd[..., 0] - kc[..., 2]) / kc[..., 0] * z
    y = (uvd[..., 1] - kc[..., 3]) / kc[..., 1] * z
    return torch.stack((x, y, z), dim=-1)


def camera_mm_to_crop_uvd(
    xyz: torch.Tensor,
    t: torch.Tensor,
    k: torch.Tensor,
    centre_z_mm: torch.Tensor,
    cube_mm: float | torch.Tensor,
) -> torch.Tensor:
    """Camera mm (B, ..., 3) -> crop (u_crop, v_crop, d_n) (B, ..., 3)."""
    kc, zc, half = _crop_terms(t, k, centre_z_mm, cube_mm, xyz)
    z = xyz[..., 2]
    u = kc[..., 0] * xyz[..., 0] / z + kc[..., 2]
    v = kc[..., 1] * xyz[..., 1] / z + kc[..., 3]
    return torch.stack((u, v, (z - zc) / half), dim=-1)


def apply_transform(points: torch.Tensor, mats: torch.Tensor) -> torch.Tensor:
    """Apply rigid/affine transforms: points (..., J, 3), mats (..., 4, 4) -> (..., J, 3).

    Batch dimensions broadcast, e.g. points (B, 1, J, 3) with mats (B, V, 4, 4).
    """
    rot = mats[..., None, :3, :3]  # (..., 1, 3, 3)
    return (rot * points[..., None, :]).sum(-1) + mats[..., None, :3, 3]


def camera_mm_to_views(joints_mm: torch.Tensor, view_mats: torch.Tensor) -> torch.Tensor:
    """Joints (B, J, 3) camera mm -> each view's camera mm (B, V, J, 3) via M_i."""
    return apply_transform(joints_mm[:, None], view_mats)


def views_to_camera_mm(joints_view_mm: torch.Tensor, view_mats: torch.Tensor) -> torch.Tensor:
    """Per-view joints (B, V, J, 3) in view i's camera mm -> original camera mm via M_i^-1."""
    return apply_transform(joints_view_mm, invert_rigid(view_mats))


def camera_mm_to_view_uvd(
    joints_mm: torch.Tensor,
    view_mats: torch.Tensor,
    t: torch.Tensor,
    k: torch.Tensor,
    centre_z_mm: torch.Tensor,
    cube_mm: float | torch.Tensor,
) -> torch.Tensor:
    """Training targets: joints (B, J, 3) camera mm -> per-view crop uvd (B, V, J, 3)."""
    return camera_mm_to_crop_uvd(
        camera_mm_to_views(joints_mm, view_mats), t, k, centre_z_mm, cube_mm
    )


def view_uvd_to_camera_mm(
    uvd: torch.Tensor,
    view_mats: torch.Tensor,
    t: torch.Tensor,
    k: torch.Tensor,
    centre_z_mm: torch.Tensor,
    cube_mm: float | torch.Tensor,
) -> torch.Tensor:
    """Per-view predictions (B, V, J, 3) crop uvd -> original camera mm (B, V, J, 3)."""
    return views_to_camera_mm(
        crop_uvd_to_camera_mm(uvd, t, k, centre_z_mm, cube_mm), view_mats
    )
