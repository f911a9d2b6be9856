"""Fitting the articulated hand model to the observed depth (issue 16).

``fit_hand(depth_mm, intrinsics, joints_mm, joint_confidence, previous, config)`` starts
from a network's 21 joints and returns a :class:`FitResult` (joints, angles, placement,
scale, residual, whether the safeguard kept the network's joints). The hand is the
synthetic generator's (:mod:`vvhand_core.data.synthetic.hand_model`), posed for the fit in
closed form by :mod:`.hand_np`; :mod:`.compiled` holds the numba kernels of the inner
loop; :mod:`.bench` measures the fit (``vvhand bench fit``).
"""

from vvhand_core.fit.fit import FitConfig, FitResult, FitState, fit_hand

__all__ = ["FitConfig", "FitResult", "FitState", "fit_hand"]
