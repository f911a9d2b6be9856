"""The pipeline's configuration; its per-frame result and stage timer, re-exported.

Kept apart from :mod:`vvhand_core.pipeline` (which re-exports them) so that the pipeline
module holds only the running code. ``HandPoseResult``, ``STAGES`` and ``StageTimer`` live
in the torch-free :mod:`vvhand_core.lite.result` (the lite pipeline uses them too).
"""

from __future__ import annotations

from dataclasses import dataclass

from vvhand_core.checkpoint import resolve_device
from vvhand_core.fit.fit import FitConfig
from vvhand_core.lite.config import SELECTORS, FrameConfig, check_lite_config  # noqa: F401
from vvhand_core.lite.result import STAGES, HandPoseResult, StageTimer  # noqa: F401 (re-exported)


@dataclass
class PipelineConfig(FrameConfig):
    """How the pipeline runs; change between calls with :meth:`VirtualViewPipeline.configure`.

    The fields both pipelines honour (selector, num_views, fusion, cube and depth range,
    track, localiser, detector_weights, side) are :class:`~vvhand_core.lite.config.
    FrameConfig`'s. device: torch device ("auto": CUDA when present); renderer: "auto" |
    "torch" | "pycuda". backend: where the networks run, "torch" or "onnxruntime" (the
    same networks as ONNX models; ``vvhand_core.backends``). fit: None (off, default) or
    how the articulated hand model is fitted to the depth after fusion
    (``vvhand_core.fit.stage``; skeleton hands2019_21 only; in sequences when ``track``).
    """

    device: str = "auto"
    renderer: str = "auto"
    backend: str = "torch"
    fit: FitConfig | None = None


def check_config(cfg: PipelineConfig, num_candidates: int, has_student: bool,
                 has_teacher: bool) -> None:
    """ValueError naming the first problem of ``cfg`` for a model with M = num_candidates.

    The backend's own check (``backends.check_backend``) comes first: with "onnxruntime"
    all three networks are there.
    """
    check_lite_config(cfg, num_candidates)  # the checks both pipelines share
    ort = cfg.backend == "onnxruntime"
    if cfg.selector == "student" and not (has_student or ort):
        raise ValueError("selector 'student' needs a student network")
    needs_teacher = cfg.selector == "teacher" or (
        cfg.selector == "uniform" and cfg.fusion == "confidence")
    if needs_teacher and not (has_teacher or ort):
        raise ValueError(f"selector {cfg.selector!r} with fusion {cfg.fusion!r} needs a "
                         "teacher network")
    if cfg.fit is not None and not isinstance(cfg.fit, FitConfig):
        raise ValueError(f"fit must be None or a FitConfig, got {type(cfg.fit).__name__}")
    resolve_device(cfg.device)
