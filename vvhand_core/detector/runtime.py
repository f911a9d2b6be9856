"""Where the hand detector's two networks run: torch modules or onnxruntime sessions.

:class:`DetectorLocaliser` calls two things, whatever the runtime (numpy in, numpy out)::

    heat(x (1, 3, H, W) float32)            -> (2, ceil(H/4), ceil(W/4)) heat logit, dz
    refine(patches (B, 3, PATCH, PATCH))    -> (B, 3) offsets (du, dv, dz)

:class:`TorchRunner` runs the modules; :class:`OrtRunner` runs ONNX models with
onnxruntime: the files exported next to the weights (``detector.shipped``: the packaged
detector ships them, loaded in milliseconds, no torch needed) or, for weights without
them, the modules exported in memory at construction (:meth:`OrtRunner.from_modules`,
``shipped.export_detector``: opset 17, dynamic H and W for the heat-map network, dynamic
batch for the refiner; about a second, needs torch). One session each, with
``num_threads`` intra-op threads (0: torch's thread count where torch is loaded, else
onnxruntime's default) and one inter-op thread. On one CPU thread onnxruntime runs these
small convolutions ~2x faster than torch; the outputs agree to ~1e-5. Everything around
the networks is the same numpy code for both (``detector.ops``).

Runtime names (``DetectorLocaliserConfig.runtime``): "onnxruntime", "torch", or "auto":
onnxruntime when it can be imported, else torch. This module imports torch only inside
what needs it.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from vvhand_core import onnx_model

RUNTIMES = ("auto", "torch", "onnxruntime")

__all__ = ["RUNTIMES", "OrtRunner", "TorchRunner", "check_runtime", "make_runner",
           "onnxruntime_error", "session_threads"]


def check_runtime(runtime: str) -> None:
    """ValueError when ``runtime`` is not one of :data:`RUNTIMES`."""
    if runtime not in RUNTIMES:
        raise ValueError(f"detector runtime must be one of {RUNTIMES}, got {runtime!r}")


def onnxruntime_error() -> str | None:
    """Why onnxruntime cannot be imported (the message says how to install it), or None."""
    try:
        onnx_model.import_onnxruntime()
    except ImportError as exc:
        return str(exc)
    return None


def session_threads(num_threads: int = 0) -> int:
    """Intra-op threads of the sessions.

    ``num_threads`` if > 0, else torch's thread count where torch is loaded (as before),
    else 0 (onnxruntime's default).
    """
    if num_threads > 0:
        return int(num_threads)
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else 0


class TorchRunner:
    """The torch modules (eval mode, CPU; refiner may be None)."""

    name = "torch"

    def __init__(self, net, refiner) -> None:
        import torch

        self._torch = torch
        self.net, self.refiner = net, refiner

    def heat(self, x: np.ndarray) -> np.ndarray:
        """(1, 3, H, W) -> (2, H4, W4)."""
        with self._torch.inference_mode():
            return self.net(self._torch.from_numpy(x))[0].numpy()

    def refine(self, patches: np.ndarray) -> np.ndarray:
        """(B, C, PATCH, PATCH) -> (B, 3) (C: the refiner's ``config.channels``)."""
        with self._torch.inference_mode():
            return self.refiner(self._torch.from_numpy(patches)).numpy()


class OrtRunner:
    """onnxruntime sessions of the ONNX models {"heat": bytes, "refine": bytes (optional)}."""

    name = "onnxruntime"

    def __init__(self, models: dict[str, bytes], num_threads: int = 0) -> None:
        ort = onnx_model.import_onnxruntime()
        options = onnx_model.session_options(session_threads(num_threads))

        def session(data: bytes | None):
            if data is None:
                return None
            return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

        self._heat = session(models["heat"])
        self._refine = session(models.get("refine"))

    @classmethod
    def from_modules(cls, net, refiner, num_threads: int = 0) -> OrtRunner:
        """Sessions of torch modules exported in memory (refiner may be None; needs torch)."""
        from vvhand_core.detector.shipped import export_detector

        return cls(export_detector(net, refiner), num_threads)

    def heat(self, x: np.ndarray) -> np.ndarray:
        """(1, 3, H, W) -> (2, H4, W4)."""
        return self._heat.run(None, {"x": x})[0][0]

    def refine(self, patches: np.ndarray) -> np.ndarray:
        """(B, C, PATCH, PATCH) -> (B, 3) (C: the refiner's ``config.channels``)."""
        return self._refine.run(None, {"patches": patches})[0]


def make_runner(runtime: str, net, refiner, num_threads: int = 0
                ) -> TorchRunner | OrtRunner:
    """The runner of ``runtime`` for torch modules (see the module doc).

    ValueError for an unknown name, or for "onnxruntime" when onnxruntime is missing or
    the export fails; "auto" falls back to torch then (with a warning if the export failed).
    """
    check_runtime(runtime)
    if runtime == "torch":
        return TorchRunner(net, refiner)
    missing = onnxruntime_error()
    if missing is not None:
        if runtime == "auto":
            return TorchRunner(net, refiner)
        raise ValueError(f"detector runtime 'onnxruntime': {missing}")
    try:
        return OrtRunner.from_modules(net, refiner, num_threads)
    except Exception as exc:  # noqa: BLE001 - exporter and onnxruntime raise their own types
        reason = f"the detector could not be exported / loaded ({type(exc).__name__}: {exc})"
        if runtime == "onnxruntime":
            raise ValueError(f"detector runtime 'onnxruntime': {reason}") from None
        warnings.warn(f"detector runtime 'auto': using torch, {reason}", RuntimeWarning,
                      stacklevel=2)
        return TorchRunner(net, refiner)
