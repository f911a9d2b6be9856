"""Camera intrinsics, projection and back-projection (torch and numpy agree and invert)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vvhand_core.camera import (
    Intrinsics,
    back_project,
    back_project_np,
    back_project_t,
    project,
    project_np,
    project_t,
    uvd_to_xyz,
    xyz_to_uvd,
)

NYU = Intrinsics(588.03, 587.07, 320.0, 240.0, 640, 480)


def test_intrinsics_validation_and_forms():
    for bad in ({"fx": 0.0}, {"fy": -1.0}, {"width": 0}, {"height": -3}):
        kw = dict(fx=1.0, fy=1.0, cx=0.0, cy=0.0, width=2, height=2) | bad
        with pytest.raises(ValueError):
            Intrinsics(**kw)
    m = NYU.matrix()
    assert m.shape == (3, 3) and m[0, 0] == 588.03 and m[1, 2] == 240.0 and m[2, 2] == 1
    t = NYU.as_tensor(dtype=torch.float64)
    assert t.tolist() == [588.03, 587.07, 320.0, 240.0]


def test_projection_formula_on_known_point():
    # u = fx x / z + cx, v = fy y / z + cy
    p = np.array([100.0, -50.0, 500.0])
    uv = project_np(p, NYU)
    assert uv == pytest.approx([588.03 * 0.2 + 320, 587.07 * -0.1 + 240])


def test_torch_numpy_agree_and_round_trip():
    rng = np.random.default_rng(1)
    pts = np.stack(
        (rng.uniform(-200, 200, 50), rng.uniform(-200, 200, 50), rng.uniform(200, 1500, 50)), -1
    )
    uv_np = project_np(pts, NYU)
    k = NYU.as_tensor(dtype=torch.float64).expand(50, 4)
    uv_t = project_t(torch.from_numpy(pts), k)
    assert np.allclose(uv_t.numpy(), uv_np, atol=1e-9)
    back = back_project_t(uv_t, torch.from_numpy(pts[:, 2]), k)
    assert np.allclose(back.numpy(), pts, atol=1e-9)
    assert np.allclose(back_project_np(uv_np, pts[:, 2], NYU), pts, atol=1e-9)
    # generic entry points dispatch on the input type
    assert isinstance(project(torch.from_numpy(pts), NYU), torch.Tensor)
    assert np.allclose(back_project(uv_np, pts[:, 2], NYU), pts, atol=1e-9)


def test_uvd_xyz_round_trip_and_batched_k():
    xyz = np.array([[[10.0, 20.0, 400.0], [-30.0, 5.0, 900.0]]])  # (1, 2, 3)
    uvd = xyz_to_uvd(xyz, NYU)
    assert uvd[..., 2].tolist() == [[400.0, 900.0]]
    assert np.allclose(uvd_to_xyz(uvd, NYU), xyz)
    # per-point intrinsics (..., 4)
    k = np.array([[100.0, 200.0, 10.0, 20.0], [50.0, 50.0, 0.0, 0.0]])
    uv = project_np(xyz[0], k)
    assert uv[0] == pytest.approx([100 * 10 / 400 + 10, 200 * 20 / 400 + 20])
    assert uv[1] == pytest.approx([50 * -30 / 900, 50 * 5 / 900])


def test_scaled_keeps_pixel_centres():
    half = NYU.scaled(0.5, 0.5)
    assert (half.width, half.height) == (320, 240)
    # a point projecting to full-res pixel centre u lands at 0.5 * (u + 0.5) - 0.5
    p = np.array([30.0, 40.0, 700.0])
    u_full = project_np(p, NYU)
    assert np.allclose(project_np(p, half), 0.5 * (u_full + 0.5) - 0.5)
    with pytest.raises(ValueError):
        NYU.scaled(0, 1)
