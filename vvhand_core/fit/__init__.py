"""Fitting the articulated hand model to the observed depth (issue 16).

``fit_hand(depth_mm, intrinsics, joints_mm, joint_confidence, previous, config)`` starts
from a network's 21 joints and returns a :class:`FitResult` (joints, angles, placement,
scale, residual); :mod:`.kinematics` is the synthetic generator's hand model in torch
(tested equal to it), :mod:`.bench` measures the fit.
"""

from vvhand_core.fit.fit import FitConfig, FitResult, FitState, fit_hand

__all__ = ["FitConfig", "FitResult", "FitState", "fit_hand"]
