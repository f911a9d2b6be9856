"""Numpy twins of view selection and fusion (:mod:`vvhand_core.fusion`, paper Eq. 2).

Top-N of M view logits (best first), softmax weights over the selected logits (or 1/N
for "average"), the softmax mass the selection covers, and the weighted average of the
views' joints in the camera frame. float32 in, float32 out.
"""

from __future__ import annotations

import numpy as np

from vvhand_core.lite.geometry import apply_transform

FUSIONS = ("confidence", "average")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, float32 (max subtracted first)."""
    x = logits.astype(np.float32)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def select_top_n(logits: np.ndarray, n: int) -> np.ndarray:
    """Indices (B, N) int64 of the N largest logits of (B, M), best first (ties: lower index)."""
    m = logits.shape[-1]
    if not 1 <= n <= m:
        raise ValueError(f"cannot select {n} of {m} views")
    return np.argsort(-logits, axis=-1, kind="stable")[:, :n].astype(np.int64)


def gather_views(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Gather views: x (B, M, ...), idx (B, N) -> x[b, idx[b]] (B, N, ...)."""
    return np.take_along_axis(x, idx.reshape(idx.shape + (1,) * (x.ndim - 2)), axis=1)


def fusion_weights(selected_logits: np.ndarray, fusion: str = "confidence") -> np.ndarray:
    """Weights (B, N) summing to 1: softmax of the selected logits, or 1/N for "average"."""
    if fusion == "confidence":
        return softmax(selected_logits)
    if fusion == "average":
        return np.full(selected_logits.shape, 1.0 / selected_logits.shape[-1], np.float32)
    raise ValueError(f"unknown fusion {fusion!r}; known: {', '.join(FUSIONS)}")


def selection_score(logits: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Softmax mass (B,) over all M logits (B, M) covered by the selected idx (B, N)."""
    return gather_views(softmax(logits), idx).sum(-1)


def to_camera_frame(joints_view_mm: np.ndarray, inv_view_mats: np.ndarray) -> np.ndarray:
    """Joints (B, N, J, 3) in each view's frame -> camera frame via M_i^-1 (B, N, 4, 4)."""
    return apply_transform(joints_view_mm, inv_view_mats)


def fuse_camera_joints(joints_mm: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted average of camera-frame joints: (B, N, J, 3), weights (B, N) -> (B, J, 3)."""
    return np.einsum("bn,bnjk->bjk", weights.astype(joints_mm.dtype), joints_mm)


__all__ = ["FUSIONS", "fuse_camera_joints", "fusion_weights", "gather_views", "select_top_n",
           "selection_score", "softmax", "to_camera_frame"]
