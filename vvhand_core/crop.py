"""Hand crop: a cube of edge cube_mm around the hand centre, resized to crop_size pixels.

The window half-size is a_u = (cube/2) * fx / z_c and a_v = (cube/2) * fy / z_c pixels
around the projected centre (u_c, v_c). One scale s = S / (2 * max(a_u, a_v)) serves both
axes (aspect ratio kept; the shorter side is padded with zeros), so the 3x3 crop
transform is

    T = [[s, 0, (S-1)/2 - s*u_c], [0, s, (S-1)/2 - s*v_c], [0, 0, 1]]

mapping a full-image pixel (u, v, 1) to a crop pixel (pixel centres at integers on both
sides). Each crop pixel takes the nearest source pixel (T^-1, rounded); it is 0 outside
the image, outside the window and outside the depth slab [z_c - cube/2, z_c + cube/2].

The crop is itself a pinhole image with intrinsics T K (``crop_intrinsics``), which is
what the renderer and the joint conversions use. cube_mm is a float or a tensor (B,) of
per-frame cube edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vvhand_core.camera import project_t


@dataclass
class CropConfig:
    """Crop parameters: cube edge (mm) and output size (pixels, square)."""

    cube_mm: float = 250.0
    crop_size: int = 176

    def __post_init__(self) -> None:
        """Validate the parameters."""
        if self.cube_mm <= 0:
            raise ValueError(f"cube_mm must be > 0, got {self.cube_mm}")
        if self.crop_size <= 0:
            raise ValueError(f"crop_size must be > 0, got {self.crop_size}")


def per_frame(value: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A float or (B,) tensor as a (B,) tensor with like's dtype/device (like: (B, ...))."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return t.expand(like.shape[0]) if t.dim() == 0 else t


def crop_transform(
    centre_mm: torch.Tensor, k: torch.Tensor, cube_mm: float | torch.Tensor, crop_size: int
) -> torch.Tensor:
    """Crop transform T (B, 3, 3) from centre_mm (B, 3) camera mm and K (B, 4)."""
    uc = project_t(centre_mm, k)  # (B, 2)
    half = per_frame(cube_mm, centre_mm) / 2
    zc = centre_mm[:, 2]
    a = torch.maximum(half * k[:, 0] / zc, half * k[:, 1] / zc)  # (B,) pixels
    s = crop_size / (2 * a)
    mid = (crop_size - 1) / 2
    t = torch.zeros(centre_mm.shape[0], 3, 3, dtype=centre_mm.dtype, device=centre_mm.device)
    t[:, 0, 0] = s
    t[:, 1, 1] = s
    t[:, 0, 2] = mid - s * uc[:, 0]
    t[:, 1, 2] = mid - s * uc[:, 1]
    t[:, 2, 2] = 1
    return t


def invert_crop_transform(t: torch.Tensor) -> torch.Tensor:
    """Inverse of crop transforms (B, 3, 3) (scale + translation): crop -> full image."""
    out = torch.zeros_like(t)
    out[:, 0, 0] = 1 / t[:, 0, 0]
    out[:, 1, 1] = 1 / t[:, 1, 1]
    out[:, 0, 2] = -t[:, 0, 2] / t[:, 0, 0]
    out[:, 1, 2] = -t[:, 1, 2] / t[:, 1, 1]
    out[:, 2, 2] = 1
    return out


def frame_broadcast(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Reshape a per-frame tensor (B, ...) so it broadcasts against (B, *, ...)."""
    return x.reshape(x.shape[:1] + (1,) * (ndim - 1) + x.shape[1:])


def apply_crop_transform(t: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Map pixels uv (B, ..., 2) through T (B, 3, 3) (crop or inverse) -> (B, ..., 2)."""
    tb = frame_broadcast(t, uv.dim() - 1)
    u = tb[..., 0, 0] * uv[..., 0] + tb[..., 0, 2]
    v = tb[..., 1, 1] * uv[..., 1] + tb[..., 1, 2]
    return torch.stack((u, v), dim=-1)


def crop_intrinsics(t: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Intrinsics (B, 4) [fx, fy, cx, cy] of the crop image seen as a pinhole camera: T K."""
    return torch.stack(
        (
            t[:, 0, 0] * k[:, 0],
            t[:, 1, 1] * k[:, 1],
            t[:, 0, 0] * k[:, 2] + t[:, 0, 2],
            t[:, 1, 1] * k[:, 3] + t[:, 1, 2],
        ),
        dim=-1,
    )


def _round(x: torch.Tensor) -> torch.Tensor:
    """Nearest integer pixel (ties to even, as torch.round and CUDA rintf), the one rule."""
    return torch.round(x)


def crop_depth(
    depth_mm: torch.Tensor,
    centre_mm: torch.Tensor,
    k: torch.Tensor,
    cfg: CropConfig | None = None,
    cube_mm: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop depth images around the hand centre.

    depth_mm (B, H, W) (0 = invalid; any numeric dtype), centre_mm (B, 3) camera mm,
    K (B, 4). cube_mm overrides cfg.cube_mm (float or (B,)). Returns the crop depth
    (B, S, S) in mm (0 = empty; float32 unless depth is float64) and T (B, 3, 3) in
    centre_mm's dtype.
    """
    cfg = cfg or CropConfig()
    cube = per_frame(cfg.cube_mm if cube_mm is None else cube_mm, centre_mm)
    size = cfg.crop_size
    b, h, w = depth_mm.shape
    t = crop_transform(centre_mm, k, cube, size)
    t_inv = invert_crop_transform(t)
    grid = torch.arange(size, device=depth_mm.device, dtype=t.dtype)  # crop pixel centres
    mid = (size - 1) / 2
    # source column per crop column (B, S), row per crop row (B, S): separable
    u_src = _round(t_inv[:, 0, 0, None] * grid + t_inv[:, 0, 2, None])
    v_src = _round(t_inv[:, 1, 1, None] * grid + t_inv[:, 1, 2, None])
    # window: |crop pixel - centre| <= s * a (the longer side spans the whole crop)
    zc = centre_mm[:, 2]
    a_u = cube / 2 * k[:, 0] / zc * t[:, 0, 0]
    a_v = cube / 2 * k[:, 1] / zc * t[:, 1, 1]
    ok_u = ((grid - mid).abs() <= a_u[:, None] + 1e-6) & (u_src >= 0) & (u_src <= w - 1)
    ok_v = ((grid - mid).abs() <= a_v[:, None] + 1e-6) & (v_src >= 0) & (v_src <= h - 1)
    u_idx = u_src.clamp(0, w - 1).long()
    v_idx = v_src.clamp(0, h - 1).long()
    flat = v_idx[:, :, None] * w + u_idx[:, None, :]  # (B, S, S)
    out_dtype = torch.float64 if depth_mm.dtype == torch.float64 else torch.float32
    src = depth_mm if depth_mm.dtype.is_floating_point else depth_mm.to(torch.int32)
    crop = torch.gather(src.reshape(b, h * w), 1, flat.reshape(b, -1)).reshape(b, size, size)
    crop = crop.to(out_dtype)
    half = (cube / 2).to(out_dtype)[:, None, None]
    zc_o = zc.to(out_dtype)[:, None, None]
    keep = ok_v[:, :, None] & ok_u[:, None, :] & (crop > 0) & ((crop - zc_o).abs() <= half)
    return torch.where(keep, crop, torch.zeros((), dtype=out_dtype, device=crop.device)), t


def uncrop(crop_mm: torch.Tensor, t: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Paste crops (B, S, S) back into full images (B, H, W): nearest crop pixel, 0 outside.

    Inverse of crop_depth: exact on the window and slab when the crop magnifies (s >= 1);
    when it shrinks, crop_depth(uncrop(crop)) reproduces the crop instead.
    """
    b, size = crop_mm.shape[0], crop_mm.shape[-1]
    cols = torch.arange(width, device=crop_mm.device, dtype=t.dtype)
    rows = torch.arange(height, device=crop_mm.device, dtype=t.dtype)
    j = _round(t[:, 0, 0, None] * cols + t[:, 0, 2, None])  # (B, W)
    i = _round(t[:, 1, 1, None] * rows + t[:, 1, 2, None])  # (B, H)
    ok = ((i >= 0) & (i <= size - 1))[:, :, None] & ((j >= 0) & (j <= size - 1))[:, None, :]
    flat = i.clamp(0, size - 1).long()[:, :, None] * size + j.clamp(0, size - 1).long()[:, None]
    full = torch.gather(crop_mm.reshape(b, -1), 1, flat.reshape(b, -1)).reshape(b, height, width)
    return torch.where(ok, full, torch.zeros((), dtype=full.dtype, device=full.device))


def normalise(
    crop_mm: torch.Tensor, centre_z_mm: torch.Tensor, cube_mm: float | torch.Tensor
) -> torch.Tensor:
    """Network input (B, ..., S, S): d_n = (d - z_c) / (cube/2), background (0) -> +1.

    crop_mm (B, S, S) or (B, V, S, S) (rendered views share the frame's z_c), centre_z_mm
    (B,), cube_mm float or (B,). In-slab depths land in [-1, 1]; rendered views may
    slightly exceed it (no clamping here).
    """
    zc = frame_broadcast(centre_z_mm.to(crop_mm), crop_mm.dim())
    half = frame_broadcast(per_frame(cube_mm, crop_mm), crop_mm.dim()) / 2
    norm = (crop_mm - zc) / half
    return torch.where(crop_mm > 0, norm, torch.ones((), dtype=norm.dtype, device=norm.device))


def denormalise(
    norm: torch.Tensor, centre_z_mm: torch.Tensor, cube_mm: float | torch.Tensor
) -> torch.Tensor:
    """Inverse of normalise: (B, ..., S, S) -> depth mm, with d_n >= 1 (background) -> 0."""
    zc = frame_broadcast(centre_z_mm.to(norm), norm.dim())
    half = frame_broadcast(per_frame(cube_mm, norm), norm.dim()) / 2
    depth = norm * half + zc
    return torch.where(norm < 1, depth, torch.zeros((), dtype=depth.dtype, device=depth.device))
