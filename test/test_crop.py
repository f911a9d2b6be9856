"""Crop window, transform T, slab, aspect ratio, normalisation and the inverses."""

from __future__ import annotations

import pytest
import torch

from vvhand_core.camera import Intrinsics, project_t
from vvhand_core.crop import (
    CropConfig,
    apply_crop_transform,
    crop_depth,
    crop_intrinsics,
    crop_transform,
    denormalise,
    invert_crop_transform,
    normalise,
    uncrop,
)
from vvhand_core.render.scenes import compose, hand_like, pixel_rays, plane_depth

NYU = Intrinsics(588.03, 587.07, 320.0, 240.0, 640, 480)
K = NYU.as_tensor(dtype=torch.float64)[None]


def scene(centre, wall_z=None):
    rays = pixel_rays(K[0], 480, 640)
    parts = [hand_like(rays, centre)]
    if wall_z is not None:
        parts.append(plane_depth(rays, (0, 0, wall_z), (0, 0, 1)))
    return compose(*parts)[None]  # (1, H, W) float64


def test_config_validation():
    with pytest.raises(ValueError):
        CropConfig(cube_mm=0)
    with pytest.raises(ValueError):
        CropConfig(crop_size=-1)


def test_transform_maps_centre_and_cube_edges():
    centre = torch.tensor([[40.0, -25.0, 550.0]], dtype=torch.float64)
    t = crop_transform(centre, K, 250.0, 176)
    uv_c = project_t(centre, K)
    assert apply_crop_transform(t, uv_c)[0].tolist() == pytest.approx([87.5, 87.5])
    # a point cube/2 to the right at the centre's depth lands on the crop's right edge
    # (fx > fy here, so u is the longer side and spans the whole crop)
    edge = centre + torch.tensor([[125.0, 0.0, 0.0]], dtype=torch.float64)
    u_edge = apply_crop_transform(t, project_t(edge, K))[0, 0]
    assert float(u_edge) == pytest.approx(175.5)
    t_inv = invert_crop_transform(t)
    assert torch.allclose(t_inv @ t, torch.eye(3, dtype=torch.float64)[None])
    # crop intrinsics = T K: projecting with them equals T after projecting with K
    p = torch.tensor([[[10.0, 30.0, 600.0], [-80.0, 5.0, 450.0]]], dtype=torch.float64)
    kc = crop_intrinsics(t, K)
    assert torch.allclose(project_t(p, kc[:, None]), apply_crop_transform(t, project_t(p, K)))


def test_crop_keeps_only_the_slab_and_lands_where_projected():
    centre = torch.tensor([[30.0, -20.0, 500.0]], dtype=torch.float64)
    depth = scene(centre[0], wall_z=800.0)  # wall is 300 mm behind: outside the slab
    crop, t = crop_depth(depth, centre, K, CropConfig(cube_mm=250.0, crop_size=176))
    assert crop.shape == (1, 176, 176) and crop.dtype == torch.float64
    fg = crop[crop > 0]
    assert fg.numel() > 1000
    assert fg.min() >= 375.0 and fg.max() <= 625.0  # the slab [z_c -+ cube/2]
    # every crop pixel's value is the depth of the source pixel its centre maps back to
    t_inv = invert_crop_transform(t)
    for i, j in [(88, 88), (40, 90), (120, 100), (87, 60)]:
        uv = apply_crop_transform(t_inv, torch.tensor([[[float(j), float(i)]]], dtype=t.dtype))
        u, v = (int(round(float(x))) for x in uv[0, 0])
        d = float(depth[0, v, u])
        expected = d if abs(d - 500.0) <= 125.0 else 0.0
        assert float(crop[0, i, j]) == pytest.approx(expected)


def test_single_marker_lands_at_T_of_its_pixel():
    # a far hand: the crop magnifies (s > 1), so every source pixel shows up in the crop
    centre = torch.tensor([[0.0, 0.0, 1100.0]], dtype=torch.float64)
    depth = torch.zeros(1, 480, 640, dtype=torch.float64)
    u0, v0 = 333, 251
    depth[0, v0, u0] = 1100.0
    crop, t = crop_depth(depth, centre, K, CropConfig(cube_mm=250.0))
    assert t[0, 0, 0] > 1
    j, i = apply_crop_transform(t, torch.tensor([[[float(u0), float(v0)]]], dtype=t.dtype))[0, 0]
    assert float(crop[0, int(round(float(i))), int(round(float(j)))]) == 1100.0
    ii, jj = crop[0].nonzero(as_tuple=True)
    assert (ii.double() - i).abs().max() <= t[0, 0, 0] / 2 + 0.5
    assert (jj.double() - j).abs().max() <= t[0, 0, 0] / 2 + 0.5


def test_outside_image_is_zero_and_aspect_ratio_is_kept():
    intr = Intrinsics(500.0, 400.0, 160.0, 120.0, 320, 240)  # fx != fy on purpose
    k = intr.as_tensor(dtype=torch.float64)[None]
    depth = torch.full((1, 240, 320), 600.0, dtype=torch.float64)
    centre = torch.tensor([[0.0, 0.0, 600.0]], dtype=torch.float64)
    crop, t = crop_depth(depth, centre, k, CropConfig(cube_mm=200.0, crop_size=64))
    rows = (crop[0] > 0).any(1)
    cols = (crop[0] > 0).any(0)
    assert cols.all()  # the longer side (u) fills the crop
    assert rows.sum() == pytest.approx(64 * 400 / 500, abs=2)  # the shorter side is padded
    assert t[0, 0, 0] == t[0, 1, 1]  # one scale for both axes
    # a centre beside the image's left edge: columns mapping outside the image are empty
    centre = torch.tensor([[-260.0, 0.0, 600.0]], dtype=torch.float64)
    crop, t = crop_depth(depth, centre, k, CropConfig(cube_mm=200.0, crop_size=64))
    t_inv = invert_crop_transform(t)
    src_u = t_inv[0, 0, 0] * torch.arange(64, dtype=torch.float64) + t_inv[0, 0, 2]
    outside = torch.round(src_u) < 0
    assert outside.any() and not outside.all()
    assert (crop[0][:, outside] == 0).all() and (crop[0][:, ~outside] > 0).any()


def test_uncrop_round_trip():
    # magnifying crop (far hand): uncrop(crop) restores every window/slab pixel exactly
    far = torch.tensor([[20.0, 10.0, 1000.0]], dtype=torch.float64)
    depth = scene(far[0], wall_z=1300.0)
    crop, t = crop_depth(depth, far, K, CropConfig(cube_mm=250.0))
    back = uncrop(crop, t, 480, 640)
    kept = back > 0
    assert kept.sum() > 500
    assert torch.equal(back[kept], depth[kept])
    # every in-slab source pixel inside the window comes back
    uv = project_t(far, K)[0]
    a = 125.0 * 588.03 / 1000.0
    win = torch.zeros_like(depth, dtype=torch.bool)
    (u0, u1), (v0, v1) = ((int(x - a * 0.95), int(x + a * 0.95)) for x in uv.tolist())
    win[0, v0:v1, u0:u1] = True
    in_slab = win & (depth > 0) & ((depth - 1000.0).abs() <= 125.0)
    assert torch.equal(back[in_slab], depth[in_slab])
    # shrinking crop (near hand): crop(uncrop(crop)) reproduces the crop
    near = torch.tensor([[0.0, -10.0, 450.0]], dtype=torch.float64)
    crop, t = crop_depth(scene(near[0]), near, K, CropConfig(cube_mm=250.0))
    assert t[0, 0, 0] < 1
    again, _ = crop_depth(uncrop(crop, t, 480, 640), near, K, CropConfig(cube_mm=250.0))
    assert torch.equal(again, crop)


def test_batched_per_frame_cube_and_dtypes():
    centres = torch.tensor([[30.0, -20.0, 500.0], [0.0, 0.0, 700.0]], dtype=torch.float64)
    depth = torch.cat((scene(centres[0]), scene(centres[1])), 0)
    cube = torch.tensor([250.0, 200.0], dtype=torch.float64)
    crops, t = crop_depth(depth, centres, K.expand(2, 4), CropConfig(crop_size=96), cube_mm=cube)
    for b in range(2):
        one, t1 = crop_depth(depth[b : b + 1], centres[b : b + 1], K, CropConfig(
            cube_mm=float(cube[b]), crop_size=96))
        assert torch.equal(crops[b], one[0]) and torch.allclose(t[b], t1[0])
    u16 = depth.round().to(torch.int32).to(torch.uint16) if hasattr(torch, "uint16") else None
    if u16 is not None:
        c16, _ = crop_depth(u16, centres.float(), K.float().expand(2, 4), cube_mm=cube.float())
        assert c16.dtype == torch.float32 and (c16 > 0).sum() > 1000


def test_normalise_and_inverse():
    crop = torch.tensor([[[0.0, 375.0], [500.0, 625.0]]])
    zc = torch.tensor([500.0])
    n = normalise(crop, zc, 250.0)
    assert n.tolist() == [[[1.0, -1.0], [0.0, 1.0]]]
    views = torch.stack((crop, crop * 0), 1)  # (B, V, S, S)
    nv = normalise(views, zc, torch.tensor([250.0]))
    assert nv[0, 1].eq(1).all() and torch.equal(nv[0, 0], n[0])
    back = denormalise(n, zc, 250.0)
    # +1 is background (also the far slab face): it comes back as 0
    assert back.tolist() == [[[0.0, 375.0], [500.0, 0.0]]]
