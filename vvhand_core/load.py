"""The pipeline a deployment runs: the torch pipeline when torch is installed, else the lite one.

``load_pipeline(model_path, options, num_threads)`` is what the node calls. ``options`` are
:class:`~vvhand_core.pipeline_config.PipelineConfig` fields by name. With torch installed
it returns :class:`~vvhand_core.pipeline.VirtualViewPipeline` (a checkpoint, or an export
directory with backend "onnxruntime"); without torch (an onnxruntime-only install, see
docs/architecture.md, "Network backends") :class:`~vvhand_core.lite.pipeline.LitePipeline`
on a directory written by ``vvhand export-onnx``, with what it lacks refused by name: a
checkpoint file, backend "torch", detector weights without their ONNX export (``vvhand
detector export-onnx``; the packaged detector has it), the mirror pass (the hand-model
fit runs without torch). This module imports torch only when it is there.

Backend "auto" (the node's default) is resolved here by :func:`resolve_backend`:
onnxruntime on the CPU, the faster backend there (measured in docs/results.md, "Pipeline
speed"), torch on a GPU or where onnxruntime (or, for a checkpoint, the ``onnx`` exporter)
is missing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

from vvhand_core.errors import CheckpointError
from vvhand_core.threads import limit_blas_threads

NO_TORCH = "torch is not installed (an onnxruntime-only install)"
BACKEND_CHOICES = ("auto", "torch", "onnxruntime")  # what a deployment may ask for


def torch_available() -> bool:
    """Whether torch can be imported here."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str, device: str, model_path: str | Path) -> str:
    """The backend to run for ``backend`` "auto" (module doc); any other value unchanged.

    An export directory (or no torch) needs onnxruntime; a device other than the CPU
    (``checkpoint.resolve_device``: "auto" is CUDA when present) keeps torch; on the CPU
    onnxruntime when it is installed and the model can reach it (a checkpoint needs the
    ``onnx`` exporter).
    """
    if backend != "auto":
        return backend
    if Path(model_path).is_dir() or not torch_available():
        return "onnxruntime"
    from vvhand_core.onnx_model import onnxruntime_available

    if not onnxruntime_available() or importlib.util.find_spec("onnx") is None:
        return "torch"
    from vvhand_core.checkpoint import resolve_device

    try:
        on_cpu = resolve_device(device).type == "cpu"
    except ValueError:  # a bad device: refused by name when the pipeline is made
        return "torch"
    return "onnxruntime" if on_cpu else "torch"


def load_pipeline(model_path: str | Path, options: dict, num_threads: int = 0,
                  alternate_model: str | Path = ""):
    """The pipeline for ``model_path`` configured by ``options`` (module doc).

    ``alternate_model``: a second checkpoint (or export directory) whose estimate of every
    crop the fit also tries (``FrameFlow.set_alternate``; "" none); loaded the same way,
    ValueError without the fit.

    num_threads > 0: the networks' CPU threads (torch's, which onnxruntime follows; the
    lite pipeline's onnxruntime sessions). numpy's BLAS is capped at one thread for the
    process (:func:`vvhand_core.threads.limit_blas_threads`). Raises CheckpointError /
    OnnxModelError for a bad model, ValueError for options this install cannot run (the
    message says which).
    ``options["backend"]`` "auto" is resolved (:func:`resolve_backend`); the pipeline's
    config says which backend runs.
    """
    backend = resolve_backend(options.get("backend", "torch"), options.get("device", "auto"),
                              model_path)
    options = {**options, "backend": backend}
    other = load_alternate(alternate_model, options, num_threads) if alternate_model else None
    if not torch_available():
        pipe = _load_lite(Path(model_path), options, num_threads)
    else:
        import torch

        from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline

        if num_threads > 0:
            torch.set_num_threads(num_threads)
        pipe = VirtualViewPipeline.from_checkpoint(model_path, PipelineConfig(**options))
    if other is not None:
        pipe.set_alternate(other)
    limit_blas_threads()  # after every library with a BLAS pool is loaded
    return pipe


def load_alternate(alternate_model: str | Path, options: dict, num_threads: int = 0):
    """The alternate pipeline (``FrameFlow.set_alternate``) for a pipeline of ``options``.

    Loaded as :func:`load_pipeline` loads, without the fit and with the geometric localiser
    (it never locates: no detector is loaded for it). ValueError when ``options`` has no
    fit (the fit's residual chooses between the models); its load errors name
    ``alternate_model`` (a CheckpointError stays one).
    """
    if not options.get("fit"):
        raise ValueError("an alternate model needs the hand-model fit (fit on): the fit's "
                         "residual chooses between the two models' estimates")
    try:
        return load_pipeline(alternate_model, {**options, "fit": None,
                                               "localiser": "geometric"}, num_threads)
    except CheckpointError as exc:  # still a CheckpointError, saying which model it is
        raise CheckpointError(exc.path, f"{exc.reason} (alternate_model)") from exc
    except ValueError as exc:
        raise ValueError(f"alternate_model {alternate_model}: {exc}") from exc


def _load_lite(path: Path, options: dict, num_threads: int):
    from vvhand_core.lite.config import LiteConfig
    from vvhand_core.lite.pipeline import LitePipeline

    if options.get("backend", "onnxruntime") != "onnxruntime":
        raise ValueError(f"{NO_TORCH}: set backend to onnxruntime")
    if not path.is_dir():
        raise ValueError(f"{NO_TORCH}: the model must be a directory written by `vvhand "
                         f"export-onnx` on a machine with torch, got {path}")
    weights = options.get("detector_weights") or ""
    if options.get("localiser", "detector") == "detector" and weights:
        from vvhand_core.detector.localiser import is_packaged
        from vvhand_core.detector.shipped import description_path

        if not is_packaged(weights) and not description_path(weights).is_file():
            raise ValueError(f"{NO_TORCH}: detector weights {weights} have no ONNX export "
                             f"({description_path(weights).name}); export them with `vvhand "
                             "detector export-onnx --weights ...` on a machine with torch, "
                             "or leave detector_weights empty (the packaged detector)")
    if options.get("mirror"):
        raise ValueError(f"{NO_TORCH}: the mirror pass needs torch; set mirror to false")
    cfg = LiteConfig.from_pipeline_config(SimpleNamespace(**options), num_threads)
    return LitePipeline.from_onnx(path, cfg)
