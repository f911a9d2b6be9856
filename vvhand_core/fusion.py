"""View selection and multi-view fusion (paper Eq. 2).

Select the top-N of M view logits, weight the selected views by a softmax over their
logits (or equally: the unweighted baseline), map each view's joints back to the
original camera frame through the inverse of its view matrix and average:
``J = sum_i w_i * M_i^-1 J_i``. All functions are batched and differentiable (except
the discrete top-N choice), on any device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vvhand_core.camera import MIRROR_X
from vvhand_core.jointspace import apply_transform
from vvhand_core.lite import fusion as _np_fusion

FUSIONS = _np_fusion.FUSIONS  # defined once, in the torch-free twin


def select_top_n(logits: Tensor, n: int) -> Tensor:
    """Indices (B, N) int64 of the N largest logits of (B, M), best first."""
    m = logits.shape[-1]
    if not 1 <= n <= m:
        raise ValueError(f"cannot select {n} of {m} views")
    return torch.topk(logits, n, dim=-1, largest=True, sorted=True).indices


def gather_views(x: Tensor, idx: Tensor) -> Tensor:
    """Gather views: x (B, M, ...), idx (B, N) -> x[b, idx[b]] (B, N, ...)."""
    index = idx.reshape(*idx.shape, *([1] * (x.dim() - 2))).expand(*idx.shape, *x.shape[2:])
    return torch.gather(x, 1, index)


def fusion_weights(selected_logits: Tensor, fusion: str = "confidence") -> Tensor:
    """Weights (B, N) summing to 1: softmax of the selected logits, or 1/N for "average"."""
    if fusion == "confidence":
        return torch.softmax(selected_logits, dim=-1)
    if fusion == "average":
        n = selected_logits.shape[-1]
        return torch.full_like(selected_logits, 1.0 / n)
    raise ValueError(f"unknown fusion {fusion!r}; known: {', '.join(FUSIONS)}")


def selection_score(logits: Tensor, idx: Tensor) -> Tensor:
    """Softmax mass (B,) over all M logits (B, M) covered by the selected idx (B, N)."""
    return gather_views(torch.softmax(logits, dim=-1), idx).sum(dim=-1)


def to_camera_frame(joints_view_mm: Tensor, inv_view_mats: Tensor) -> Tensor:
    """Joints (B, N, J, 3) in each view's frame -> original camera frame via M_i^-1 (B, N, 4, 4)."""
    return apply_transform(joints_view_mm, inv_view_mats)


def fuse_joints(joints_view_mm: Tensor, inv_view_mats: Tensor, weights: Tensor) -> Tensor:
    """Eq. 2: sum_i w_i * M_i^-1 J_i.

    joints_view_mm (B, N, J, 3) predicted in view i's frame (camera mm after the view
    rotation), inv_view_mats (B, N, 4, 4), weights (B, N) -> fused joints (B, J, 3) mm.
    """
    cam = to_camera_frame(joints_view_mm, inv_view_mats)
    return torch.einsum("bn,bnjk->bjk", weights.to(cam.dtype), cam)


def fuse_camera_joints(joints_mm: Tensor, weights: Tensor) -> Tensor:
    """Weighted average of joints already in the camera frame: (B, N, J, 3), (B, N) -> (B, J, 3)."""
    return torch.einsum("bn,bnjk->bjk", weights.to(joints_mm.dtype), joints_mm)


def merge_mirror_pass(joints_mm: Tensor, views_mm: Tensor, idx: Tensor, weights: Tensor
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Fuse the image pass (first L frames) with the mirror pass (last L frames).

    The mirror pass ran on the left-right flipped frames (``camera.Intrinsics.mirrored``):
    its joints (L, J, 3) and views (L, N, J, 3) come back by x -> -x. Returns the fused
    joints (the passes' mean, (L, J, 3)), the views of both passes (L, 2N, J, 3), their
    grid indices (L, 2N) (the mirror pass's in the flipped frame) and weights (L, 2N),
    each pass's halved, and the two passes' joints (L, 2, J, 3): image, mirror.
    """
    n = joints_mm.shape[0] // 2
    flip = torch.tensor(MIRROR_X, dtype=joints_mm.dtype, device=joints_mm.device)
    passes = torch.stack([joints_mm[:n], joints_mm[n:] * flip], dim=1)
    views = torch.cat([views_mm[:n], views_mm[n:] * flip], dim=1)
    return (passes.mean(dim=1), views, torch.cat([idx[:n], idx[n:]], dim=1),
            torch.cat([weights[:n], weights[n:]], dim=1) / 2, passes)
