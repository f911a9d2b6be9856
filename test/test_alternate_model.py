"""An alternate pose model chosen by the fit (FrameFlow.set_alternate, FitStage, load_pipeline)."""

from __future__ import annotations

import numpy as np
import pytest

from vvhand_core.assets import alternate_model_path, default_model_path
from vvhand_core.benchmarks.hands_sheet import (
    rescued_pairs,
    sheet_of_runs,
    write_rescued_sheet,
)
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.fit import FitConfig
from vvhand_core.fit.stage import FitStage
from vvhand_core.hand_pose_result import ESTIMATE_FIELDS, HandPoseResult
from vvhand_core.load import load_pipeline
from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline
from vvhand_core.side import SideConfig
from vvhand_core.skeletons import HANDS2019_21

FIT = FitConfig(iterations=4)
TORCH_CPU = {"device": "cpu", "renderer": "torch", "backend": "torch", "track": False}


@pytest.fixture(scope="module")
def frame():
    return SyntheticHandGenerator(SynthConfig(seed=3)).frame(1)


def estimate(frame, joints_mm: np.ndarray) -> HandPoseResult:
    """A network estimate of ``frame``'s hand: three views that all say ``joints_mm``."""
    views = np.repeat(joints_mm[None], 3, axis=0)
    return HandPoseResult.estimate(frame.joints_mm.mean(0), 250.0, 25, joints_mm, views,
                                   np.arange(3), np.full(3, 1 / 3), np.zeros(25), 1.0,
                                   HANDS2019_21, SideConfig())


def error_mm(joints_mm, frame) -> float:
    return float(np.linalg.norm(np.asarray(joints_mm) - frame.joints_mm, axis=1).mean())


def test_the_fit_keeps_the_estimate_it_explains_better(frame):
    rng = np.random.default_rng(0)
    good = frame.joints_mm + rng.normal(0.0, 3.0, frame.joints_mm.shape)
    bad = frame.joints_mm[::-1] + np.array([0.0, 30.0, 0.0])  # joints swapped, moved 3 cm
    stage = FitStage(FIT)

    alone = estimate(frame, bad)
    stage.apply(alone, frame.depth_mm, frame.intrinsics)
    helped = estimate(frame, bad)
    helped.alternate = estimate(frame, good)
    stage.apply(helped, frame.depth_mm, frame.intrinsics)
    assert helped.alternate_chosen and not alone.alternate_chosen
    np.testing.assert_allclose(helped.network_joints_mm, good, atol=1e-3)  # adopted
    np.testing.assert_allclose(helped.alternate.joints_mm, bad, atol=1e-3)  # its own kept
    assert helped.fit.residual_mm < alone.fit.residual_mm
    assert error_mm(helped.joints_mm, frame) < 10.0 < error_mm(alone.joints_mm, frame)

    kept = estimate(frame, good)
    kept.alternate = estimate(frame, bad)
    plain = estimate(frame, good)
    stage.apply(kept, frame.depth_mm, frame.intrinsics)
    stage.apply(plain, frame.depth_mm, frame.intrinsics)
    assert not kept.alternate_chosen
    np.testing.assert_allclose(kept.joints_mm, plain.joints_mm, atol=1e-4)
    assert kept.fit.residual_mm == pytest.approx(plain.fit.residual_mm, abs=1e-6)


def test_adopt_takes_every_estimate_field_and_keeps_the_hand_s(frame):
    a = estimate(frame, frame.joints_mm)
    b = estimate(frame, frame.joints_mm[::-1] + 5.0)
    b.centre_mm, a.track_id = b.centre_mm + 10.0, 7
    a.adopt(b)
    for name in ESTIMATE_FIELDS:
        assert getattr(a, name) is getattr(b, name), name
    assert a.track_id == 7 and not np.array_equal(a.centre_mm, b.centre_mm)


@pytest.fixture(scope="module")
def pipes():
    main = VirtualViewPipeline.from_checkpoint(default_model_path(),
                                               PipelineConfig(**TORCH_CPU, fit=FIT))
    other = VirtualViewPipeline.from_checkpoint(alternate_model_path("grasp"),
                                                PipelineConfig(**TORCH_CPU))
    return main, other


def test_every_crop_goes_through_the_alternate_networks_too(pipes):
    main, other = pipes
    f = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=7)).frame(17)
    centre = np.asarray(f.meta["hands"][0]["joints_mm"]).mean(0)
    main.set_alternate(None)
    alone = main.run(f.depth_mm, f.intrinsics, centre)
    assert alone.alternate is None and not alone.alternate_chosen
    main.set_alternate(other)
    try:
        assert other.config.fit is None and other.config.num_views == main.config.num_views
        assert other.config.localiser == "geometric"  # it never locates
        r = main.run(f.depth_mm, f.intrinsics, centre)
        by_other = other.run(f.depth_mm, f.intrinsics, centre)
        assert r.alternate_chosen  # this held hand: the grasp model's estimate wins
        np.testing.assert_allclose(r.network_joints_mm, by_other.joints_mm, atol=1e-3)
        np.testing.assert_allclose(r.alternate.joints_mm, alone.network_joints_mm, atol=1e-3)
        assert r.timings_ms["a2j"] > 0.0
        main.configure(num_views=2)  # the alternate follows, still without the fit
        assert other.config.num_views == 2 and other.config.fit is None
        with pytest.raises(ValueError, match="needs the hand-model fit"):
            main.configure(fit=None)
        assert main.config.fit == FIT
    finally:
        main.configure(num_views=3)
        main.set_alternate(None)


def test_a_pipeline_that_cannot_stand_in_is_refused(pipes):
    main, _ = pipes
    with pytest.raises(ValueError, match="another VirtualViewPipeline"):
        main.set_alternate(main)
    with pytest.raises(ValueError, match="another VirtualViewPipeline"):
        main.set_alternate(object())


def test_a_change_the_alternate_refuses_leaves_both_as_they_were(pipes):
    from vvhand_core.checkpoint import load_checkpoint

    main, _ = pipes
    loaded = load_checkpoint(alternate_model_path("grasp"), "cpu")
    no_teacher = VirtualViewPipeline(loaded.a2j, loaded.student, None, loaded.skeleton,
                                     PipelineConfig(**TORCH_CPU))
    main.set_alternate(no_teacher)
    try:
        with pytest.raises(ValueError, match="the alternate model: .*teacher"):
            main.configure(selector="teacher", min_depth_mm=250.0)
        assert (main.config.selector, main.config.min_depth_mm) == ("student", 200.0)
        assert no_teacher.config.selector == "student"
        main.configure(min_depth_mm=250.0)  # a change both take still goes through
        assert no_teacher.config.min_depth_mm == 250.0
    finally:
        main.configure(min_depth_mm=200.0)
        main.set_alternate(None)


def test_load_pipeline_refuses_an_alternate_model_without_the_fit():
    with pytest.raises(ValueError, match="needs the hand-model fit"):
        load_pipeline(default_model_path(), {**TORCH_CPU, "fit": None}, 1,
                      alternate_model_path("grasp"))


def test_a_corrupt_alternate_model_is_named_as_such(tmp_path):
    from vvhand_core.errors import CheckpointError

    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"broken.pt: .*\(alternate_model\)"):
        load_pipeline(default_model_path(), {**TORCH_CPU, "fit": FIT}, 1, str(bad))


def test_alternate_model_names():
    assert alternate_model_path("") == ""
    assert alternate_model_path("grasp").endswith("grasp_model.pt")
    assert alternate_model_path(" /tmp/m.pt ") == "/tmp/m.pt"


def test_hands_the_main_model_misses_are_reported_with_the_grasp_model(pipes, tmp_path):
    """v3 tuning frames (seed 7) whose held hand the default model's fit rejects (residual
    10-17 mm) and the grasp model's explains (under 2 mm): with the alternate reported."""
    from vvhand_core.deployed import DEPLOYED

    main, other = pipes
    gen = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=7))
    main.configure(max_hands=2, fit=DEPLOYED.fit_config())
    frames, alones, boths = [], [], []
    try:
        for i in (17, 109, 123):
            f = gen.frame(i)
            centres = [np.asarray(h["joints_mm"]).mean(0) for h in f.meta["hands"]]

            def reported(out, centres=centres):
                return sum(min(np.linalg.norm(h.joints_mm.mean(0) - c) for c in centres) < 30.0
                           for h in out.hands)

            main.set_alternate(None)
            main.reset_tracking()
            alone = main.run_hands(f.depth_mm, f.intrinsics)
            main.set_alternate(other)
            main.reset_tracking()
            both = main.run_hands(f.depth_mm, f.intrinsics)
            assert any("residual" in d.message for d in alone.dropped), i
            assert reported(both) > reported(alone), i
            assert any(h.alternate_chosen for h in both.hands), i
            frames.append(f), alones.append(alone), boths.append(both)
        # the picture of `vvhand bench hands --sheet`: one pair per rescued hand
        pairs = rescued_pairs(frames, alones, boths)
        assert len(pairs) >= 3
        for lost, found in pairs:
            assert lost.error_mm > found.error_mm and "dropped, residual" in lost.label
        path = write_rescued_sheet(frames, alones, boths, main.skeleton,
                                   tmp_path / "s.png", "tuning")
        assert path.stat().st_size > 10_000
        assert rescued_pairs(frames, alones, alones) == []  # nothing rescued by itself
        runs = {(2, "node"): alones, (2, "alternate"): boths}
        line = sheet_of_runs(frames, runs, main.skeleton, tmp_path / "r.png", "tuning")
        assert line == f"picture: {tmp_path / 'r.png'}"
        assert "needs the variants" in sheet_of_runs(frames, {(2, "node"): alones},
                                                     main.skeleton, tmp_path / "x.png", "t")
    finally:
        main.set_alternate(None)
        main.configure(max_hands=1, fit=FIT)
