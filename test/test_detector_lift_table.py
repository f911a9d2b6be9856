"""Labelled hands lifted from their true image position (``detector.lift``, `vvhand bench
localiser --lift`): the groups by how far a hand lies behind the surface, and the lift of
real v3 frames by the packaged detector."""

from __future__ import annotations

import argparse
import copy

import numpy as np
import pytest
import torch

from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.detector.data import hand_centres_mm, target_row
from vvhand_core.detector.lift import HandLift, lift_hands, lift_rows
from vvhand_core.detector.localiser import DetectorLocaliser, DetectorLocaliserConfig
from vvhand_core.detector.ops import canonical_depth, patch_at


@pytest.fixture(scope="module")
def det():
    torch.set_num_threads(1)
    return DetectorLocaliser(DetectorLocaliserConfig(use_tracking=False))


@pytest.fixture(scope="module")
def frames():
    gen = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=7))
    return [gen.frame(i) for i in range(6)]


def test_rows_group_by_depth_behind_the_surface():
    lifts = [HandLift(None, np.inf, np.nan), HandLift(-5.0, 50.0, 40.0),
             HandLift(10.0, 5.0, 1.0), HandLift(45.0, 10.0, -2.0), HandLift(59.0, 40.0, -35.0),
             HandLift(150.0, 90.0, -80.0), HandLift(250.0, 20.0, -10.0)]
    rows = lift_rows(lifts)
    assert [r[0] for r in rows] == ["no depth at the centre", "< 0 mm (in front)", "0-30 mm",
                                    "30-60 mm", "100-200 mm", ">= 200 mm", "all"]
    by = {r[0]: r[1:] for r in rows}
    assert by["30-60 mm"] == [2, "50.0 %", "-18.5"]
    assert by["no depth at the centre"] == [1, "100.0 %", "-"]
    assert by["all"][:2] == [7, f"{400 / 7:.1f} %"]


def test_lift_of_v3_frames(det, frames):
    """One lift per labelled hand with a target; z_ref is the refiner patch's; hands that
    lie 0-60 mm behind the surface (a hand seen as it is) are lifted within 30 mm."""
    clear = []
    for f in frames:
        lifts = lift_hands(det, f)
        canon, cam = canonical_depth(np.asarray(f.depth_mm), f.intrinsics, det.config.focal_px)
        centres = hand_centres_mm(f)
        assert len(lifts) == len(centres) >= 1
        for c, got in zip(centres, lifts):
            row = target_row(canon, cam, c, det.config, 200.0, 1200.0)
            patch = patch_at(canon, int(round(row[5])), int(round(row[6])), 200.0, 1200.0,
                             det.refine_border)
            assert got.behind_mm == pytest.approx(c[2] - patch[1])
            if 0 <= got.behind_mm < 60:
                clear.append(got.error_mm < 30.0)
    assert len(clear) >= 5 and np.mean(clear) >= 0.8


def test_a_label_behind_its_surface_is_lifted_far_off(det, frames):
    """The same depth with the labelled hand moved 150 mm back along its ray: the hand now
    lies ~150 mm further behind the surface and the lift, unchanged, is far off."""
    f = frames[0]
    moved = copy.deepcopy(f)
    for h in moved.meta["hands"]:
        scale = 1.0 + 150.0 / float(h["center_mm"][2])
        for key in ("center_mm", "joints_mm"):
            if key in h:
                h[key] = (np.asarray(h[key], np.float64) * scale).tolist()
    before, after = lift_hands(det, f), lift_hands(det, moved)
    for a, b in zip(before, after):
        assert b.behind_mm == pytest.approx(a.behind_mm + 150.0, abs=15.0)
        assert b.error_mm > 100.0


def test_bench_lift_table(frames, monkeypatch):
    """`vvhand bench localiser --lift`: a table per detector named in the run."""
    from vvhand_core.benchmarks import localiser as bench

    monkeypatch.setattr(bench, "split_frames", lambda synth, n, free: iter(frames[:2]))
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--frames", "2", "--free-frames", "0", "--splits", "v3",
                              "--tuning", "--lift", "--no-write"])
    sections, _ = bench.measure(args)
    table = next(s for s in sections if s.startswith("Labelled hands lifted"))
    assert "| tuning (v3, seed 7) | packaged | all |" in table
    assert "--lift" in bench.command_line(args)
