"""Torch renderer (CPU and CUDA): forward-map every foreground crop pixel into V views.

Fully vectorised: the foreground is found once (nonzero) and shared by all views; frames
with different foreground sizes are padded to the largest; the B*V views are one
scatter-min (``scatter_reduce_`` "amin") into a z-buffer initialised to +inf, whose
untouched pixels become 0 at the end. Points that leave the view (or fall behind the
camera) are sent to pixel 0 with depth +inf, which never wins.

The homogeneous target pixels h = z * (G (j, i, 1)) + b (render.common) are computed
 - on CPU with one batched matrix product of (j z, i z, z) (fast; float32 "highest"
   matmul precision, else as on CUDA);
 - on CUDA with separate multiplies and adds in render.common's order, so the result is
   bit-identical to the PyCUDA kernel's (and immune to TF32 matmul settings).
"""

from __future__ import annotations

import torch

from vvhand_core.render.common import check_inputs, view_homographies


def foreground(crop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Foreground pixels of crops (B, S, S), padded to the largest count N.

    Returns the flat pixel index (B, N) long, the depth (B, N) and a validity mask (B, N)
    (None when B == 1: no padding). Padding entries have index 0 and depth 0.
    """
    b, s = crop.shape[0], crop.shape[-1]
    flat = crop.reshape(b, s * s)
    fg = flat > 0
    if b == 1:
        pix = fg[0].nonzero()[:, 0]
        return pix[None], flat[0].index_select(0, pix)[None], None
    bi, pi = fg.nonzero(as_tuple=True)
    counts = fg.sum(1)
    n_max = int(counts.max()) if bi.numel() else 0
    pos = torch.arange(bi.numel(), device=crop.device) - (counts.cumsum(0) - counts)[bi]
    pix = torch.zeros(b, n_max, dtype=torch.long, device=crop.device)
    z = torch.zeros(b, n_max, dtype=crop.dtype, device=crop.device)
    valid = torch.zeros(b, n_max, dtype=torch.bool, device=crop.device)
    pix[bi, pos] = pi
    z[bi, pos] = flat[bi, pi]
    valid[bi, pos] = True
    return pix, z, valid


def _rows_elementwise(
    g: torch.Tensor, bvec: torch.Tensor, jj: torch.Tensor, ii: torch.Tensor, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(h_x, h_y, h_z), each (B, V, N), by separate ops: z * (G_r0 j + G_r1 i + G_r2) + b_r."""
    jj, ii, z = jj[:, None], ii[:, None], z[:, None]

    def row(r: int) -> torch.Tensor:
        ray = g[:, :, r, 0, None] * jj + g[:, :, r, 1, None] * ii + g[:, :, r, 2, None]
        return z * ray + bvec[:, :, r, None]

    return row(0), row(1), row(2)


def _rows_matmul(
    g: torch.Tensor, bvec: torch.Tensor, jj: torch.Tensor, ii: torch.Tensor, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(h_x, h_y, h_z), each (B, V, N), as one batched product G (j z, i z, z) + b."""
    b, v = g.shape[:2]
    q = torch.stack((jj * z, ii * z, z), dim=1)  # (B, 3, N)
    gm = g.permute(0, 2, 1, 3).reshape(b, 3 * v, 3)  # rows ordered (r, view)
    h = torch.baddbmm(bvec.permute(0, 2, 1).reshape(b, 3 * v, 1), gm, q).view(b, 3, v, -1)
    return h[:, 0], h[:, 1], h[:, 2]


class TorchRenderer:
    """Render virtual views with torch ops on ``device`` (cpu or cuda)."""

    backend = "torch"

    def __init__(self, device: str | torch.device = "cpu") -> None:
        """Renderer for tensors on device."""
        self.device = torch.device(device)

    def render(
        self,
        crop_mm: torch.Tensor,
        t: torch.Tensor,
        k: torch.Tensor,
        view_mats: torch.Tensor,
    ) -> torch.Tensor:
        """Render crops (B, S, S) mm through views (B, V, 4, 4) -> (B, V, S, S) mm, 0 empty.

        T (B, 3, 3) crop transforms, K (B, 4) intrinsics. Output dtype is the crop's
        (float32 or float64; other crops are rendered in float32).
        """
        check_inputs(crop_mm, t, k, view_mats)
        dev = self.device
        dtype = crop_mm.dtype if crop_mm.dtype in (torch.float32, torch.float64) else (
            torch.float32
        )
        crop = crop_mm.to(device=dev, dtype=dtype)
        b, s = crop.shape[0], crop.shape[-1]
        v = view_mats.shape[1]
        g, bvec = view_homographies(t.to(dev), k.to(dev), view_mats.to(dev), dtype)
        pix, z, valid = foreground(crop)
        n = pix.shape[1]
        jj = (pix % s).to(dtype)  # (B, N) column
        ii = (pix // s).to(dtype)  # (B, N) row
        fast = dev.type == "cpu" and (
            dtype == torch.float64 or torch.get_float32_matmul_precision() == "highest"
        )
        hx, hy, hz = (_rows_matmul if fast else _rows_elementwise)(g, bvec, jj, ii, z)

        u = torch.round(hx / hz)
        w = torch.round(hy / hz)
        ok = (hz > 0) & (u >= 0) & (u <= s - 1) & (w >= 0) & (w <= s - 1)
        if valid is not None:
            ok &= valid[:, None, :]
        local = torch.where(ok, w * s + u, 0).long()  # pixel index inside its view
        depth = torch.where(ok, hz, torch.inf)
        buf = torch.full((b * v, s * s), torch.inf, dtype=dtype, device=dev)
        buf.scatter_reduce_(
            1, local.reshape(b * v, n), depth.reshape(b * v, n), "amin", include_self=True
        )
        return torch.nan_to_num_(buf, posinf=0.0).view(b, v, s, s)
