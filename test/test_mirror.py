"""The mirror pass (PipelineConfig.mirror): flipped frames, merged passes, both sides fitted."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hands import other_side

from vvhand_core.camera import MIRROR_X, Intrinsics, project_t, with_mirror_t
from vvhand_core.fit import FitConfig
from vvhand_core.fit.fit import FitState
from vvhand_core.fit.stage import FitStage
from vvhand_core.fusion import merge_mirror_pass
from vvhand_core.lite.config import LiteConfig
from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline
from vvhand_core.side import side_score
from vvhand_core.skeletons import HANDS2019_21

K = Intrinsics(475.0, 470.0, 300.5, 241.0, 640, 480)


def test_mirrored_intrinsics_show_the_mirror_image():
    pts = torch.tensor([[-80.0, 30.0, 500.0], [120.0, -60.0, 800.0]])
    uv = project_t(pts, K.as_tensor())
    uv_m = project_t(pts * torch.tensor(MIRROR_X), K.mirrored().as_tensor())
    torch.testing.assert_close(uv_m[:, 0], K.width - 1 - uv[:, 0])
    torch.testing.assert_close(uv_m[:, 1], uv[:, 1])
    assert K.mirrored().mirrored() == K


def test_with_mirror_t_appends_the_flipped_frames():
    depth = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    centre = torch.tensor([[10.0, 2.0, 400.0], [-5.0, 1.0, 600.0]])
    d2, k2, c2 = with_mirror_t(depth, centre, K)
    assert d2.shape == (4, 3, 4) and k2.shape == (4, 4) and c2.shape == (4, 3)
    torch.testing.assert_close(d2[2:], depth.flip(-1))
    torch.testing.assert_close(k2[2], K.mirrored().as_tensor())
    torch.testing.assert_close(k2[:2], K.as_tensor().expand(2, 4))
    torch.testing.assert_close(c2[2:, 0], -centre[:, 0])
    torch.testing.assert_close(c2[:2], centre)


def test_merge_mirror_pass_unmirrors_and_averages():
    g = torch.Generator().manual_seed(0)
    joints_img = torch.randn(2, 21, 3, generator=g)
    views_img = torch.randn(2, 3, 21, 3, generator=g)
    flip = torch.tensor(MIRROR_X)
    # a mirror pass that saw exactly the mirror image: after un-mirroring, the same joints
    joints = torch.cat([joints_img, joints_img * flip])
    views = torch.cat([views_img, views_img * flip + 1.0])
    idx = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]])
    w = torch.softmax(torch.randn(4, 3, generator=g), -1)
    fused, views2, idx2, w2, passes = merge_mirror_pass(joints, views, idx, w)
    torch.testing.assert_close(fused, joints_img)
    torch.testing.assert_close(passes[:, 1], joints_img)
    torch.testing.assert_close(views2[:, 3:], views_img + flip)
    assert idx2.tolist() == [[0, 1, 2, 6, 7, 8], [3, 4, 5, 9, 10, 11]]
    torch.testing.assert_close(w2.sum(-1), torch.ones(2))


@pytest.fixture(scope="module")
def pipe(checkpoint):
    return VirtualViewPipeline.from_checkpoint(checkpoint, PipelineConfig(
        device="cpu", renderer="torch", track=False, mirror=True))


def test_mirror_run_is_symmetric(pipe, hand_frame):
    """The frame's mirror image gives the mirrored answer: the passes swap roles."""
    f = hand_frame
    centre = f.joints_mm.mean(0)
    a = pipe.run(f.depth_mm, f.intrinsics, centre)
    b = pipe.run(np.ascontiguousarray(f.depth_mm[:, ::-1]), f.intrinsics.mirrored(),
                 centre * np.array(MIRROR_X))
    assert a.valid and b.valid
    assert a.passes_joints_mm.shape == (2, 21, 3)
    np.testing.assert_allclose(a.joints_mm, a.passes_joints_mm.mean(0), atol=1e-3)
    np.testing.assert_allclose(b.joints_mm, a.joints_mm * MIRROR_X, atol=0.05)
    np.testing.assert_allclose(b.passes_joints_mm[::-1], a.passes_joints_mm * MIRROR_X,
                               atol=0.05)
    n = pipe.config.num_views
    assert a.joints_views_mm.shape[0] == len(a.weights) == len(a.selected_views) == 2 * n
    assert abs(float(a.weights.sum()) - 1.0) < 1e-5
    pipe.configure(mirror=False)
    plain = pipe.run(f.depth_mm, f.intrinsics, centre)
    pipe.configure(mirror=True)
    assert plain.passes_joints_mm is None
    np.testing.assert_allclose(plain.joints_mm, a.passes_joints_mm[0], atol=0.05)


def test_mirror_config_is_checked(pipe):
    with pytest.raises(ValueError, match="mirror must be True or False"):
        pipe.configure(mirror="yes")
    with pytest.raises(ValueError, match="no mirror pass"):
        LiteConfig.from_pipeline_config(PipelineConfig(mirror=True))


def test_fit_tries_both_passes_when_their_sides_differ(pipe, hand_frame):
    """Passes of opposite chirality: each is fitted as its side, the better fit wins."""
    f = hand_frame
    truth = np.asarray(f.joints_mm, np.float64)  # a right hand
    wrong = other_side(truth)
    assert side_score(truth, HANDS2019_21) > 0 > side_score(wrong, HANDS2019_21)
    stage = FitStage(FitConfig(iterations=4))
    sides = []
    for passes in ((truth, wrong), (wrong, truth)):
        r = pipe.run(f.depth_mm, f.intrinsics, truth.mean(0))
        r.passes_joints_mm = np.stack(passes).astype(np.float32)
        r.joints_mm = r.passes_joints_mm.mean(0)
        stage.apply(r, f.depth_mm, f.intrinsics)
        sides.append(r.fit.side)
        assert r.fit.fell_back or r.side == r.fit.side  # the published side: the fit's
        error = np.linalg.norm(r.joints_mm - truth, axis=1).mean()
        assert error < 10.0, error  # the right hand's fit, not the mirrored start's
    assert sides == ["right", "right"]
    # a fixed side, or the side a sequence holds, decides which pass is fitted (the
    # right pass would win on the depth, as above)
    for passes in ((truth, wrong), (wrong, truth)):
        r = pipe.run(f.depth_mm, f.intrinsics, truth.mean(0))
        r.passes_joints_mm = np.stack(passes).astype(np.float32)
        r.joints_mm = r.passes_joints_mm.mean(0)
        FitStage(FitConfig(iterations=4, side="left")).apply(r, f.depth_mm, f.intrinsics)
        assert r.fit.side == "left" and r.fit.sides_fitted == ("left",)
    held = FitState(joints_mm=wrong, side="left", scale_estimates=[1.0], side_evidence=-10.0)
    starts = FitStage(FitConfig())._starts(r, held)
    assert [c.side for _, _, c in starts] == ["left"]
    np.testing.assert_allclose(starts[0][0], wrong, atol=1e-3)
    unsure = dataclasses.replace(held, side_evidence=-1.0)  # a sequence not yet sure
    assert {c.side for _, _, c in FitStage(FitConfig())._starts(r, unsure)} == {"left", "right"}
