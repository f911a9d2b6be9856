"""Candidate view grids, view matrices about the hand centre, random views and roll."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from vvhand_core.views import (
    identity_index,
    invert_rigid,
    random_roll,
    random_view_angles,
    roll_matrices,
    view_grid,
    view_matrices,
)

# (n_elevation, n_azimuth) per grid size, from the method notes
SHAPES = {1: (1, 1), 3: (1, 3), 9: (3, 3), 15: (3, 5), 25: (5, 5), 81: (9, 9)}


@pytest.mark.parametrize("n", sorted(SHAPES))
def test_grid_sizes_order_and_identity(n):
    n_el, n_az = SHAPES[n]
    grid = view_grid(n)
    assert grid.shape == (n, 2)
    az_vals = np.linspace(-60, 60, n_az) if n_az > 1 else np.zeros(1)
    el_vals = np.linspace(-60, 60, n_el) if n_el > 1 else np.zeros(1)
    for i_el in range(n_el):
        for i_az in range(n_az):
            az, el = grid[i_el * n_az + i_az].tolist()
            assert az == pytest.approx(az_vals[i_az]) and el == pytest.approx(el_vals[i_el])
    assert grid[n // 2].tolist() == [0.0, 0.0] and identity_index(n) == n // 2


def test_grid_examples_and_unknown_size():
    assert view_grid(3).tolist() == [[-60.0, 0.0], [0.0, 0.0], [60.0, 0.0]]
    g15 = view_grid(15)
    assert g15[:5, 1].tolist() == [-60.0] * 5 and g15[:5, 0].tolist() == [-60, -30, 0, 30, 60]
    with pytest.raises(ValueError, match="25"):
        view_grid(7)


def test_view_matrices_match_independent_rotation_and_fix_centre():
    centre = torch.tensor([[10.0, -20.0, 500.0], [0.0, 0.0, 800.0]], dtype=torch.float64)
    grid = view_grid(25).double()
    mats = view_matrices(grid, centre)
    assert mats.shape == (2, 25, 4, 4)
    assert torch.equal(mats[:, 12], torch.eye(4, dtype=torch.float64).expand(2, 4, 4))
    for v in (0, 7, 24):
        az, el = grid[v].tolist()
        rot = Rotation.from_euler("YX", [az, el], degrees=True).as_matrix()  # Ry(az) @ Rx(el)
        assert np.allclose(mats[0, v, :3, :3].numpy(), rot, atol=1e-12)
        c = centre[1].numpy()
        assert np.allclose(mats[1, v, :3, 3].numpy(), c - rot @ c, atol=1e-9)
    # the centre is a fixed point of every view; M^-1 M = I
    ch = torch.cat((centre, torch.ones(2, 1, dtype=torch.float64)), -1)
    moved = (mats @ ch[:, None, :, None])[..., 0]
    assert torch.allclose(moved, ch[:, None].expand_as(moved), atol=1e-9)
    eye = torch.eye(4, dtype=torch.float64).expand(2, 25, 4, 4)
    assert torch.allclose(invert_rigid(mats) @ mats, eye, atol=1e-12)


def test_per_frame_angles_and_random_views():
    g = torch.Generator().manual_seed(3)
    angles = random_view_angles(4, 6, max_deg=30.0, generator=g)
    assert angles.shape == (4, 6, 2) and angles.abs().max() <= 30.0
    assert angles.std() > 5.0  # not constant
    again = random_view_angles(4, 6, max_deg=30.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(angles, again)
    centre = torch.tensor([[0.0, 0.0, 400.0]]).expand(4, 3)
    mats = view_matrices(angles, centre)
    assert mats.shape == (4, 6, 4, 4)
    rot = Rotation.from_euler("YX", angles[2, 3].double().numpy(), degrees=True).as_matrix()
    assert np.allclose(mats[2, 3, :3, :3].numpy(), rot, atol=1e-6)


def test_roll_turns_about_the_viewing_ray():
    centre = torch.tensor([[50.0, -30.0, 600.0], [0.0, 0.0, 500.0]], dtype=torch.float64)
    mats = roll_matrices(torch.tensor([90.0, 30.0]), centre)
    pts = torch.tensor([[[80.0, 10.0, 580.0, 1.0], [-40.0, 60.0, 640.0, 1.0]]] * 2,
                       dtype=torch.float64)
    moved = (mats[:, None] @ pts[..., None])[..., 0]
    # rotation about an axis through the camera origin: distances to the camera unchanged
    assert torch.allclose(moved[..., :3].norm(dim=-1), pts[..., :3].norm(dim=-1))
    # the centre stays put
    c4 = torch.cat((centre, torch.ones(2, 1, dtype=torch.float64)), -1)
    assert torch.allclose((mats @ c4[..., None])[..., 0], c4, atol=1e-9)
    # on the optical axis, a 30 deg roll turns x towards y by 30 deg in the image
    p = torch.tensor([100.0, 0.0, 500.0, 1.0], dtype=torch.float64)
    q = mats[1] @ p
    assert q[:3].tolist() == pytest.approx([100 * np.cos(np.pi / 6), 100 * np.sin(np.pi / 6),
                                            500.0])
    r = random_roll(centre, max_deg=10.0, generator=torch.Generator().manual_seed(0))
    assert r.shape == (2, 4, 4)
    angle = torch.rad2deg(torch.acos((r[:, :3, :3].diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2))
    assert (angle <= 10.0 + 1e-6).all() and (angle > 0).all()
