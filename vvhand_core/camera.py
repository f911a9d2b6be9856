"""Pinhole camera: intrinsics, projection and back-projection (torch and numpy).

Conventions (defined here, used everywhere): millimetres; camera optical frame with
x right, y down, z forward; pixel (u, v) = (column, row) with pixel centres at integer
coordinates. Projection: u = fx * x / z + cx, v = fy * y / z + cy.

Intrinsics in tensor form are ``k = [fx, fy, cx, cy]`` with shape (..., 4), so a batch of
frames carries K (B, 4).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported by the torch functions only (numpy-only installs)
    import torch


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of one depth image (pixels), plus the image size."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        """Reject non-positive focal lengths and image sizes."""
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f"focal lengths must be > 0, got fx={self.fx}, fy={self.fy}")
        if not (self.width > 0 and self.height > 0):
            raise ValueError(f"image size must be > 0, got {self.width}x{self.height}")

    def matrix(self) -> np.ndarray:
        """The 3x3 camera matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] (float64)."""
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )

    def as_array(self) -> np.ndarray:
        """[fx, fy, cx, cy] as a float64 array (4,)."""
        return np.array([self.fx, self.fy, self.cx, self.cy], dtype=np.float64)

    def as_tensor(self, device=None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """[fx, fy, cx, cy] as a tensor (4,) (float32 unless ``dtype``)."""
        import torch

        return torch.tensor([self.fx, self.fy, self.cx, self.cy], device=device,
                            dtype=dtype or torch.float32)

    def scaled(self, sx: float, sy: float) -> Intrinsics:
        """Intrinsics of the same camera after resizing the image by (sx, sy).

        Pixel centres stay at integer coordinates: u' = sx * (u + 0.5) - 0.5, so
        cx' = sx * (cx + 0.5) - 0.5; the new size is the old one scaled and rounded.
        """
        if sx <= 0 or sy <= 0:
            raise ValueError(f"scale factors must be > 0, got {sx}, {sy}")
        return Intrinsics(
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=sx * (self.cx + 0.5) - 0.5,
            cy=sy * (self.cy + 0.5) - 0.5,
            width=max(1, round(self.width * sx)),
            height=max(1, round(self.height * sy)),
        )

    def mirrored(self) -> Intrinsics:
        """Intrinsics of the image flipped left-right (column u -> width - 1 - u).

        cx' = width - 1 - cx, so the flipped image with these intrinsics shows the point
        (x, y, z) at (-x, y, z) (:data:`MIRROR_X`): the scene's mirror image, in which a
        right hand is a left one.
        """
        return Intrinsics(fx=self.fx, fy=self.fy, cx=self.width - 1 - self.cx, cy=self.cy,
                          width=self.width, height=self.height)


MIRROR_X = (-1.0, 1.0, 1.0)  # camera points of the flipped image: (x, y, z) -> (-x, y, z)


# --------------------------------------------------------------------------- torch


def project_t(points: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Project camera points to pixels.

    points (..., 3) camera mm; k (..., 4) [fx, fy, cx, cy] broadcastable to points' batch
    shape. Returns uv (..., 2). Points with z <= 0 give inf/nan: mask them beforehand.
    """
    import torch

    z = points[..., 2]
    u = k[..., 0] * points[..., 0] / z + k[..., 2]
    v = k[..., 1] * points[..., 1] / z + k[..., 3]
    return torch.stack((u, v), dim=-1)


def back_project_t(uv: torch.Tensor, z: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Lift pixels with depth to camera points.

    uv (..., 2) pixels; z (...) depth mm along the optical axis; k (..., 4). Returns (..., 3).
    """
    import torch

    x = (uv[..., 0] - k[..., 2]) / k[..., 0] * z
    y = (uv[..., 1] - k[..., 3]) / k[..., 1] * z
    return torch.stack((x, y, z), dim=-1)


# --------------------------------------------------------------------------- numpy


def _k_np(intr: Intrinsics | np.ndarray) -> np.ndarray:
    """[fx, fy, cx, cy] as float64 (..., 4) from Intrinsics or an array."""
    if isinstance(intr, Intrinsics):
        return intr.as_array()
    return np.asarray(intr, dtype=np.float64)


def project_np(points: np.ndarray, intr: Intrinsics | np.ndarray) -> np.ndarray:
    """Numpy project: points (..., 3) mm, intr Intrinsics or k (..., 4) -> uv (..., 2)."""
    p = np.asarray(points, dtype=np.float64)
    k = _k_np(intr)
    u = k[..., 0] * p[..., 0] / p[..., 2] + k[..., 2]
    v = k[..., 1] * p[..., 1] / p[..., 2] + k[..., 3]
    return np.stack((u, v), axis=-1)


def back_project_np(
    uv: np.ndarray, z: np.ndarray, intr: Intrinsics | np.ndarray
) -> np.ndarray:
    """Numpy back-project: uv (..., 2), z (...) mm, intr or k (..., 4) -> points (..., 3) mm."""
    uv = np.asarray(uv, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    k = _k_np(intr)
    x = (uv[..., 0] - k[..., 2]) / k[..., 0] * z
    y = (uv[..., 1] - k[..., 3]) / k[..., 1] * z
    return np.stack((x, y, z), axis=-1)


# --------------------------------------------------------------------------- either


def _is_tensor(x: object) -> bool:
    """Whether x is a torch tensor (False without importing torch when nobody has)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _k_t(intr: Intrinsics | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if isinstance(intr, Intrinsics):
        return intr.as_tensor(device=like.device, dtype=like.dtype)
    return intr.to(device=like.device, dtype=like.dtype)


def project(points_mm, intr: Intrinsics | torch.Tensor | np.ndarray):
    """Project points (..., 3) mm to uv (..., 2): torch in -> torch out, else numpy."""
    if _is_tensor(points_mm):
        return project_t(points_mm, _k_t(intr, points_mm))
    return project_np(points_mm, intr)


def back_project(uv, depth_mm, intr: Intrinsics | torch.Tensor | np.ndarray):
    """Back-project uv (..., 2) with depth (...) mm to points (..., 3) mm (torch or numpy)."""
    if _is_tensor(uv):
        import torch

        z = torch.as_tensor(depth_mm, device=uv.device, dtype=uv.dtype)
        return back_project_t(uv, z, _k_t(intr, uv))
    return back_project_np(uv, depth_mm, intr)


def uvd_to_xyz(uvd: np.ndarray, intr: Intrinsics | np.ndarray) -> np.ndarray:
    """Community "u v d" (pixels, mm) -> xyz camera mm; (..., 3) -> (..., 3), float64."""
    uvd = np.asarray(uvd, dtype=np.float64)
    return back_project_np(uvd[..., :2], uvd[..., 2], intr)


def xyz_to_uvd(xyz: np.ndarray, intr: Intrinsics | np.ndarray) -> np.ndarray:
    """Xyz camera mm -> community "u v d" (pixels, mm); (..., 3) -> (..., 3), float64."""
    xyz = np.asarray(xyz, dtype=np.float64)
    uv = project_np(xyz, intr)
    return np.concatenate((uv, xyz[..., 2:3]), axis=-1)


def with_mirror_t(depth_mm: torch.Tensor, centre_mm: torch.Tensor, intr: Intrinsics
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch of one camera followed by its mirror images: depth (L, H, W), centres (L, 3).

    Returns depth (2L, H, W), K (2L, 4) and centres (2L, 3): the frames flipped left-right,
    with the intrinsics of :meth:`Intrinsics.mirrored` and the centres at (-x, y, z), come
    second.
    """
    import torch

    n, dev = depth_mm.shape[0], depth_mm.device
    k = torch.cat([intr.as_tensor(dev).expand(n, 4), intr.mirrored().as_tensor(dev).expand(n, 4)])
    flip = torch.tensor(MIRROR_X, dtype=centre_mm.dtype, device=centre_mm.device)
    return (torch.cat([depth_mm, depth_mm.flip(-1)]), k,
            torch.cat([centre_mm, centre_mm * flip]))
