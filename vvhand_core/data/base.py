"""The common frame record, the dataset protocol, skip bookkeeping and depth PNG I/O.

Every loader yields :class:`DepthFrame` records: depth in millimetres (0 = invalid), the
camera intrinsics, ground-truth joints in camera millimetres (x right, y down, z forward)
and a ``meta`` dict (``frame_id``, ``source`` file, ``bbox`` (x, y, w, h) pixels where the
dataset gives one, ``cube_mm`` hint for the crop, and dataset-specific extras).

Missing or unreadable inputs are never dropped silently: a loader either raises
:class:`DatasetError` naming the file (``on_missing="error"``, the default) or records
``(path, reason)`` in ``dataset.skipped`` and reports the count (``on_missing="skip"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from PIL import Image, UnidentifiedImageError

from vvhand_core.camera import Intrinsics
from vvhand_core.skeletons import Skeleton

ON_MISSING = ("error", "skip")


if TYPE_CHECKING:
    import torch

class DatasetError(RuntimeError):
    """A dataset file is missing, unreadable or malformed; ``path`` names it."""

    def __init__(self, path: str | Path, reason: str) -> None:
        """Message ``"<path>: <reason>"``."""
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class DepthFrame:
    """One depth image with its camera and (optional) ground truth.

    depth_mm: (H, W) float32 or uint16 millimetres along the optical axis, 0 = invalid.
    intrinsics: the camera of ``depth_mm`` (its width/height must match the image).
    joints_mm: (J, 3) camera-frame millimetres in ``skeleton`` order, or None (no labels).
    meta: frame_id, source, bbox (x, y, w, h) where given, cube_mm hint, extras.
    """

    depth_mm: np.ndarray
    intrinsics: Intrinsics
    joints_mm: np.ndarray | None
    skeleton: Skeleton
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check shapes against the intrinsics and the skeleton."""
        if self.depth_mm.ndim != 2:
            raise ValueError(f"depth_mm must be (H, W), got shape {self.depth_mm.shape}")
        h, w = self.depth_mm.shape
        if (w, h) != (self.intrinsics.width, self.intrinsics.height):
            raise ValueError(
                f"depth is {w}x{h} but intrinsics say "
                f"{self.intrinsics.width}x{self.intrinsics.height}"
            )
        if self.joints_mm is not None and self.joints_mm.shape != (self.skeleton.num_joints, 3):
            raise ValueError(
                f"joints_mm must be ({self.skeleton.num_joints}, 3) for {self.skeleton.name}, "
                f"got {self.joints_mm.shape}"
            )


@runtime_checkable
class HandDataset(Protocol):
    """What every loader offers: indexable frames, the skeleton, and the skip record."""

    skeleton: Skeleton
    skipped: list[tuple[str, str]]

    def __len__(self) -> int:
        """Number of frames that will be yielded."""
        ...

    def __getitem__(self, index: int) -> DepthFrame:
        """Frame ``index`` (0-based)."""
        ...


class SkipLog:
    """Applies the ``on_missing`` policy and keeps the list of skipped ``(path, reason)``."""

    def __init__(self, on_missing: str) -> None:
        """``on_missing`` is "error" (raise DatasetError) or "skip" (record and go on)."""
        if on_missing not in ON_MISSING:
            raise ValueError(f"on_missing must be one of {ON_MISSING}, got {on_missing!r}")
        self.on_missing = on_missing
        self.skipped: list[tuple[str, str]] = []

    def problem(self, path: str | Path, reason: str) -> None:
        """Raise or record one problem with ``path``."""
        if self.on_missing == "error":
            raise DatasetError(path, reason)
        self.skipped.append((str(path), reason))


def skip_summary(name: str, num_frames: int, skipped: Sequence[tuple[str, str]]) -> str:
    """One line such as ``"nyu test: 8250 frames, 2 skipped (first: <path>: <reason>)"``."""
    text = f"{name}: {num_frames} frames, {len(skipped)} skipped"
    if skipped:
        text += f" (first: {skipped[0][0]}: {skipped[0][1]})"
    return text


def _open_image(path: Path) -> Image.Image:
    if not path.is_file():
        raise DatasetError(path, "file not found")
    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(path, f"cannot read image ({exc})") from exc
    return img


def read_depth_png(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a 16-bit single-channel PNG of millimetres -> (H, W) uint16.

    ``size`` = (width, height) to check. Raises DatasetError naming the file when it is
    missing, unreadable, not 16-bit single-channel, or of the wrong size.
    """
    path = Path(path)
    img = _open_image(path)
    if img.mode not in ("I;16", "I;16B", "I;16L", "I"):
        raise DatasetError(path, f"expected a 16-bit single-channel PNG, got mode {img.mode}")
    depth = np.asarray(img)
    if depth.dtype != np.uint16:
        if depth.min(initial=0) < 0 or depth.max(initial=0) > 65535:
            raise DatasetError(path, "depth values outside 0..65535")
        depth = depth.astype(np.uint16)
    _check_size(path, depth, size)
    return depth


def read_rgb_packed_depth_png(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an RGB PNG with depth mm = (G << 8) | B (NYU's packing) -> (H, W) uint16."""
    path = Path(path)
    img = _open_image(path)
    if img.mode not in ("RGB", "RGBA"):
        raise DatasetError(path, f"expected an RGB PNG with packed depth, got mode {img.mode}")
    rgb = np.asarray(img)
    depth = (rgb[..., 1].astype(np.uint16) << 8) | rgb[..., 2].astype(np.uint16)
    _check_size(path, depth, size)
    return depth


def _check_size(path: Path, depth: np.ndarray, size: tuple[int, int] | None) -> None:
    if size is not None and (depth.shape[1], depth.shape[0]) != tuple(size):
        raise DatasetError(
            path, f"image is {depth.shape[1]}x{depth.shape[0]}, expected {size[0]}x{size[1]}"
        )


def write_depth_png(path: str | Path, depth_mm: np.ndarray) -> None:
    """Write (H, W) millimetres as a 16-bit PNG (values rounded, clipped to 0..65535)."""
    d = np.asarray(depth_mm)
    if d.dtype != np.uint16:
        d = np.clip(np.rint(np.nan_to_num(d, nan=0.0)), 0, 65535).astype(np.uint16)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(d).save(path)


@dataclass
class FrameBatch:
    """A batch of same-size frames as tensors, ready for the crop code.

    depth_mm (B, H, W) float32 (0 invalid); k (B, 4) [fx, fy, cx, cy];
    joints_mm (B, J, 3) float32 or None when any frame has no labels; meta: B dicts.
    """

    depth_mm: torch.Tensor
    k: torch.Tensor
    joints_mm: torch.Tensor | None
    meta: list[dict]


def collate_frames(frames: Sequence[DepthFrame], device=None) -> FrameBatch:
    """Stack frames of one image size (and one skeleton) into a :class:`FrameBatch`."""
    if not frames:
        raise ValueError("collate_frames needs at least one frame")
    shapes = {f.depth_mm.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"frames have different image sizes: {sorted(shapes)}")
    names = {f.skeleton.name for f in frames}
    if len(names) != 1:
        raise ValueError(f"frames have different skeletons: {sorted(names)}")
    import torch

    depth = torch.from_numpy(np.stack([f.depth_mm.astype(np.float32) for f in frames]))
    k = torch.from_numpy(np.stack([f.intrinsics.as_array() for f in frames]).astype(np.float32))
    joints = None
    if all(f.joints_mm is not None for f in frames):
        joints = torch.from_numpy(np.stack([f.joints_mm for f in frames]).astype(np.float32))
        joints = joints.to(device)
    return FrameBatch(depth.to(device), k.to(device), joints, [dict(f.meta) for f in frames])
