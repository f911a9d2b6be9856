"""The hand-model fit as a pipeline stage (PipelineConfig.fit, vvhand_core.fit.stage)."""

from __future__ import annotations

import numpy as np
import pytest

from vvhand_core.assets import default_model_path
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.data.synthetic.hand_model import LIMITS_DEG
from vvhand_core.fit import FitConfig
from vvhand_core.fit.stage import ANGLE_NAMES, FitStage, check_fit_skeleton
from vvhand_core.models import ModelConfig, build_models
from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline
from vvhand_core.skeletons import HANDS2019_21, NYU_14

FIT = FitConfig(iterations=4)


@pytest.fixture(scope="module")
def frames():
    gen = SyntheticHandGenerator(SynthConfig(seed=3))
    return [gen.frame(i) for i in range(3)]


@pytest.fixture(scope="module")
def pipe():
    return VirtualViewPipeline.from_checkpoint(default_model_path(), PipelineConfig(
        device="cpu", renderer="torch", track=False))


def run(pipe, frame, **changes):
    pipe.configure(**changes)
    pipe.reset_tracking()
    return pipe.run(frame.depth_mm, frame.intrinsics, frame.joints_mm.mean(0))


def test_fit_replaces_the_joints_and_keeps_the_network_s(pipe, frames):
    f = frames[0]
    plain = run(pipe, f, fit=None)
    fitted = run(pipe, f, fit=FIT)
    assert plain.fit is None and plain.network_joints_mm is None
    assert plain.timings_ms["fit"] == 0.0 and fitted.timings_ms["fit"] > 0.0
    np.testing.assert_array_equal(fitted.network_joints_mm, plain.joints_mm)
    np.testing.assert_array_equal(fitted.joints_mm, fitted.fit.joints_mm)
    if fitted.fit.fallback:
        np.testing.assert_allclose(fitted.joints_mm, plain.joints_mm, atol=1e-3)
    else:
        assert np.abs(fitted.joints_mm - plain.joints_mm).max() > 0.1
    angles = fitted.fit.angles_deg
    assert angles.shape == (len(ANGLE_NAMES),)
    assert (angles >= LIMITS_DEG[:, 0] - 1e-6).all() and (angles <= LIMITS_DEG[:, 1] + 1e-6).all()
    assert np.isfinite(fitted.fit.residual_mm) and fitted.fit.residual_mm >= 0


def test_sequence_state_follows_tracking(pipe, frames):
    depth = np.stack([frames[0].depth_mm] * 3)
    centres = np.stack([frames[0].joints_mm.mean(0)] * 3)
    pipe.configure(fit=FIT, track=True)
    pipe.reset_tracking()
    seq = pipe.run_batch(depth, frames[0].intrinsics, centres)
    assert [len(r.fit.state.scale_estimates) for r in seq] == [1, 2, 3]
    pipe.reset_tracking()
    again = pipe.run_batch(depth[:1], frames[0].intrinsics, centres[:1])
    assert len(again[0].fit.state.scale_estimates) == 1
    pipe.configure(track=False)
    alone = pipe.run_batch(depth, frames[0].intrinsics, centres)
    assert [len(r.fit.state.scale_estimates) for r in alone] == [1, 1, 1]


def test_a_lost_hand_or_a_jump_ends_the_sequence(pipe, frames):
    f = frames[1]
    stage = FitStage(FIT, jump_mm=60.0)

    def fitted(shift_mm=0.0):
        r = run(pipe, f, fit=None)
        r.joints_mm = r.joints_mm + np.float32(shift_mm)
        stage.apply(r, f.depth_mm, f.intrinsics, sequence=True)
        return len(r.fit.state.scale_estimates)

    assert [fitted(), fitted()] == [1, 2]
    lost = run(pipe, f, fit=None)
    lost.valid = False
    stage.apply(lost, f.depth_mm, f.intrinsics, sequence=True)
    assert lost.fit is None
    assert fitted() == 1
    assert fitted(shift_mm=200.0) == 1  # the hand jumped: no pull toward the old fit


def test_fit_needs_the_21_joint_skeleton(pipe):
    check_fit_skeleton(HANDS2019_21)
    mcfg = ModelConfig.small(NYU_14.num_joints, "resnet18", 0.125, 25)
    nyu = VirtualViewPipeline(*build_models(mcfg, NYU_14), NYU_14,
                              PipelineConfig(device="cpu", renderer="torch"), 25)
    with pytest.raises(ValueError, match="hands2019_21"):
        nyu.configure(fit=FitConfig())
    assert nyu.config.fit is None
    before = pipe.config.fit
    with pytest.raises(ValueError, match="FitConfig"):
        pipe.configure(fit=True)
    assert pipe.config.fit is before


def test_a_fit_residual_above_the_limit_is_no_hand_and_no_track(pipe, frames):
    """FitConfig.max_residual_mm: the frame is reported as no hand, the tracks end."""
    f = frames[0]
    depth, intr = np.stack([f.depth_mm] * 2), f.intrinsics
    pipe.configure(fit=FIT, track=True, localiser="geometric")
    pipe.reset_tracking()
    kept = pipe.run_batch(depth, intr)  # localised: the localiser tracks the hand
    assert all(r.valid for r in kept) and pipe._localiser.prior is not None
    residual = kept[0].fit.residual_mm
    assert len(kept[1].fit.state.scale_estimates) == 2  # one sequence
    pipe.configure(fit=FitConfig(iterations=4, max_residual_mm=residual / 2))
    pipe.reset_tracking()
    dropped = pipe.run_batch(depth, intr)
    assert not any(r.valid for r in dropped)
    message = dropped[0].message
    assert "not taken for a hand" in message and f"{residual:.1f} mm" in message
    assert dropped[0].fit is not None and dropped[0].fit.residual_mm > residual / 2  # kept
    assert len(dropped[1].fit.state.scale_estimates) == 1  # the fit's sequence ended too
    assert pipe._localiser.prior is None  # the next frame is searched from scratch
    pipe.configure(fit=FitConfig(iterations=4, max_residual_mm=residual * 10))
    pipe.reset_tracking()
    assert all(r.valid for r in pipe.run_batch(depth, intr))
    pipe.configure(track=False, localiser="detector", fit=None)
    with pytest.raises(ValueError, match="max_residual_mm"):
        FitConfig(max_residual_mm=-1.0)
