"""The fit's parameter vector and its residual terms, each with its analytic Jacobian.

Parameters x (30,): [0:3] omega (rad, a rotation applied in the camera frame on top of a
fixed R0: R = exp(omega) R0), [3:6] translation t (mm), [6] scale s, [7:30] the 23 angles
(degrees). Each term returns weighted residuals r (m,) whose squares sum to its cost,
``sqrt(weight / count) * psi(e / sigma)`` with the Cauchy-like ``psi`` of :func:`robust`
(so a term's weight is its share of the cost per element whatever its element count),
and their Jacobian (m, 30) by the chain rule: d r / d point (closed form; free space:
finite differences of the bilinear lookup) times the point's velocity
(:mod:`vvhand_core.fit.bodies`). ``test/test_fit.py`` checks them against finite
differences of the whole model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vvhand_core.fit.bodies import (
    JOINT_BODY,
    PART_BODY,
    SAMPLE_BODY,
    jacobian_rows,
    left_jacobian,
    skew,
)
from vvhand_core.fit.kinematics import Posed, ShapeTensors, limits_deg, pose
from vvhand_core.fit.observe import Observation, lookup
from vvhand_core.fit.surface import nearest_surface

NUM_FIT_PARAMS = 30
SCALE_INDEX = 6
ANGLES = slice(7, 30)


def bounds(scale_range: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper bounds (30,): rotation and translation free, scale, joint limits."""
    lim = limits_deg()
    big = torch.full((6,), 1e9, dtype=torch.float64)
    lo = torch.cat([-big, torch.tensor([scale_range[0]], dtype=torch.float64), lim[:, 0]])
    hi = torch.cat([big, torch.tensor([scale_range[1]], dtype=torch.float64), lim[:, 1]])
    return lo, hi


def pack(rotation_delta: torch.Tensor, translation_mm: torch.Tensor, scale: float,
         angles_deg: torch.Tensor) -> torch.Tensor:
    """Parameter vector (30,) from its parts."""
    return torch.cat([rotation_delta, translation_mm,
                      torch.tensor([scale], dtype=torch.float64), angles_deg]).to(torch.float64)


def rotation_np(omega: np.ndarray) -> np.ndarray:
    """Rodrigues (numpy): axis-angle (3,) rad -> rotation (3, 3)."""
    theta = float(np.linalg.norm(omega))
    if theta < 1e-12:
        return np.eye(3)
    k = skew(omega / theta)
    return np.eye(3) + np.sin(theta) * k + (1.0 - np.cos(theta)) * (k @ k)


def placement(x: torch.Tensor, r0: torch.Tensor) -> torch.Tensor:
    """R = exp(omega) R0 (3, 3) of parameter vector x (30,)."""
    return torch.from_numpy(rotation_np(x[0:3].numpy())) @ r0


def model(x: torch.Tensor, r0: torch.Tensor, shape: ShapeTensors, left: bool,
          axes: bool = False) -> Posed:
    """The posed hand of parameter vector x (30,) with base rotation r0 (3, 3)."""
    return pose(x[None, ANGLES], placement(x, r0)[None], x[None, 3:6], x[None, SCALE_INDEX],
                shape, left, axes)


@dataclass
class Linearisation:
    """The model at one parameter vector, with what its Jacobians need (camera frame).

    posed: hand 0 with its joint axes; jl (3, 3) left Jacobian of omega; t (3,); s.
    """

    posed: Posed
    jl: torch.Tensor
    t: torch.Tensor
    s: float

    @property
    def joints(self) -> torch.Tensor:
        """(21, 3) mm."""
        return self.posed.joints[0]

    def rows(self, points, bodies, g, scale_extra=None) -> torch.Tensor:
        """Jacobian rows (N, 30) for sensitivities g (N, 3) of points on bodies."""
        p = self.posed
        return jacobian_rows(points, bodies, g, p.axes[0], p.pivots[0], self.jl, self.t,
                             self.s, p.points[0, 28], scale_extra)  # fmt: skip


def linearise(x: torch.Tensor, r0: torch.Tensor, shape: ShapeTensors, left: bool
              ) -> Linearisation:
    """The model at x (30,) with its joint axes."""
    return Linearisation(model(x, r0, shape, left, axes=True), left_jacobian(x[0:3]), x[3:6],
                         float(x[SCALE_INDEX]))


def robust(e: torch.Tensor, c: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """psi(e) = sign(e) c sqrt(log(1 + (e / c)^2)) and its derivative d psi / d e.

    Its square is twice Cauchy's rho; psi(e) ~ e near 0.
    """
    u2 = (e / c) ** 2
    log = torch.log1p(u2)
    psi = torch.sign(e) * c * torch.sqrt(log)
    small = u2 < 1e-8
    dpsi = torch.where(small, torch.ones_like(e),
                       (e / c).abs() / (torch.sqrt(log.clamp_min(1e-300)) * (1.0 + u2)))
    return psi, dpsi


@dataclass
class Weights:
    """Term weights (share of the cost per element) and scales (mm).

    joints: pull to the network's joints (sigma ``joint_mm``), data: observed points to
    the model surface (``data_mm``; Cauchy scale ``data_robust`` sigmas), free: model where
    the camera sees past it (``free_mm``, ``front_margin_mm`` of depth tolerated), scale:
    prior on s (``scale_sigma``), temporal: pull to the previous frame's joints
    (``temporal_mm``).
    """

    joints: float = 0.3
    data: float = 1.0
    free: float = 1.0
    scale: float = 0.1
    temporal: float = 0.3
    joint_mm: float = 15.0
    data_mm: float = 3.0
    free_mm: float = 6.0
    front_margin_mm: float = 8.0
    scale_sigma: float = 0.1
    temporal_mm: float = 10.0
    data_robust: float = 1.0


def point_pull(lin: Linearisation, target: torch.Tensor, conf: torch.Tensor, weight: float,
               sigma_mm: float, jac: bool):
    """Joints to targets (21, 3), joint j weighted by conf[j]: r (63,), J (63, 30)."""
    w = (weight * conf / conf.sum().clamp_min(1e-9)).sqrt()[:, None]
    psi, dpsi = robust((lin.joints - target) / sigma_mm)
    r = (psi * w).reshape(-1)
    if not jac:
        return r, None
    g = torch.diag_embed(dpsi * w / sigma_mm).reshape(-1, 3)  # row (j, c): e_c dr/dp
    return r, (lin.joints.repeat_interleave(3, dim=0), _JOINT_BODY3, g, None)


def data_term(lin: Linearisation, points: torch.Tensor, weight: float, sigma_mm: float,
              robust_scale: float, jac: bool, candidates: torch.Tensor | None = None):
    """Observed points (N, 3) to the model's surface: r (N,), J (N, 30).

    candidates: the round parts considered per point (``surface.nearest_surface``).
    """
    d, grad, part = nearest_surface(points, lin.posed, candidates)
    k = (weight / max(points.shape[0], 1)) ** 0.5
    psi, dpsi = robust(d / sigma_mm, robust_scale)
    if not jac:
        return psi * k, None
    dr_dd = dpsi * (k / sigma_mm)
    # the model moving by v is the point moving by -v: sensitivity -dr/dx
    g = -dr_dd[:, None] * grad
    return psi * k, (points, PART_BODY[part], g, dr_dd * d / lin.s)


_JOINT_BODY3 = JOINT_BODY.repeat_interleave(3)
_SAMPLE_BODY2 = SAMPLE_BODY.repeat(2)
_STEP_MM = 1e-3
_PROBE = torch.cat([torch.zeros(1, 3), torch.eye(3)]).to(torch.float64) * _STEP_MM  # (4, 3)


def free_term(lin: Linearisation, obs: Observation, weight: float, sigma_mm: float,
              margin_mm: float, jac: bool):
    """Free space: r (2K,), J (2K, 30).

    Samples projecting past the near pixels, or in front of the observed depth by more
    than the margin.
    """
    centres, radii = (x[0] for x in lin.posed.samples())
    probes = centres[None] + _PROBE[:, None] if jac else centres[None]
    outside, depth = lookup(obs, probes)  # (4 or 1, K)
    front_raw = depth - margin_mm - (probes[..., 2] - radii)
    active = (front_raw[0] > 0) & (depth[0] > 0)
    front = torch.where(active, front_raw[0], torch.zeros_like(radii))
    k = (weight / centres.shape[0]) ** 0.5
    psi, dpsi = robust(torch.cat([outside[0], front]) / sigma_mm)
    if not jac:
        return psi * k, None
    d_out = ((outside[1:] - outside[0]) / _STEP_MM).T  # (K, 3)
    d_front = ((front_raw[1:] - front_raw[0]) / _STEP_MM).T * active[:, None]
    f = dpsi * (k / sigma_mm)
    nk = centres.shape[0]
    g = torch.cat([d_out * f[:nk, None], d_front * f[nk:, None]])
    extra = torch.cat([torch.zeros_like(radii), f[nk:] * active * radii / lin.s])
    return psi * k, (torch.cat([centres, centres]), _SAMPLE_BODY2, g, extra)


def scale_prior(x: torch.Tensor, prior: float, w: Weights, jac: bool):
    """(s - prior) / sigma: r (1,), J (1, 30)."""
    k = w.scale ** 0.5 / w.scale_sigma
    r = (x[SCALE_INDEX:SCALE_INDEX + 1] - prior) * k
    if not jac:
        return r, None
    j = torch.zeros(1, NUM_FIT_PARAMS, dtype=torch.float64)
    j[0, SCALE_INDEX] = k
    return r, j


def stack_terms(lin: Linearisation, parts, jac: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """All terms' residuals (m,) and Jacobian (m, 30).

    A term gives (r, J) or (r, its points' sensitivities (points, bodies, g, scale extra
    or None)); the latter's rows are made in one :func:`jacobian_rows` call.
    """
    if not jac:
        return torch.cat([p[0] for p in parts]), None
    chain = [p for p in parts if isinstance(p[1], tuple)]
    direct = [p for p in parts if not isinstance(p[1], tuple)]
    r = torch.cat([p[0] for p in chain + direct])
    if not chain:
        return r, torch.cat([p[1] for p in direct])
    sens = [p[1] for p in chain]
    extra = torch.cat([torch.zeros(len(x[0]), dtype=torch.float64) if x[3] is None else x[3]
                       for x in sens])  # fmt: skip
    rows = lin.rows(*(torch.cat([x[k] for x in sens]) for k in range(3)), extra)
    return r, torch.cat([rows] + [p[1] for p in direct])


def free_space_cost(obs: Observation, posed: Posed, margin_mm: float = 8.0) -> torch.Tensor:
    """Mean violation (B,) mm of the free-space constraints (outside + in front), unweighted."""
    centres, radii = posed.samples()
    outside, depth = lookup(obs, centres)
    front = (depth - margin_mm - (centres[..., 2] - radii)).clamp_min(0.0)
    front = torch.where(depth > 0, front, torch.zeros_like(front))
    return (outside + front).mean(dim=1)
