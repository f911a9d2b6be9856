"""Where the pipeline's networks run: torch modules or onnxruntime sessions.

:class:`VirtualViewPipeline` calls three things, whatever the backend::

    student(crop_in (L, C, S, S))          -> logits (L, M)
    a2j(views (N, C, S, S), features)      -> uvd (N, J, 3) (u, v crop px, d_n),
                                              teacher input (N, J, 64, H_c, W_c) or None
    teacher(features (B, V, J, 64, H, W))  -> logits (B, V)

on torch tensors of the pipeline's device. :class:`TorchNetworks` runs the modules;
:class:`OrtNetworks` hands numpy copies to onnxruntime sessions
(:class:`vvhand_core.onnx_model.OnnxNetworks`) and returns tensors on the input's device.
Everything else (localise, crop, render, mapping back, fusion) is the same code for both.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vvhand_core.models import A2J, Student, Teacher
from vvhand_core.onnx_model import OnnxModelError, OnnxNetworks, import_onnxruntime
from vvhand_core.skeletons import Skeleton

BACKENDS = ("torch", "onnxruntime")

__all__ = ["BACKENDS", "Networks", "OrtNetworks", "TorchNetworks", "check_backend",
           "load_onnx_dir", "make_networks", "ort_providers"]


class TorchNetworks:
    """The torch modules (student or teacher may be None)."""

    name = "torch"

    def __init__(self, a2j: A2J, student: Student | None, teacher: Teacher | None) -> None:
        self.a2j_net, self.student_net, self.teacher_net = a2j, student, teacher

    def student(self, crop_in: Tensor) -> Tensor:
        """(L, C, S, S) -> (L, M)."""
        return self.student_net(crop_in)

    def a2j(self, views: Tensor, features: bool = False) -> tuple[Tensor, Tensor | None]:
        """(N, C, S, S) -> uvd (N, J, 3), teacher input or None."""
        out = self.a2j_net(views)
        uvd = self.a2j_net.decode(out)[0]
        return uvd, (out.teacher_input() if features else None)

    def teacher(self, features: Tensor) -> Tensor:
        """(B, V, J, 64, H, W) -> (B, V)."""
        return self.teacher_net(features)


class OrtNetworks:
    """onnxruntime sessions behind the same calls (tensors in, tensors out)."""

    name = "onnxruntime"

    def __init__(self, onnx: OnnxNetworks) -> None:
        self.onnx = onnx

    @staticmethod
    def _np(x: Tensor):
        return x.detach().to("cpu", torch.float32).contiguous().numpy()

    def student(self, crop_in: Tensor) -> Tensor:
        """(L, C, S, S) -> (L, M)."""
        return torch.from_numpy(self.onnx.student(self._np(crop_in))).to(crop_in.device)

    def a2j(self, views: Tensor, features: bool = False) -> tuple[Tensor, Tensor | None]:
        """(N, C, S, S) -> uvd (N, J, 3), teacher input or None."""
        uvd, feats = self.onnx.a2j(self._np(views), features)
        dev = views.device
        return (torch.from_numpy(uvd).to(dev),
                None if feats is None else torch.from_numpy(feats).to(dev))

    def teacher(self, features: Tensor) -> Tensor:
        """(B, V, J, 64, H, W) -> (B, V)."""
        return torch.from_numpy(self.onnx.teacher(self._np(features))).to(features.device)


def ort_providers(device: torch.device) -> list[str]:
    """Execution providers of onnxruntime sessions for a pipeline device.

    CUDA first when the device is CUDA and the installed onnxruntime has that provider
    (onnxruntime-gpu), else CPU.
    """
    from vvhand_core.onnx_model import import_onnxruntime

    available = import_onnxruntime().get_available_providers()
    if device.type == "cuda" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


Networks = TorchNetworks | OrtNetworks
TorchModules = tuple[A2J | None, Student | None, Teacher | None]


def check_backend(backend: str, torch_nets: TorchModules, onnx: OnnxNetworks | None) -> None:
    """ValueError when ``backend`` is unknown or cannot run with the networks at hand."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch" and torch_nets[0] is None:
        raise ValueError("backend 'torch' needs the torch networks; this pipeline has only the "
                         f"ONNX models of {onnx.source} (backend 'onnxruntime')")
    if backend == "onnxruntime":
        try:
            import_onnxruntime()
        except ImportError as exc:
            raise ValueError(str(exc)) from None
        if onnx is None and None in torch_nets:
            raise ValueError("backend 'onnxruntime' exports all three networks (A2J, student, "
                             "teacher); one of them is missing")


def make_networks(backend: str, torch_nets: TorchModules, onnx: OnnxNetworks | None,
                  skeleton: Skeleton, cube_mm: float, num_candidates: int,
                  device: torch.device) -> tuple[Networks, OnnxNetworks | None]:
    """The networks of ``backend`` and the (possibly new) ONNX sessions.

    Without sessions, the torch networks are exported to ONNX in memory (a few seconds).
    onnxruntime's execution provider is chosen when its sessions are made (CUDA for a CUDA
    device with onnxruntime-gpu, else CPU) and kept when the device changes. onnxruntime
    uses ``torch.get_num_threads()`` threads.
    """
    if backend == "torch":
        return TorchNetworks(*torch_nets), onnx
    if onnx is None:
        from vvhand_core.onnx_export import onnx_networks_from_torch

        onnx = onnx_networks_from_torch(*torch_nets, skeleton, cube_mm, num_candidates,
                                        torch.get_num_threads(), ort_providers(device))
    return OrtNetworks(onnx), onnx


def load_onnx_dir(path, backend: str, device: torch.device) -> OnnxNetworks:
    """Sessions of an export directory for a pipeline of ``backend`` (OnnxModelError)."""
    if backend != "onnxruntime":
        raise OnnxModelError(path, "an ONNX model directory runs with backend 'onnxruntime', "
                                   f"not {backend!r}")
    try:
        providers = ort_providers(device)
    except ImportError as exc:
        raise OnnxModelError(path, str(exc)) from None
    return OnnxNetworks.load(path, torch.get_num_threads(), providers)
