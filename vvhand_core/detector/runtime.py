"""Where the hand detector's two networks run: torch modules or onnxruntime sessions.

:class:`DetectorLocaliser` calls two things, whatever the runtime (numpy in, numpy out)::

    heat(x (1, 3, H, W) float32)            -> (2, ceil(H/4), ceil(W/4)) heat logit, dz
    refine(patches (B, 3, PATCH, PATCH))    -> (B, 3) offsets (du, dv, dz)

:class:`TorchRunner` runs the modules; :class:`OrtRunner` runs them exported to ONNX in
memory at construction (``onnx_export.export_module``: opset 17, dynamic H and W for the
heat-map network, dynamic batch for the refiner; about a second) with onnxruntime, one
session each with ``torch.get_num_threads()`` intra-op threads (one inter-op thread).
On one CPU thread onnxruntime runs these small convolutions ~2x faster than torch; the
outputs agree to ~1e-5. Everything around the networks is the same code for both.

Runtime names (``DetectorLocaliserConfig.runtime``): "onnxruntime", "torch", or "auto":
onnxruntime when it can be imported (and the export works), else torch.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from vvhand_core import onnx_model
from vvhand_core.detector.refine import PATCH

RUNTIMES = ("auto", "torch", "onnxruntime")

__all__ = ["RUNTIMES", "OrtRunner", "TorchRunner", "check_runtime", "make_runner"]


def check_runtime(runtime: str) -> None:
    """ValueError when ``runtime`` is not one of :data:`RUNTIMES`."""
    if runtime not in RUNTIMES:
        raise ValueError(f"detector runtime must be one of {RUNTIMES}, got {runtime!r}")


class TorchRunner:
    """The torch modules (eval mode, CPU; refiner may be None)."""

    name = "torch"

    def __init__(self, net: nn.Module, refiner: nn.Module | None) -> None:
        self.net, self.refiner = net, refiner

    def heat(self, x: np.ndarray) -> np.ndarray:
        """(1, 3, H, W) -> (2, H4, W4)."""
        with torch.inference_mode():
            return self.net(torch.from_numpy(x))[0].numpy()

    def refine(self, patches: np.ndarray) -> np.ndarray:
        """(B, 3, PATCH, PATCH) -> (B, 3)."""
        with torch.inference_mode():
            return self.refiner(torch.from_numpy(patches)).numpy()


class OrtRunner:
    """onnxruntime sessions of the modules, exported in memory (refiner may be None)."""

    name = "onnxruntime"

    def __init__(self, net: nn.Module, refiner: nn.Module | None,
                 num_threads: int | None = None) -> None:
        from vvhand_core.onnx_export import export_module

        ort = onnx_model.import_onnxruntime()
        options = onnx_model.session_options(
            torch.get_num_threads() if num_threads is None else num_threads)

        def session(module: nn.Module, example: torch.Tensor, names: tuple[str, str],
                    dynamic: dict[int, str]):
            data = export_module(module.eval(), example, [names[0]], [names[1]],
                                 {names[0]: dynamic, names[1]: dynamic})
            return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

        with torch.no_grad():
            self._heat = session(net, torch.zeros(1, 3, 64, 80), ("x", "heat"),
                                 {2: "height", 3: "width"})
            self._refine = None if refiner is None else session(
                refiner, torch.zeros(2, 3, PATCH, PATCH), ("patches", "offsets"), {0: "batch"})

    def heat(self, x: np.ndarray) -> np.ndarray:
        """(1, 3, H, W) -> (2, H4, W4)."""
        return self._heat.run(None, {"x": x})[0][0]

    def refine(self, patches: np.ndarray) -> np.ndarray:
        """(B, 3, PATCH, PATCH) -> (B, 3)."""
        return self._refine.run(None, {"patches": patches})[0]


def make_runner(runtime: str, net: nn.Module, refiner: nn.Module | None
                ) -> TorchRunner | OrtRunner:
    """The runner of ``runtime`` (see the module doc).

    ValueError for an unknown name, or for "onnxruntime" when onnxruntime is missing or
    the export fails; "auto" falls back to torch then (with a warning if the export failed).
    """
    check_runtime(runtime)
    if runtime == "torch":
        return TorchRunner(net, refiner)
    try:
        onnx_model.import_onnxruntime()
    except ImportError as exc:
        if runtime == "auto":
            return TorchRunner(net, refiner)
        raise ValueError(f"detector runtime 'onnxruntime': {exc}") from None
    try:
        return OrtRunner(net, refiner)
    except Exception as exc:  # noqa: BLE001 - exporter and onnxruntime raise their own types
        reason = f"the detector could not be exported / loaded ({type(exc).__name__}: {exc})"
        if runtime == "onnxruntime":
            raise ValueError(f"detector runtime 'onnxruntime': {reason}") from None
        warnings.warn(f"detector runtime 'auto': using torch, {reason}", RuntimeWarning,
                      stacklevel=2)
        return TorchRunner(net, refiner)
