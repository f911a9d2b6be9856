"""The pipeline's configuration, its per-frame result and its stage timer.

Kept apart from :mod:`vvhand_core.pipeline` (which re-exports them) so that the pipeline
module holds only the running code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

SELECTORS = ("student", "teacher", "uniform")
STAGES = ("localise", "crop", "student", "render", "a2j", "fusion", "total")


@dataclass
class PipelineConfig:
    """How the pipeline runs; change between calls with :meth:`VirtualViewPipeline.configure`.

    selector: "student" (student scores M views, render only the top N), "teacher"
    (render all M, A2J on all, teacher scores them, fuse the top N) or "uniform" (the N
    views of the N-grid, N in 1/3/9/15/25/81). fusion: "confidence" (softmax over the
    selected views' logits; for uniform the teacher scores the N views) or "average".
    localiser: "detector" (learned, default) or "geometric" (``localise.make_localiser``);
    detector_weights: "" = the packaged detector.
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


@dataclass
class HandPoseResult:
    """One frame's estimate. ``timings_ms`` per stage (keys :data:`STAGES`).

    "student" times the view-scoring network (the student; the teacher in teacher mode;
    the teacher on the N uniform views for uniform + confidence). For ``run_batch`` the
    timings are the batch's divided by the number of frames.
    """

    valid: bool
    message: str
    joints_mm: np.ndarray
    centre_mm: np.ndarray
    cube_mm: float
    num_candidates: int
    selected_views: np.ndarray
    weights: np.ndarray
    logits: np.ndarray
    score: float
    timings_ms: dict[str, float] = field(default_factory=dict)
    # the N selected views' joints (N, J, 3) mm in the camera frame (before fusion) and each
    # joint's spread (J,) mm around the fused joint (vvhand_core.confidence); None if invalid
    joints_views_mm: np.ndarray | None = None
    joint_spread_mm: np.ndarray | None = None


class StageTimer:
    """Wall-clock per stage, synchronising CUDA before each reading."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.ms = dict.fromkeys(STAGES, 0.0)
        self._t = self._start = self._now()

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def lap(self, stage: str) -> None:
        now = self._now()
        self.ms[stage] += (now - self._t) * 1e3
        self._t = now

    def finish(self) -> dict[str, float]:
        self.ms["total"] = (self._now() - self._start) * 1e3
        return self.ms
