"""Fitting the articulated hand model to the observed depth (issue 16).

``fit_hand(depth_mm, intrinsics, joints_mm, joint_confidence, previous, config)`` starts
from a network's 21 joints and returns a :class:`FitResult` (joints, angles, placement,
scale, residual, whether the safeguard kept the network's joints); :mod:`.kinematics` is
the synthetic generator's hand model in torch (batched, differentiable, tested equal to
it), :mod:`.hand_np` the same model for one hand in numpy, which the fit's inner loop
uses (torch's per-operation overhead dominates on arrays this small); :mod:`.bench`
measures the fit (``vvhand bench fit``).
"""

from vvhand_core.fit.fit import FitConfig, FitResult, FitState, fit_hand

__all__ = ["FitConfig", "FitResult", "FitState", "fit_hand"]
