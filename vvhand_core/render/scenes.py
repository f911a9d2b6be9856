"""Analytic depth images of simple primitives (spheres, ellipsoids, capsules, planes).

Ray-cast exactly, in float64, for tests and benchmarks: a known surface to compare the
renderer and the localiser against. Rays are camera rays through pixel centres,
r = K^-1 (u, v, 1) (so r_z = 1 and the ray parameter is the depth z). Every primitive
function returns depth (..., ) in mm with +inf where the ray misses; ``compose`` takes the
nearest surface and turns misses into 0 (the depth-image convention).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pixel_rays(k: Sequence[float] | torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Rays (H, W, 3) float64 with z = 1 through every pixel centre of K = [fx, fy, cx, cy]."""
    fx, fy, cx, cy = (float(x) for x in k)
    v, u = torch.meshgrid(
        torch.arange(height, dtype=torch.float64),
        torch.arange(width, dtype=torch.float64),
        indexing="ij",
    )
    return torch.stack(((u - cx) / fx, (v - cy) / fy, torch.ones_like(u)), dim=-1)


def _vec(x: Sequence[float] | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


def _nearest_root(a: torch.Tensor, half_b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Smallest positive root of a t^2 + 2 half_b t + c = 0, +inf if none."""
    disc = half_b * half_b - a * c
    sq = torch.sqrt(disc.clamp(min=0))
    t0 = (-half_b - sq) / a
    t1 = (-half_b + sq) / a
    t = torch.where(t0 > 0, t0, t1)
    return torch.where((disc >= 0) & (t > 0), t, torch.full_like(t, float("inf")))


def sphere_depth(rays: torch.Tensor, centre_mm, radius_mm: float) -> torch.Tensor:
    """Depth (...) of a sphere seen along rays (..., 3)."""
    c = _vec(centre_mm)
    return _nearest_root((rays * rays).sum(-1), -(rays * c).sum(-1), (c * c).sum() - radius_mm**2)


def ellipsoid_depth(rays: torch.Tensor, centre_mm, radii_mm) -> torch.Tensor:
    """Depth (...) of an axis-aligned ellipsoid (semi-axes radii_mm (3,)) along rays (..., 3)."""
    r = _vec(radii_mm)
    return sphere_depth(rays / r, _vec(centre_mm) / r, 1.0)


def capsule_depth(rays: torch.Tensor, p0_mm, p1_mm, radius_mm: float) -> torch.Tensor:
    """Depth (...) of a capsule (cylinder p0-p1 with hemispherical caps) along rays (..., 3)."""
    p0, p1 = _vec(p0_mm), _vec(p1_mm)
    axis = p1 - p0
    length = axis.norm()
    d = axis / length
    r_perp = rays - (rays @ d)[..., None] * d
    w = -p0
    w_perp = w - (w @ d) * d
    t = _nearest_root(
        (r_perp * r_perp).sum(-1), (r_perp * w_perp).sum(-1), (w_perp @ w_perp) - radius_mm**2
    )
    along = (t[..., None] * rays - p0) @ d
    body = torch.where((along >= 0) & (along <= length), t, torch.full_like(t, float("inf")))
    caps = torch.minimum(sphere_depth(rays, p0, radius_mm), sphere_depth(rays, p1, radius_mm))
    return torch.minimum(body, caps)


def plane_depth(rays: torch.Tensor, point_mm, normal_mm) -> torch.Tensor:
    """Depth (...) of the infinite plane through point_mm with normal normal_mm."""
    p, n = _vec(point_mm), _vec(normal_mm)
    denom = rays @ n
    t = (p @ n) / denom
    return torch.where(t > 0, t, torch.full_like(t, float("inf")))


def compose(*depths: torch.Tensor) -> torch.Tensor:
    """Nearest surface of several primitive depth maps; misses (+inf) -> 0."""
    d = depths[0]
    for other in depths[1:]:
        d = torch.minimum(d, other)
    return torch.where(torch.isfinite(d), d, torch.zeros_like(d))


def hand_like(
    rays: torch.Tensor, palm_centre_mm, scale: float = 1.0, forearm: bool = True
) -> torch.Tensor:
    """A crude open hand facing the camera: palm ellipsoid, five finger capsules, forearm.

    Fingers point up (-y), the forearm runs down (+y) and away (+z). Depth (...) with +inf
    where missed; sizes in mm are multiplied by scale.
    """
    c = _vec(palm_centre_mm)
    s = scale
    parts = [ellipsoid_depth(rays, c, (42 * s, 48 * s, 15 * s))]
    for dx, length in ((-30, 70), (-10, 80), (10, 75), (28, 60)):
        base = c + _vec((dx * s, -40 * s, 0.0))
        tip = base + _vec((dx * 0.15 * s, -length * s, -10 * s))
        parts.append(capsule_depth(rays, base, tip, 8 * s))
    thumb0 = c + _vec((-38 * s, 10 * s, -5 * s))
    parts.append(capsule_depth(rays, thumb0, thumb0 + _vec((-40 * s, -35 * s, -15 * s)), 9 * s))
    if forearm:
        wrist = c + _vec((0.0, 50 * s, 10 * s))
        parts.append(capsule_depth(rays, wrist, wrist + _vec((0.0, 220 * s, 160 * s)), 32 * s))
    d = parts[0]
    for p in parts[1:]:
        d = torch.minimum(d, p)
    return d
