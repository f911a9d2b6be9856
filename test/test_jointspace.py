"""Joint conversions: crop uvd <-> camera mm, through view matrices and back."""

from __future__ import annotations

import pytest
import torch

from vvhand_core.camera import Intrinsics, project_t
from vvhand_core.crop import apply_crop_transform, crop_transform
from vvhand_core.jointspace import (
    apply_transform,
    camera_mm_to_crop_uvd,
    camera_mm_to_view_uvd,
    crop_uvd_to_camera_mm,
    view_uvd_to_camera_mm,
    views_to_camera_mm,
)
from vvhand_core.render import TorchRenderer
from vvhand_core.views import random_view_angles, view_grid, view_matrices

NYU = Intrinsics(588.03, 587.07, 320.0, 240.0, 640, 480)


def batch(dtype, b=3, j=21, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centre = torch.stack(
        (torch.rand(b, generator=gen) * 200 - 100, torch.rand(b, generator=gen) * 200 - 100,
         400 + torch.rand(b, generator=gen) * 500), -1).to(dtype)
    joints = centre[:, None] + (torch.rand(b, j, 3, generator=gen).to(dtype) - 0.5) * 200
    k = NYU.as_tensor(dtype=dtype)[None].expand(b, 4)
    cube = torch.tensor([250.0, 220.0, 300.0][:b], dtype=dtype)
    t = crop_transform(centre, k, cube, 176)
    return centre, joints, k, cube, t


def test_identity_view_uvd_is_T_of_projection_and_normalised_depth():
    centre, joints, k, cube, t = batch(torch.float64)
    uvd = camera_mm_to_crop_uvd(joints, t, k, centre[:, 2], cube)
    uv = apply_crop_transform(t, project_t(joints, k[:, None]))
    assert torch.allclose(uvd[..., :2], uv)
    assert torch.allclose(uvd[..., 2], (joints[..., 2] - centre[:, None, 2]) / (cube[:, None] / 2))
    back = crop_uvd_to_camera_mm(uvd, t, k, centre[:, 2], cube)
    assert (back - joints).abs().max() < 1e-9


def test_round_trip_through_every_view_float64():
    centre, joints, k, cube, t = batch(torch.float64)
    angles = torch.cat((view_grid(25)[None].expand(3, -1, -1).double(),
                        random_view_angles(3, 7, generator=torch.Generator().manual_seed(1))
                        .double()), 1)
    mats = view_matrices(angles, centre)  # (B, 32, 4, 4)
    uvd = camera_mm_to_view_uvd(joints, mats, t, k, centre[:, 2], cube)
    assert uvd.shape == (3, 32, 21, 3)
    # different views see the joints at different crop positions
    assert (uvd[:, 0] - uvd[:, 12]).abs().max() > 5
    back = view_uvd_to_camera_mm(uvd, mats, t, k, centre[:, 2], cube)
    assert (back - joints[:, None]).abs().max() < 1e-3
    assert (back - joints[:, None]).abs().max() < 1e-9  # in fact to rounding error


def test_round_trip_float32_is_sensible():
    centre, joints, k, cube, t = batch(torch.float32)
    mats = view_matrices(view_grid(25), centre)
    uvd = camera_mm_to_view_uvd(joints, mats, t, k, centre[:, 2], cube)
    back = view_uvd_to_camera_mm(uvd, mats, t, k, centre[:, 2], cube)
    assert (back - joints[:, None]).abs().max() < 0.05  # float32 at ~1 m: a few ulp


def test_apply_transform_broadcasts_like_matmul():
    gen = torch.Generator().manual_seed(2)
    mats = view_matrices(view_grid(9).double(), torch.tensor([[0.0, 0.0, 500.0]] * 2,
                                                                dtype=torch.float64))
    pts = torch.rand(2, 1, 5, 3, generator=gen, dtype=torch.float64) * 100
    out = apply_transform(pts, mats)
    ref = (mats[:, :, None, :3, :3] @ pts[..., None])[..., 0] + mats[:, :, None, :3, 3]
    assert out.shape == (2, 9, 5, 3) and torch.allclose(out, ref)
    assert torch.allclose(views_to_camera_mm(out, mats), pts.expand(2, 9, 5, 3))


def test_targets_agree_with_the_renderer():
    """A surface point rendered into view i lands at the pixel its joint target names."""
    centre = torch.tensor([[0.0, 0.0, 600.0]], dtype=torch.float64)
    k = NYU.as_tensor(dtype=torch.float64)[None]
    t = crop_transform(centre, k, 250.0, 96)
    point = torch.tensor([[[30.0, -20.0, 610.0]]], dtype=torch.float64)  # (1, 1, 3)
    uvd0 = camera_mm_to_crop_uvd(point, t, k, centre[:, 2], 250.0)[0, 0]
    # a crop holding only this point's depth at its own crop pixel
    j, i = (int(torch.round(x)) for x in uvd0[:2])
    crop = torch.zeros(1, 96, 96, dtype=torch.float64)
    crop[0, i, j] = 610.0
    mats = view_matrices(torch.tensor([[35.0, -15.0]], dtype=torch.float64), centre)
    view = TorchRenderer("cpu").render(crop, t, k, mats)[0, 0]
    (vi, vj), = view.nonzero().tolist()
    # the point that really sits at the crop pixel centre (j, i) with depth 610
    pix_pt = crop_uvd_to_camera_mm(
        torch.tensor([[[float(j), float(i), (610.0 - 600.0) / 125.0]]], dtype=torch.float64),
        t, k, centre[:, 2], 250.0)
    target = camera_mm_to_view_uvd(pix_pt[:, 0], mats, t, k, centre[:, 2], 250.0)[0, 0, 0]
    assert (vj, vi) == (int(torch.round(target[0])), int(torch.round(target[1])))
    assert float(view[vi, vj]) == pytest.approx(600.0 + 125.0 * float(target[2]), abs=1e-6)
