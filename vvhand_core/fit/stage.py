"""The hand-model fit as a pipeline stage: network joints in, fitted joints and angles out.

``FitStage.apply(result, depth_mm, intrinsics)`` runs :func:`~vvhand_core.fit.fit_hand`
on one valid :class:`~vvhand_core.pipeline_config.HandPoseResult` and rewrites it in place:

- ``joints_mm`` becomes the fitted model's joints (the network's when the safeguard
  refused the fit), the network's fused joints move to ``network_joints_mm``;
- ``fit`` holds the :class:`~vvhand_core.fit.FitResult` (angles in degrees,
  ``ANGLE_NAMES`` order; scale; residual mm; ``fallback``: why the network's joints were
  kept, "" when the fit was used).

The fit pulls toward the network's joints weighted by their confidence, which comes from
the fused views' agreement (``vvhand_core.confidence``; all 1 with one view). In
sequences (``sequence=True``, the pipeline's tracking) the previous frame's fit is carried:
a pull toward its joints and the held side and shape; a frame without a hand, or network
joints that moved more than ``jump_mm`` (mean) from the last fit, start a new sequence.
"""

from __future__ import annotations

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_core.confidence import spread_to_confidence
from vvhand_core.data.synthetic.hand_model import PARAM_NAMES
from vvhand_core.fit.fit import FitConfig, FitState, fit_hand
from vvhand_core.skeletons import HANDS2019_21, Skeleton

ANGLE_NAMES: tuple[str, ...] = PARAM_NAMES  # the 23 fitted joint angles, in order
JUMP_MM = 60.0


def check_fit_skeleton(skeleton: Skeleton) -> None:
    """ValueError unless the model predicts the 21 joints the hand model has."""
    if skeleton.name != HANDS2019_21.name:
        raise ValueError(f"the hand-model fit needs skeleton {HANDS2019_21.name!r}, the "
                         f"model predicts {skeleton.name!r}")


class FitStage:
    """Fits the hand model after fusion, carrying the state of a sequence (module doc)."""

    def __init__(self, config: FitConfig, jump_mm: float = JUMP_MM) -> None:
        self.config = config
        self.jump_mm = jump_mm
        self._state: FitState | None = None

    def reset(self) -> None:
        """Forget the sequence (the next frame is fitted on its own)."""
        self._state = None

    def apply(self, result, depth_mm: np.ndarray, intrinsics: Intrinsics,
              sequence: bool = False) -> None:
        """Fit one frame's result in place (module doc); an invalid result ends a sequence."""
        if not result.valid:
            self._state = None
            return
        network = np.asarray(result.joints_mm, np.float64)
        spread = result.joint_spread_mm
        confidence = (None if spread is None or not np.isfinite(spread).all()
                      else spread_to_confidence(spread))
        previous = self._state if sequence else None
        if previous is not None and np.linalg.norm(
                previous.joints_mm - network, axis=1).mean() > self.jump_mm:
            previous = None
        fit = fit_hand(depth_mm, intrinsics, network, confidence, previous, self.config)
        self._state = fit.state if sequence else None
        result.network_joints_mm = network.astype(np.float32)
        result.joints_mm = np.asarray(fit.joints_mm, np.float32)
        result.fit = fit
