"""Pictures of the fit: the fitted model placed as the fit modelled it, rendered, drawn."""

from __future__ import annotations

import numpy as np
import pytest

from vvhand_core.camera import project_np
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.fit import FitConfig, fit_hand
from vvhand_core.fit.picture import FitFrame, fitted_geometry, model_depth, write_fit_sheet

CFG = FitConfig(guard=False, iterations=4)


@pytest.fixture(scope="module")
def fits():
    """Fits of v2 frames (left and right hands) from ground truth + 8 mm noise."""
    gen = SyntheticHandGenerator(SynthConfig(scene_version=2, seed=5))
    rng = np.random.default_rng(0)
    out = []
    for i in range(3):
        f = gen.frame(i)
        start = f.joints_mm + rng.normal(0.0, 8.0, f.joints_mm.shape)
        out.append((f, start, fit_hand(f.depth_mm, f.intrinsics, start, None, None, CFG)))
    return out


def test_the_placed_model_has_the_fitted_joints(fits):
    assert {fit.side for _, _, fit in fits} == {"left", "right"}
    for _, _, fit in fits:
        np.testing.assert_allclose(fitted_geometry(fit, CFG).joints, fit.joints_mm, atol=0.01)


def test_the_render_covers_the_fitted_hand(fits):
    f, _, fit = fits[0]
    depth = model_depth(fit, f.intrinsics, CFG)
    assert depth.shape == f.depth_mm.shape and (depth > 0).sum() > 500
    uv = np.round(project_np(np.asarray(fit.joints_mm, np.float64), f.intrinsics)).astype(int)
    seen = depth[uv[:, 1], uv[:, 0]]
    # each joint lies inside a sphere of the model: the render sees the hand at its pixel,
    # never behind it, and mostly a finger's thickness in front (more where a part occludes)
    assert (seen > 0).mean() > 0.9
    gap = fit.joints_mm[:, 2][seen > 0] - seen[seen > 0]
    assert np.all(gap > -1.0) and np.median(gap) < 20.0


def test_fit_sheet_is_written(fits, tmp_path):
    frames = [FitFrame(f.depth_mm, f.intrinsics, start, fit, f.joints_mm, f"frame {i}")
              for i, (f, start, fit) in enumerate(fits)]
    path = write_fit_sheet(frames, tmp_path / "sheet.png", "test", CFG)
    assert path.stat().st_size > 20_000
    with pytest.raises(ValueError, match="at least one"):
        write_fit_sheet([], tmp_path / "none.png")
