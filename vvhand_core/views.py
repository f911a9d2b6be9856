"""Virtual views: candidate grids, rigid view matrices about the hand centre, augmentation.

A virtual view rotates the hand's points about its 3D centre C (camera mm) in front of the
same camera and the same crop transform:

    M = T(C) . Ry(azimuth) . Rx(elevation) . T(-C)

with Ry, Rx the right-handed rotations about the camera's y and x axes. Candidate grids
span [-60, +60] degrees (linspace), elevation-major (index = i_el * n_az + i_az), so the
identity view is index V // 2. Angles are (azimuth_deg, elevation_deg) in that order.
"""

from __future__ import annotations

import numpy as np
import torch

from vvhand_core.lite import geometry as _np_views

# the grids are defined once, in numpy (vvhand_core.lite.geometry, the torch-free twin):
# num_views -> (n_elevation, n_azimuth), and the largest angle
GRID_SHAPES: dict[int, tuple[int, int]] = _np_views.GRID_SHAPES
GRID_MAX_DEG = _np_views.GRID_MAX_DEG


def view_grid(num_views: int, max_deg: float = GRID_MAX_DEG) -> torch.Tensor:
    """Candidate view angles (V, 2) float32 = (azimuth_deg, elevation_deg), elevation-major.

    V must be one of 1, 3, 9, 15, 25, 81; index V // 2 is the identity (0, 0).
    """
    return torch.from_numpy(_np_views.view_grid(num_views, max_deg))


def rotation_matrices(angles_deg: torch.Tensor) -> torch.Tensor:
    """Ry(azimuth) @ Rx(elevation) for angles (..., 2) deg -> (..., 3, 3)."""
    a = torch.deg2rad(angles_deg[..., 0])
    e = torch.deg2rad(angles_deg[..., 1])
    ca, sa, ce, se = torch.cos(a), torch.sin(a), torch.cos(e), torch.sin(e)
    zero = torch.zeros_like(a)
    # Ry(a) = [[ca,0,sa],[0,1,0],[-sa,0,ca]], Rx(e) = [[1,0,0],[0,ce,-se],[0,se,ce]]
    rows = (
        (ca, sa * se, sa * ce),
        (zero, ce, -se),
        (-sa, ca * se, ca * ce),
    )
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def rigid_about(rot: torch.Tensor, centre_mm: torch.Tensor) -> torch.Tensor:
    """4x4 transforms T(C) R T(-C): rot (..., 3, 3), centre_mm (..., 3) -> (..., 4, 4).

    The translation is C - R C, which is exactly 0 when R is exactly the identity.
    """
    # numpy's broadcast of the shapes: torch.broadcast_shapes imports sympy on its first
    # call (~1 s on this CPU, which landed on a node's first frame)
    shape = torch.Size(np.broadcast_shapes(tuple(rot.shape[:-2]), tuple(centre_mm.shape[:-1])))
    rot = rot.expand(shape + (3, 3))
    c = centre_mm.to(rot.dtype).expand(shape + (3,))
    t = c - (rot * c[..., None, :]).sum(-1)
    top = torch.cat((rot, t[..., None]), dim=-1)
    bottom = torch.zeros(top.shape[:-2] + (1, 4), dtype=top.dtype, device=top.device)
    bottom[..., 0, 3] = 1
    return torch.cat((top, bottom), dim=-2)


def view_matrices(angles_deg: torch.Tensor, centre_mm: torch.Tensor) -> torch.Tensor:
    """View matrices M = T(C) Ry(az) Rx(el) T(-C) in camera mm.

    angles_deg (V, 2) shared by all frames, or (B, V, 2) per frame; centre_mm (B, 3).
    Returns (B, V, 4, 4) in centre_mm's dtype and device.
    """
    angles = angles_deg.to(device=centre_mm.device, dtype=centre_mm.dtype)
    if angles.dim() == 2:
        angles = angles.unsqueeze(0).expand(centre_mm.shape[0], -1, -1)
    rot = rotation_matrices(angles)  # (B, V, 3, 3)
    return rigid_about(rot, centre_mm[:, None, :])


def invert_rigid(mats: torch.Tensor) -> torch.Tensor:
    """Inverse of rigid transforms (..., 4, 4): [R^T, -R^T t; 0, 1]."""
    rot_t = mats[..., :3, :3].transpose(-1, -2)
    t = mats[..., :3, 3]
    t_inv = -(rot_t * t[..., None, :]).sum(-1)
    out = torch.zeros_like(mats)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = t_inv
    out[..., 3, 3] = 1
    return out


def random_view_angles(
    batch: int,
    num_views: int,
    max_deg: float = GRID_MAX_DEG,
    generator: torch.Generator | None = None,
    device=None,
) -> torch.Tensor:
    """Random (azimuth_deg, elevation_deg) uniform in [-max_deg, max_deg]: (B, V, 2)."""
    u = torch.rand((batch, num_views, 2), generator=generator, dtype=torch.float32)
    return ((2 * u - 1) * max_deg).to(device)


def roll_matrices(roll_deg: torch.Tensor, centre_mm: torch.Tensor) -> torch.Tensor:
    """Rotations by roll_deg (B,) about the viewing ray through the centre: (B, 4, 4).

    The axis runs from the camera origin through C, so C stays put and the depth image
    only turns in the image plane (no new occlusions); right-handed about +ray.
    """
    axis = centre_mm / centre_mm.norm(dim=-1, keepdim=True)
    theta = torch.deg2rad(roll_deg.to(centre_mm.dtype))
    c, s = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    cross = torch.stack(
        (
            torch.stack((zero, -z, y), -1),
            torch.stack((z, zero, -x), -1),
            torch.stack((-y, x, zero), -1),
        ),
        dim=-2,
    )
    eye = torch.eye(3, dtype=centre_mm.dtype, device=centre_mm.device)
    outer = axis[:, :, None] * axis[:, None, :]
    rot = c * eye + s * cross + (1 - c) * outer  # Rodrigues
    return rigid_about(rot, centre_mm)


def random_roll(
    centre_mm: torch.Tensor,
    max_deg: float = 180.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random roll about the viewing ray through centre_mm (B, 3), uniform in ±max_deg.

    Returns (B, 4, 4); compose with view matrices as view_mats @ roll[:, None].
    """
    u = torch.rand((centre_mm.shape[0],), generator=generator, dtype=torch.float64)
    roll = ((2 * u - 1) * max_deg).to(device=centre_mm.device, dtype=centre_mm.dtype)
    return roll_matrices(roll, centre_mm)


def identity_index(num_views: int) -> int:
    """Index of the identity view in a candidate grid of num_views views."""
    if num_views not in GRID_SHAPES:
        raise ValueError(f"num_views must be one of {sorted(GRID_SHAPES)}, got {num_views}")
    return num_views // 2


__all__ = [
    "GRID_SHAPES",
    "GRID_MAX_DEG",
    "view_grid",
    "rotation_matrices",
    "rigid_about",
    "view_matrices",
    "invert_rigid",
    "random_view_angles",
    "roll_matrices",
    "random_roll",
    "identity_index",
]



def grid_subset_indices(n: int, m: int) -> torch.Tensor:
    """Indices (N,) of the N-grid's views in the M-grid (ValueError when one is missing)."""
    return torch.from_numpy(_np_views.grid_subset_indices(n, m))
