"""What both render backends share: the per-view pixel homographies and the op order.

A crop is a pinhole image with intrinsics K_c = T K (crop.crop_intrinsics). A crop pixel
(j, i) with depth z is the camera point P = z K_c^-1 (j, i, 1); view i moves it to
R P + t and projects it with K_c again, so in homogeneous crop pixels

    h = z * (G (j, i, 1)) + b,   G = K_c R K_c^-1,   b = K_c t,

the target pixel is (round(h_x / h_z), round(h_y / h_z)) (nearest, ties to even) and
the depth is h_z (K_c's last row is (0, 0, 1)); targets outside the crop or with h_z <= 0
are dropped. On CUDA both backends evaluate exactly these float32 operations in this
order, each rounded on its own (no fused multiply-add), so they agree bit for bit. G's
last row is exactly (0, 0, 1) and b_z exactly 0 for the identity view, so h_z = z and
h_x / h_z rounds back to the source column: the identity view reproduces the crop
exactly.
"""

from __future__ import annotations

import torch

from vvhand_core.crop import crop_intrinsics


def view_homographies(
    t: torch.Tensor, k: torch.Tensor, view_mats: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """G (B, V, 3, 3) and b (B, V, 3) in dtype from T (B, 3, 3), K (B, 4), M (B, V, 4, 4).

    Computed in float64 (never TF32) and rounded once to dtype.
    """
    kc = crop_intrinsics(t.double(), k.to(device=t.device, dtype=torch.float64))  # (B, 4)
    b = kc.shape[0]
    kmat = torch.zeros(b, 3, 3, dtype=torch.float64, device=t.device)
    kinv = torch.zeros_like(kmat)
    kmat[:, 0, 0], kmat[:, 1, 1] = kc[:, 0], kc[:, 1]
    kmat[:, 0, 2], kmat[:, 1, 2], kmat[:, 2, 2] = kc[:, 2], kc[:, 3], 1.0
    kinv[:, 0, 0], kinv[:, 1, 1] = 1.0 / kc[:, 0], 1.0 / kc[:, 1]
    kinv[:, 0, 2], kinv[:, 1, 2], kinv[:, 2, 2] = -kc[:, 2] / kc[:, 0], -kc[:, 3] / kc[:, 1], 1.0
    m = view_mats.to(device=t.device, dtype=torch.float64)
    g = kmat[:, None] @ m[..., :3, :3] @ kinv[:, None]
    bvec = (kmat[:, None] @ m[..., :3, 3:4])[..., 0]
    return g.to(dtype), bvec.to(dtype)


def check_inputs(
    crop_mm: torch.Tensor, t: torch.Tensor, k: torch.Tensor, view_mats: torch.Tensor
) -> None:
    """Raise ValueError on inconsistent shapes (crop (B,S,S), T (B,3,3), K (B,4), M (B,V,4,4))."""
    if crop_mm.dim() != 3 or crop_mm.shape[1] != crop_mm.shape[2]:
        raise ValueError(f"crop_mm must be (B, S, S), got {tuple(crop_mm.shape)}")
    b = crop_mm.shape[0]
    if t.shape != (b, 3, 3) or k.shape != (b, 4):
        raise ValueError(f"T must be ({b}, 3, 3) and K ({b}, 4), got {tuple(t.shape)}, "
                         f"{tuple(k.shape)}")
    if view_mats.dim() != 4 or view_mats.shape[0] != b or view_mats.shape[2:] != (4, 4):
        raise ValueError(f"view_mats must be ({b}, V, 4, 4), got {tuple(view_mats.shape)}")
