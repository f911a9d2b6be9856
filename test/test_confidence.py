"""Per-joint confidence from the views' spread (vvhand_core.confidence) and the pipeline's
per-view output."""

from __future__ import annotations

import numpy as np

from vvhand_core.confidence import (
    binned_error,
    joint_spread_mm,
    rank_correlation,
    spread_to_confidence,
)


def test_spread_is_the_weighted_rms_distance_from_the_fused_joint():
    fused = np.zeros((2, 3))
    views = np.array([[[3.0, 0, 0], [0, 0, 0]], [[-1.0, 0, 0], [0, 0, 0]]])
    spread = joint_spread_mm(views, fused, np.array([0.25, 0.75]))
    assert np.allclose(spread, [np.sqrt(0.25 * 9 + 0.75 * 1), 0.0])
    assert np.isnan(joint_spread_mm(views[:1], fused, np.ones(1))).all()  # one view
    conf = spread_to_confidence(np.array([0.0, 20.0, np.nan]), 20.0)
    assert conf[0] == 1.0 and np.isclose(conf[1], np.exp(-1)) and np.isnan(conf[2])


def test_bins_and_rank_correlation():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 1000)
    err = 50 * (1 - conf) + rng.normal(0, 2, 1000)
    rows = binned_error(conf, err, bins=5)
    assert [r["count"] for r in rows] == [200] * 5
    means = [r["mean_mm"] for r in rows]
    assert means == sorted(means, reverse=True)
    assert rank_correlation(conf, err) < -0.9


def test_pipeline_reports_views_and_spread(tmp_path):
    from vvhand_core.checkpoint import save_random_checkpoint
    from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
    from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline

    path = save_random_checkpoint(tmp_path / "r.pt", width=0.125, seed=3)
    pipe = VirtualViewPipeline.from_checkpoint(path, PipelineConfig(device="cpu", num_views=4))
    f = SyntheticHandGenerator(SynthConfig(seed=11, background="none")).frame(0)
    r = pipe.run(f.depth_mm, f.intrinsics, centre_mm=f.joints_mm.mean(0))
    assert r.valid and r.joints_views_mm.shape == (4, 21, 3)
    # the fused joints are the weighted mean of the per-view joints (Eq. 2)
    fused = np.einsum("n,njk->jk", r.weights, r.joints_views_mm)
    assert np.allclose(fused, r.joints_mm, atol=1e-3)
    assert np.allclose(r.joint_spread_mm,
                       joint_spread_mm(r.joints_views_mm, r.joints_mm, r.weights), atol=1e-4)
    assert np.all(r.joint_spread_mm > 0)
