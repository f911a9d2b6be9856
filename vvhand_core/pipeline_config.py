"""The pipeline's configuration; its per-frame result and stage timer, re-exported.

Kept apart from :mod:`vvhand_core.pipeline` (which re-exports them) so that the pipeline
module holds only the running code. ``HandPoseResult``, ``STAGES`` and ``StageTimer`` live
in the torch-free :mod:`vvhand_core.lite.result` (the lite pipeline uses them too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vvhand_core.checkpoint import resolve_device
from vvhand_core.fit.fit import FitConfig
from vvhand_core.lite.config import SELECTORS, check_lite_config  # noqa: F401
from vvhand_core.lite.result import STAGES, HandPoseResult, StageTimer  # noqa: F401 (re-exported)
from vvhand_core.side import SideConfig


@dataclass
class PipelineConfig:
    """How the pipeline runs; change between calls with :meth:`VirtualViewPipeline.configure`.

    selector: "student" (student scores M views, render only the top N), "teacher"
    (render all M, A2J on all, teacher scores them, fuse the top N) or "uniform" (the N
    views of the N-grid, N in 1/3/9/15/25/81). fusion: "confidence" (softmax over the
    selected views' logits; for uniform the teacher scores the N views) or "average".
    localiser: "detector" (learned, default) or "geometric" (``localise.make_localiser``);
    detector_weights: "" = the packaged detector. side: how the fused joints' chirality
    becomes a side (``vvhand_core.side``). backend: where the networks run, "torch" or
    "onnxruntime" (the same networks as ONNX models; ``vvhand_core.backends``). fit: None
    (off, default) or how the articulated hand model is fitted to the depth after fusion
    (``vvhand_core.fit.stage``; skeleton hands2019_21 only; in sequences when ``track``).
    """

    selector: str = "student"
    num_views: int = 3
    fusion: str = "confidence"
    device: str = "auto"
    renderer: str = "auto"
    cube_mm: float = 250.0
    min_depth_mm: float = 200.0
    max_depth_mm: float = 1200.0
    track: bool = True
    localiser: str = "detector"
    detector_weights: str = ""
    backend: str = "torch"
    side: SideConfig = field(default_factory=SideConfig)
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
