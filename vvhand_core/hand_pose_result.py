"""One hand's estimate, :class:`HandPoseResult`, its stage names and the stage timer.

The result type of both pipelines (:mod:`vvhand_core.frame_flow`; re-exported by
:mod:`vvhand_core.pipeline`), importable with only numpy installed (no torch).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from vvhand_core.confidence import joint_spread_mm
from vvhand_core.side import hand_side

if TYPE_CHECKING:
    from vvhand_core.fit.fit import FitResult

STAGES = ("localise", "crop", "student", "render", "a2j", "fusion", "fit", "total")
# what a network estimate of a crop sets (HandPoseResult.adopt)
ESTIMATE_FIELDS = ("joints_mm", "selected_views", "weights", "logits", "score",
                   "joints_views_mm", "joint_spread_mm", "right_probability", "side",
                   "passes_joints_mm")


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
    # P(right hand) from the fused joints' chirality and the side it decides
    # (vvhand_core.side, PipelineConfig.side): "left", "right" or "unknown"
    right_probability: float = 0.5
    side: str = "unknown"
    # with the hand-model fit on (PipelineConfig.fit): the fit (angles, scale, residual,
    # fallback: why the network's joints were kept) and the network's fused joints, which
    # joints_mm then replaces by the fitted ones (vvhand_core.fit.stage)
    fit: FitResult | None = None
    network_joints_mm: np.ndarray | None = None
    # with PipelineConfig.mirror: the fused joints (2, J, 3) of the image pass and of the
    # mirror pass; joints_mm is their mean, and the views, weights and selected views
    # list both passes' N (the mirror pass's second; vvhand_core.fusion.merge_mirror_pass)
    passes_joints_mm: np.ndarray | None = None
    # with run_hands: the localiser's track of this hand (None on the one-hand path or
    # without tracking; vvhand_core.hands)
    track_id: int | None = None
    # with an alternate pose model (FrameFlow.set_alternate): the other model's estimate of
    # the same crop (unfitted): the alternate model's, or once the fit chose that one
    # (alternate_chosen; every estimate field above is then its), this model's
    alternate: HandPoseResult | None = None
    alternate_chosen: bool = False

    def adopt(self, other: HandPoseResult) -> None:
        """Take ``other``'s network estimate (same crop, another model) in place.

        Copies the joints, views, selection and side fields; keeps the centre, cube,
        timings, track id and fit.
        """
        for name in ESTIMATE_FIELDS:
            setattr(self, name, getattr(other, name))

    @classmethod
    def estimate(cls, centre_mm: np.ndarray, cube_mm: float, num_candidates: int,
                 joints_mm: np.ndarray, views_mm: np.ndarray, selected: np.ndarray,
                 weights: np.ndarray, logits: np.ndarray, score: float, skeleton,
                 side_config) -> HandPoseResult:
        """A frame's estimate: fused joints (J, 3) mm, the N views' joints (N, J, 3) mm.

        Also the selection (views, weights, logits, score); adds each joint's spread
        (``vvhand_core.confidence``) and the side (``vvhand_core.side``).
        """
        weights = np.asarray(weights, np.float32)
        return cls(
            valid=True, message="", joints_mm=np.asarray(joints_mm, np.float32),
            centre_mm=np.asarray(centre_mm, np.float32), cube_mm=float(cube_mm),
            num_candidates=num_candidates, selected_views=np.asarray(selected, np.int64),
            weights=weights, logits=np.asarray(logits, np.float32), score=float(score),
            joints_views_mm=np.asarray(views_mm, np.float32),
            joint_spread_mm=joint_spread_mm(views_mm, joints_mm, weights),
            **hand_side(joints_mm, skeleton, side_config))

    @classmethod
    def invalid(cls, message: str, num_joints: int, num_candidates: int, cube_mm: float,
                centre_mm: np.ndarray | None = None) -> HandPoseResult:
        """A frame without an estimate (zeros; ``message`` says why)."""
        return cls(
            valid=False, message=message, joints_mm=np.zeros((num_joints, 3), np.float32),
            centre_mm=np.zeros(3, np.float32) if centre_mm is None
            else np.asarray(centre_mm, np.float32),
            cube_mm=float(cube_mm), num_candidates=num_candidates,
            selected_views=np.zeros(0, np.int64), weights=np.zeros(0, np.float32),
            logits=np.zeros(num_candidates, np.float32), score=0.0)


class StageTimer:
    """Wall-clock per stage (keys :data:`STAGES`); ``device`` on CUDA: synchronised first.

    ``device``: anything with a ``type`` ("cuda" synchronises torch before each reading),
    or None (CPU). torch is touched only on CUDA.
    """

    def __init__(self, device=None) -> None:
        self.cuda = getattr(device, "type", "cpu") == "cuda"
        self.ms = dict.fromkeys(STAGES, 0.0)
        self._t = self._start = self._now()

    def _now(self) -> float:
        if self.cuda:
            sys.modules["torch"].cuda.synchronize()
        return time.perf_counter()

    def lap(self, stage: str) -> None:
        now = self._now()
        self.ms[stage] += (now - self._t) * 1e3
        self._t = now

    def finish(self) -> dict[str, float]:
        self.ms["total"] = (self._now() - self._start) * 1e3
        return self.ms


__all__ = ["STAGES", "HandPoseResult", "StageTimer"]
