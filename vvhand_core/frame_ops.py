"""What a backend computes for the frame flow (:mod:`vvhand_core.frame_flow`), no torch.

:class:`FrameOps` is the contract: each operation runs on the backend's arrays (torch
tensors for :class:`~vvhand_core.pipeline.TorchOps`, numpy arrays for
:class:`~vvhand_core.lite.pipeline.NumpyOps`). Shapes: L crops, M candidate views, N
selected views, V views, J joints, S crop pixels; K = [fx, fy, cx, cy] per crop (L, 4);
T (L, 3, 3) maps image pixels to crop pixels; millimetres, camera frame.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np

from vvhand_core.hand_pose_result import StageTimer

Array = Any  # a backend's array: torch.Tensor or np.ndarray


@dataclass
class Crops:
    """A batch of hand crops (backend arrays, except ``has_depth``).

    depth_mm (L, S, S) mm (0 = empty), t (L, 3, 3), k (L, 4), centre_mm (L, 3) mm;
    has_depth (L,) numpy bool: whether the crop holds depth. With the mirror pass L is
    twice the hands: the flipped frames come second.
    """

    depth_mm: Array
    t: Array
    k: Array
    centre_mm: Array
    has_depth: np.ndarray


class FrameOps(ABC):
    """One backend's operations; each runs on the backend's arrays (module doc)."""

    @abstractmethod
    def inference(self) -> AbstractContextManager:
        """The context the flow runs in (e.g. torch's inference mode)."""

    @abstractmethod
    def timer(self) -> StageTimer:
        """A stage timer for one call."""

    @abstractmethod
    def crop(self, depth_mm: np.ndarray, frames: list[int], centres_mm: list[np.ndarray],
             intrinsics, cube_mm: float, mirror: bool) -> Crops:
        """Crops of ``depth_mm[frames[n]]`` (numpy (B, H, W) float32) at ``centres_mm[n]``."""

    @abstractmethod
    def normalise(self, depth_mm: Array, centre_z_mm: Array, cube_mm: float) -> Array:
        """Network input (L, ..., S, S): (d - z_c) / (cube / 2), empty pixels +1."""

    @abstractmethod
    def view_matrices(self, centre_mm: Array) -> Array:
        """The M candidate views' matrices (L, M, 4, 4) about each centre (L, 3)."""

    @abstractmethod
    def uniform_indices(self, n: int, num_crops: int) -> Array:
        """The N-grid's indices in the candidate grid, (L, N) int64."""

    @abstractmethod
    def student(self, crop_in: Array) -> Array:
        """Student logits (L, M) of normalised crops (L, 1, S, S)."""

    @abstractmethod
    def render(self, crops: Crops, view_mats: Array) -> Array:
        """The crops seen through views (L, V, 4, 4) -> (L, V, S, S) mm (0 = empty)."""

    @abstractmethod
    def a2j(self, views_in: Array, features: bool) -> tuple[Array, Array | None]:
        """A2J on normalised views (L*V, 1, S, S) -> uvd (L*V, J, 3) and its teacher input.

        The teacher input (L*V, ...) only when ``features``, else None.
        """

    @abstractmethod
    def teacher(self, features: Array, num_views: int) -> Array:
        """Teacher logits (L, V) of A2J's teacher input (L*V, ...)."""

    @abstractmethod
    def zeros(self, shape: tuple[int, ...]) -> Array:
        """float32 zeros."""

    @abstractmethod
    def ones(self, shape: tuple[int, ...]) -> Array:
        """float32 ones."""

    @abstractmethod
    def numpy(self, x: Array) -> np.ndarray:
        """``x`` as a numpy array."""

    def merge_mirror(self, joints_mm, views_mm, idx, weights):
        """The image pass (first L/2) and the mirror pass fused (``fusion.merge_mirror_pass``)."""
        raise ValueError("this backend has no mirror pass")

    # selection, mapping back and fusion (``vvhand_core.fusion`` and its numpy twin)
    @staticmethod
    @abstractmethod
    def select_top_n(logits: Array, n: int) -> Array:
        """Indices (L, N) of the N largest of logits (L, M), best first."""

    @staticmethod
    @abstractmethod
    def gather_views(x: Array, idx: Array) -> Array:
        """Views idx (L, N) of x (L, M, ...): x[l, idx[l]] (L, N, ...)."""

    @staticmethod
    @abstractmethod
    def fusion_weights(selected_logits: Array, fusion: str) -> Array:
        """Weights (L, N) summing to 1 ("confidence": softmax; "average": 1/N)."""

    @staticmethod
    @abstractmethod
    def selection_score(logits: Array, idx: Array) -> Array:
        """Softmax mass (L,) of all M logits that the selection idx (L, N) covers."""

    @staticmethod
    @abstractmethod
    def crop_uvd_to_camera_mm(uvd: Array, t: Array, k: Array, centre_z_mm: Array,
                              cube_mm: float) -> Array:
        """Crop (u px, v px, d_n) (L, ..., 3) -> camera mm (L, ..., 3)."""

    @staticmethod
    @abstractmethod
    def invert_rigid(mats: Array) -> Array:
        """Inverses of rigid transforms (..., 4, 4)."""

    @staticmethod
    @abstractmethod
    def to_camera_frame(joints_view_mm: Array, inv_view_mats: Array) -> Array:
        """Joints (L, N, J, 3) in each view's frame -> the camera frame via M_i^-1."""

    @staticmethod
    @abstractmethod
    def fuse_camera_joints(joints_mm: Array, weights: Array) -> Array:
        """Weighted average (L, J, 3) of camera-frame joints (L, N, J, 3), weights (L, N)."""


__all__ = ["Array", "Crops", "FrameOps"]
