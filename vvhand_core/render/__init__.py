"""Virtual-view renderer: a batch of crops -> a batch of V views each.

For each non-zero crop pixel: lift with T^-1 and K^-1 to camera mm, apply the view matrix
M, project with K, apply T, round to the nearest integer pixel, keep the minimum depth per
pixel (z-buffer). Empty pixels are 0; no hole filling; the identity view reproduces the
input crop exactly. See render.common for the exact arithmetic both backends share.

    renderer = make_renderer("auto", device="cuda")
    views_mm = renderer.render(crop_mm, T, K, view_mats)   # (B, V, S, S)
"""

from __future__ import annotations

import warnings
from typing import Protocol

import torch

from vvhand_core.render.torch_backend import TorchRenderer

BACKENDS = ("auto", "torch", "pycuda")


class Renderer(Protocol):
    """What every backend offers."""

    backend: str
    device: torch.device

    def render(
        self, crop_mm: torch.Tensor, t: torch.Tensor, k: torch.Tensor, view_mats: torch.Tensor
    ) -> torch.Tensor:
        """Render crop (B, S, S) mm, T (B,3,3), K (B,4), M (B,V,4,4) -> (B, V, S, S) mm."""
        ...


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None or "auto" -> cuda when available, else cpu; anything else as given."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def make_renderer(backend: str = "auto", device: str | torch.device | None = None) -> Renderer:
    """A renderer for backend "auto" | "torch" | "pycuda" on device (None/"auto": best).

    "auto" picks pycuda when the device is CUDA and pycuda works there, torch otherwise.
    "pycuda" raises RuntimeError naming what is missing (CUDA, the pycuda package or a
    working CUDA compiler).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    dev = resolve_device(device)
    if backend == "torch":
        return TorchRenderer(dev)
    if backend == "pycuda":
        from vvhand_core.render.pycuda_backend import PyCudaRenderer

        return PyCudaRenderer(dev)
    if dev.type == "cuda":
        from vvhand_core.render.pycuda_backend import PyCudaRenderer, pycuda_missing

        if pycuda_missing() is None:
            try:
                return PyCudaRenderer(dev)
            except RuntimeError as exc:
                warnings.warn(f"pycuda renderer unavailable, using torch: {exc}", stacklevel=2)
    return TorchRenderer(dev)


__all__ = ["BACKENDS", "Renderer", "TorchRenderer", "make_renderer", "resolve_device"]
