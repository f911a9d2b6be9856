"""Every hand of a frame: run_hands of both pipelines (vvhand_core.hands), per-track fit.

Two-hand frames come from test/two_hands.py (two generator hands crossing: depth swap,
then a sideways crossing with one hand in front), localised by the geometric localiser
(deterministic; it follows both hands through this crossing).
"""

from __future__ import annotations

import numpy as np
import pytest
from two_hands import identities, two_hand_sequence

from vvhand_core.assets import default_model_path
from vvhand_core.fit import FitConfig
from vvhand_core.hands import (
    DUPLICATE_CENTRE_MM,
    DUPLICATE_MM,
    HandsResult,
    duplicate_pairs,
    finish_hands,
    one_side_each,
    order_hands,
)
from vvhand_core.lite.pipeline import LitePipeline
from vvhand_core.pipeline import HandPoseResult, PipelineConfig, VirtualViewPipeline

N = 12


@pytest.fixture(scope="module")
def seq():
    return two_hand_sequence(N)


@pytest.fixture(scope="module")
def pipe():
    return VirtualViewPipeline.from_checkpoint(default_model_path(), PipelineConfig(
        device="cpu", renderer="torch", localiser="geometric", max_hands=2))


def _run_sequence(pipe, depth, intr):
    pipe.reset_tracking()
    return [pipe.run_hands(d, intr) for d in depth]


def test_both_hands_keep_their_tracks_through_a_crossing(pipe, seq):
    depth, _, centres, intr = seq
    pipe.configure(max_hands=2, fit=None)
    frames = _run_sequence(pipe, depth, intr)
    owner: dict[int, int] = {}  # track id -> true hand (0 = A, 1 = B)
    for i, fr in enumerate(frames[1:], start=1):
        assert isinstance(fr, HandsResult) and len(fr.hands) == 2, (i, fr.message)
        ids = identities([h.centre_mm for h in fr.hands], centres[i])
        assert sorted(ids) == [0, 1], (i, ids)
        for h, who in zip(fr.hands, ids):
            assert owner.setdefault(h.track_id, who) == who, f"tracks swapped at frame {i}"
        z = [float(h.centre_mm[2]) for h in fr.hands]
        assert z == sorted(z)  # nearest first
        assert fr.valid and fr.message == ""
        # the primary hand: the one locate() follows (A, then B once A is hidden behind it)
        assert any(fr.primary is h for h in fr.hands)
    assert len(owner) == 2
    # the list order flips during the sequence (B comes to the front) while ids stay
    assert identities([frames[1].hands[0].centre_mm], centres[1]) == [0]
    assert identities([frames[-1].hands[0].centre_mm], centres[-1]) == [1]


def test_the_batch_estimates_each_hand_at_its_own_centre(pipe, seq):
    depth, _, _, intr = seq
    pipe.configure(max_hands=2, fit=None, track=False)
    try:
        fr = pipe.run_hands(depth[4], intr)
        assert len(fr.hands) == 2
        for h in fr.hands:
            alone = pipe.run(depth[4], intr, h.centre_mm)
            np.testing.assert_allclose(h.joints_mm, alone.joints_mm, atol=1e-3)
            assert h.selected_views.tolist() == alone.selected_views.tolist()
    finally:
        pipe.configure(track=True)


def test_max_hands_one_is_run_exactly(pipe, seq):
    depth, _, _, intr = seq
    pipe.configure(max_hands=1, fit=FitConfig(iterations=2))
    try:
        pipe.reset_tracking()
        one = [pipe.run_hands(d, intr) for d in depth[:4]]
        pipe.reset_tracking()
        ref = [pipe.run(d, intr) for d in depth[:4]]
        for a, b in zip(one, ref):
            assert len(a.hands) == (1 if b.valid else 0)
            np.testing.assert_array_equal(a.primary.joints_mm, b.joints_mm)
            assert a.primary.track_id is None
    finally:
        pipe.configure(max_hands=2, fit=None)
    with pytest.raises(ValueError, match="max_hands"):
        pipe.configure(max_hands=0)


def test_each_track_has_its_own_fit_sequence(pipe, seq):
    depth, _, centres, intr = seq
    pipe.configure(max_hands=2, fit=FitConfig(iterations=2))
    try:
        frames = _run_sequence(pipe, depth[:4], intr)
        last = frames[-1]
        assert len(last.hands) == 2 and all(h.fit is not None for h in last.hands)
        states = pipe._fit._states
        assert set(states) == {h.track_id for h in last.hands}
        for h in last.hands:  # each state is its own hand's fit, not the other's
            np.testing.assert_allclose(states[h.track_id].joints_mm, h.fit.joints_mm)
        # a frame with one hand only: the other hand's sequence ends
        only_a = two_hand_sequence(N, which=(0,))[0][4]
        one = pipe.run_hands(only_a, intr)
        assert len(one.hands) == 1 and one.hands[0].track_id in states
        assert set(pipe._fit._states) == {one.hands[0].track_id}
    finally:
        pipe.configure(fit=None)


def _result(joints, z, track_id=None):
    centre = np.asarray(joints, np.float32).mean(0)
    centre[2] = z
    r = HandPoseResult(True, "", np.asarray(joints, np.float32), centre,
                       250.0, 25, np.zeros(3, np.int64), np.ones(3, np.float32) / 3,
                       np.zeros(25, np.float32), 1.0)
    r.track_id = track_id
    return r


def test_overlap_rule_drops_a_second_estimate_of_one_hand():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 30, (21, 3)) + [0, 0, 400]
    near = a + DUPLICATE_MM * 0.5  # the same hand, seen from the other crop
    apart = a + [DUPLICATE_MM * 4, 0, 0]  # touching, but a hand of its own
    assert duplicate_pairs([_result(a, 400), _result(near, 420), _result(apart, 380)]) \
        == [(1, 0)]
    # a crop centred on a kept hand's fingers: its estimate is off, its centre is on them
    on_fingers = _result(apart, 400)
    on_fingers.centre_mm = (a[8] + [0, 0, DUPLICATE_CENTRE_MM / 2]).astype(np.float32)
    assert duplicate_pairs([_result(a, 400), on_fingers]) == [(1, 0)]

    def invalid(message, centre=None):
        return HandPoseResult.invalid(message, 21, 25, 250.0, centre)

    results = [_result(a, 400), _result(near, 420), _result(apart, 380)]
    for r, p in zip(results, (0.9, 0.9, 0.7)):
        r.side, r.right_probability = "right", p
    hands, dropped = finish_hands(results, [7, 8, 9], None, None, None, True, invalid, None)
    assert [h.track_id for h in hands] == [9, 7]  # nearest first
    assert [h.side for h in hands] == ["unknown", "right"]  # one side each: 7's is stronger
    assert [d.track_id for d in dropped] == [8] and "same hand" in dropped[0].message
    assert [h.track_id for h in order_hands([_result(a, 400, 3), _result(a, 400, 1)])] == [1, 3]
    # the kept estimate has no track (locate's centre, not locate_all's): it takes the id
    # of the repeat it stands for; one that has an id keeps it
    assert duplicate_pairs([_result(a, 400), _result(apart, 380), _result(near, 420)]) \
        == [(2, 0)]
    results = [_result(a, 400), _result(near, 420), _result(apart, 380)]
    hands, dropped = finish_hands(results, [None, 8, 9], None, None, None, True, invalid, None)
    assert sorted(h.track_id for h in hands) == [8, 9] and dropped[0].track_id == 8
    results = [_result(a, 400), _result(near, 420)]
    hands, _ = finish_hands(results, [4, 8], None, None, None, True, invalid, None)
    assert [h.track_id for h in hands] == [4]


def test_lite_run_hands_matches_the_torch_pipeline(lite_export_dir, seq):
    depth, _, _, intr = seq
    cfg = PipelineConfig(device="cpu", renderer="torch", backend="onnxruntime",
                         localiser="geometric", max_hands=2)
    ref = VirtualViewPipeline.from_onnx(lite_export_dir, cfg)
    lite = LitePipeline.from_onnx(lite_export_dir, cfg)
    assert lite.config.max_hands == 2
    for i in (2, 8):
        a, b = ref.run_hands(depth[i], intr), lite.run_hands(depth[i], intr)
        assert len(a.hands) == len(b.hands) == 2
        for x, y in zip(a.hands, b.hands):
            assert x.track_id == y.track_id
            assert x.selected_views.tolist() == y.selected_views.tolist()
            np.testing.assert_allclose(x.joints_mm, y.joints_mm, atol=0.05)
    lite.configure(max_hands=1)
    lite.reset_tracking()
    one = lite.run_hands(depth[2], intr)
    lite.reset_tracking()
    np.testing.assert_array_equal(one.primary.joints_mm, lite.run(depth[2], intr).joints_mm)


def test_touching_hands_follow_the_overlap_rule(pipe):
    """Hands 70-120 mm apart (touching): no failure, never two estimates of one hand."""
    gaps = (70.0, 85.0, 100.0, 120.0)
    centres = np.array([[[-g / 2, 0.0, 450.0], [g / 2, 0.0, 470.0]] for g in gaps])
    depth, _, _, intr = two_hand_sequence(len(gaps), centres=centres)
    pipe.configure(max_hands=2, fit=FitConfig(iterations=2), track=False)
    try:
        for d in depth:
            fr = pipe.run_hands(d, intr)
            assert 1 <= len(fr.hands) <= 2 and all(h.valid for h in fr.hands)
            if len(fr.hands) == 2:
                a, b = (h.joints_mm.astype(np.float64) for h in fr.hands)
                assert np.linalg.norm(a - b, axis=1).mean() >= DUPLICATE_MM
    finally:
        pipe.configure(fit=None, track=True)


def test_two_hands_never_share_a_side():
    a, b, c = (_result(np.zeros((21, 3)) + [x, 0, 400], 400, t) for x, t in ((0, 1), (200, 2),
                                                                              (400, 3)))
    a.side, a.right_probability = "right", 0.97
    b.side, b.right_probability = "right", 0.85  # weaker: not right any more
    c.side, c.right_probability = "left", 0.2
    one_side_each([a, b, c])
    assert (a.side, b.side, c.side) == ("right", "unknown", "left")
    d, e = (_result(np.zeros((21, 3)) + [x, 0, 400], 400) for x in (0, 200))
    d.side = e.side = "left"
    d.right_probability = e.right_probability = 0.1
    one_side_each([d, e])
    assert (d.side, e.side) == ("left", "unknown")  # equal evidence: the first keeps it


def test_the_hand_run_follows_is_cropped_and_fitted_as_run_does():
    """A person moving one hand (v2 sequence, seed 7: `make demo`'s motion), learned
    detector, fit on: run_hands crops the hand run() follows at run()'s centre and fits it
    in the same sequence, and the hand keeps its id (and so its fit sequence) through the
    frames where locate_all's track of it and locate's centre part. With detector leg 20,
    in frame 17 locate follows the hand at a centre 66 mm from locate_all's track of it (a
    second peak on the same hand): the two estimates are one hand (the overlap rule), the
    one at locate's centre is kept and takes the track's id (hands._pass_track_id). (With
    legs 16-18 locate_all started a new track on the hand in frame 17 instead, and
    LocatedHand kept the id; frames 0-19 are checked. Leg 23 passes too; its frame 17 was
    not looked at again.)"""
    from vvhand_core.data.synthetic.generator import SynthConfig, sample_sequence

    seq = sample_sequence(SynthConfig(seed=7, scene_version=2), 60)
    frames = [next(seq) for _ in range(20)]
    cfg = PipelineConfig(device="cpu", renderer="torch", max_hands=2,
                         fit=FitConfig(iterations=2))
    one = VirtualViewPipeline.from_checkpoint(default_model_path(), cfg)
    every = VirtualViewPipeline.from_checkpoint(default_model_path(), cfg)
    ids = set()
    for i, f in enumerate(frames):
        depth = np.round(f.depth_mm).astype(np.uint16)  # as the demo's bag holds it
        ref = one.run(depth, f.intrinsics)
        got = every.run_hands(depth, f.intrinsics)
        assert ref.valid, i
        d = min(np.linalg.norm(h.centre_mm - ref.centre_mm) for h in got.hands)
        assert d < 1e-3, (i, d)
        (same,) = [h for h in got.hands if np.allclose(h.centre_mm, ref.centre_mm)]
        # a frame with a second crop (a second peak on the hand) in the batch: the
        # networks' float32 sums may differ in the last bits, which the 2-iteration fit and
        # its pull toward the last fit carry to ~5 mm; a fit restarted in a new sequence
        # (the followed hand's id not kept) is 9-14 mm off
        gap = np.linalg.norm(same.joints_mm - ref.joints_mm, axis=1).mean()
        assert gap < 8.0, (i, gap)
        ids.add(same.track_id)
    assert len(ids) == 1, ids  # the followed hand keeps its id (and its fit sequence)


def test_the_detector_network_runs_once_per_frame(seq):
    """locate_all and locate share one detector run per frame (hands._detect_once)."""
    depth, _, _, intr = seq
    pipe = VirtualViewPipeline.from_checkpoint(default_model_path(), PipelineConfig(
        device="cpu", renderer="torch", max_hands=2))
    runner, calls = pipe._localiser.runner, []
    heat = runner.heat
    runner.heat = lambda x: (calls.append(len(x)), heat(x))[1]
    found = [len(pipe.run_hands(d, intr).hands) for d in depth[:3]]
    assert calls == [1, 1, 1] and sum(found) >= 3
    assert "candidates" not in vars(pipe._localiser)  # the method is back afterwards
