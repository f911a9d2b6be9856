"""The torch pipeline's configuration and its checks (:class:`PipelineConfig`).

The fields and checks both pipelines share are :mod:`vvhand_core.frame_config`'s;
:mod:`vvhand_core.pipeline` re-exports :class:`PipelineConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

from vvhand_core.checkpoint import resolve_device
from vvhand_core.frame_config import FrameConfig, check_frame_config
from vvhand_core.views import GRID_SHAPES


@dataclass
class PipelineConfig(FrameConfig):
    """How the pipeline runs; change between calls with :meth:`VirtualViewPipeline.configure`.

    The fields both pipelines honour (selector, num_views, fusion, cube and depth range,
    track, localiser, detector_weights, side, fit) are :class:`~vvhand_core.frame_config.
    FrameConfig`'s. device: torch device ("auto": CUDA when present); renderer: "auto" |
    "torch" | "pycuda". backend: where the networks run, "torch" or "onnxruntime" (the
    same networks as ONNX models; ``vvhand_core.backends``). mirror: also run the networks
    on the frame flipped left-right (the hand's mirror image, of the other side) and
    average the two passes' joints (twice the networks' time;
    ``HandPoseResult.passes_joints_mm``); the fit then starts from each pass when their
    sides differ (``vvhand_core.fit.stage``).
    """

    device: str = "auto"
    renderer: str = "auto"
    backend: str = "torch"
    mirror: bool = False


def check_config(cfg: PipelineConfig, num_candidates: int, has_student: bool,
                 has_teacher: bool) -> None:
    """ValueError naming the first problem of ``cfg`` for a model with M = num_candidates.

    The backend's own check (``backends.check_backend``) comes first: with "onnxruntime"
    all three networks are there.
    """
    check_frame_config(cfg, num_candidates)  # the checks both pipelines share
    ort = cfg.backend == "onnxruntime"
    if cfg.selector == "student" and not (has_student or ort):
        raise ValueError("selector 'student' needs a student network")
    needs_teacher = cfg.selector == "teacher" or (
        cfg.selector == "uniform" and cfg.fusion == "confidence")
    if needs_teacher and not (has_teacher or ort):
        raise ValueError(f"selector {cfg.selector!r} with fusion {cfg.fusion!r} needs a "
                         "teacher network")
    if not isinstance(cfg.mirror, bool):
        raise ValueError(f"mirror must be True or False, got {cfg.mirror!r}")
    resolve_device(cfg.device)


def check_networks(a2j, student, onnx, skeleton, num_candidates: int) -> None:
    """ValueError unless the networks (torch or ONNX) fit the skeleton and M candidates."""
    if num_candidates not in GRID_SHAPES:
        raise ValueError(f"num_candidates must be one of {sorted(GRID_SHAPES)}, "
                         f"got {num_candidates}")
    if a2j is None and onnx is None:
        raise ValueError("the pipeline needs the A2J network or ONNX models (onnx=...)")
    for what, j in (("A2J", None if a2j is None else a2j.num_joints),
                    ("the ONNX A2J", None if onnx is None else onnx.num_joints)):
        if j is not None and j != skeleton.num_joints:
            raise ValueError(f"{what} predicts {j} joints, skeleton {skeleton.name!r} "
                             f"has {skeleton.num_joints}")
    if student is not None and student.config.num_views != num_candidates:
        raise ValueError(f"the student scores {student.config.num_views} views, "
                         f"num_candidates is {num_candidates}")
    if onnx is not None and onnx.num_candidates != num_candidates:
        raise ValueError(f"the ONNX student scores {onnx.num_candidates} views, "
                         f"num_candidates is {num_candidates}")
