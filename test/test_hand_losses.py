"""Where a labelled hand is lost on its way to the reported hands (vvhand_core.hand_losses)."""

from __future__ import annotations

import numpy as np

from vvhand_core.hand_losses import (
    REPORTED,
    STAGES,
    CandidateTrace,
    count_stages,
    lost_stages,
    why_not_localised,
)


def _hand(x_mm: float, rng) -> np.ndarray:
    return rng.normal(0, 25, (21, 3)) + [x_mm, 0.0, 500.0]


def _trace(lab, fate, net_off=0.0, final_off=0.0, centre_off=0.0):
    c = lab.mean(0) + [centre_off, 0, 0]
    net = None if fate == "empty" else lab + [net_off, 0, 0]
    final = lab + [final_off, 0, 0] if fate == "reported" else None
    return CandidateTrace(c, net, fate, final)


def test_each_stage_is_named_in_pipeline_order():
    rng = np.random.default_rng(0)
    labs = [_hand(x, rng) for x in (-600, -400, -200, 0, 200, 400, 600)]
    traces = [_trace(labs[0], "reported", final_off=10),   # reported
              _trace(labs[1], "empty"),                   # crop empty
              _trace(labs[2], "reported", net_off=80, final_off=80),  # network off
              _trace(labs[3], "duplicate", net_off=20),   # duplicate rule
              _trace(labs[4], "fit limit", net_off=20),   # phantom limit
              _trace(labs[5], "reported", net_off=20, final_off=70)]  # fit moved it away
    # labs[6]: no candidate
    out = lost_stages(labs, traces, lambda c: "localiser: no detector peak")
    assert out == [REPORTED, "crop empty", "network estimate > 60 mm off", "duplicate rule",
                   "fit limit", "fit moved > 60 mm", "localiser: no detector peak"]
    counts = count_stages([out])
    assert sum(counts.values()) == 7 and counts[REPORTED] == 1
    assert list(counts)[:-1] == list(STAGES)


def test_a_hand_reported_through_another_candidate_is_reported():
    rng = np.random.default_rng(1)
    lab = _hand(0, rng)
    # the candidate within 30 mm is dropped, a second one 45 mm off lands its estimate
    traces = [_trace(lab, "duplicate", centre_off=5), _trace(lab, "reported", centre_off=45,
                                                             final_off=40)]
    assert lost_stages([lab], traces) == [REPORTED]


def test_one_estimate_matches_one_hand():
    rng = np.random.default_rng(2)
    a = _hand(0, rng)
    b = a + [50.0, 0, 0]  # two labelled hands 50 mm apart, one estimate between them
    est = CandidateTrace(a.mean(0) + [10, 0, 0], a + [10, 0, 0], "reported", a + [10, 0, 0])
    out = lost_stages([a, b], [est, CandidateTrace(b.mean(0), b, "fit limit")])
    assert out == [REPORTED, "fit limit"]
    out = lost_stages([a, b], [est, CandidateTrace(b.mean(0) + [25, 0, 0], b, "reported",
                                                   b + [200, 0, 0])])
    assert out == [REPORTED, "fit moved > 60 mm"]


def test_why_not_localised_blames_the_rule_that_cut_the_peak():
    from vvhand_core.detector.localiser import DetectorLocaliserConfig

    cfg = DetectorLocaliserConfig(threshold=0.4, relative_threshold=0.5, max_hands=2)
    hand = np.array([0.0, 0.0, 500.0])
    far = [(0.9, np.array([300.0, 0, 500])), (0.8, np.array([-300.0, 0, 500]))]
    assert why_not_localised(hand, far, cfg) == STAGES[0]
    assert why_not_localised(hand, [*far, (0.2, hand + 10)], cfg) == STAGES[1]
    # 0.42 >= threshold but < 0.5 x 0.9: the relative threshold
    assert why_not_localised(hand, [far[0], (0.42, hand + 10)], cfg) == STAGES[2]
    # strong enough, third in score: max_hands
    assert why_not_localised(hand, [*far, (0.7, hand + 10)], cfg) == STAGES[3]


def test_the_trace_agrees_with_the_pipeline_and_the_score():
    """On v3 test frames with the node's pipeline: traces' reported = the HandsResult's."""
    from vvhand_core.assets import default_model_path
    from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
    from vvhand_core.hand_losses import trace_run_hands
    from vvhand_core.hand_scores import score_frame
    from vvhand_core.load import load_pipeline
    from vvhand_ros.bench_hands import node_default_options

    pipe = load_pipeline(str(default_model_path()), node_default_options(2), 1)
    gen = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=9))
    for i in range(4):
        f = gen.frame(i)
        pipe.reset_tracking()
        plain = pipe.run_hands(f.depth_mm, f.intrinsics)
        pipe.reset_tracking()
        out, traces = trace_run_hands(pipe, f.depth_mm, f.intrinsics)
        assert "_estimate_at" not in vars(pipe)
        shown = [t.final_joints_mm for t in traces if t.fate == "reported"]
        assert len(shown) == len(out.hands) == len(plain.hands)
        for h in out.hands:
            assert sum(np.allclose(a, h.joints_mm) for a in shown) == 1
        for a, b in zip(out.hands, plain.hands, strict=True):
            assert np.allclose(a.joints_mm, b.joints_mm, atol=1e-3)
        labs = [np.asarray(h["joints_mm"]) for h in f.meta["hands"]]
        stages = lost_stages(labs, traces)
        score = score_frame([h.joints_mm for h in out.hands], [h.side for h in out.hands],
                            labs, [h.get("side") for h in f.meta["hands"]])
        assert stages.count(REPORTED) == score.matched


def test_a_candidate_off_by_more_than_30_mm_whose_estimate_lands_is_followed():
    rng = np.random.default_rng(3)
    lab, other = _hand(0, rng), _hand(400, rng)
    # the crop centre 45 mm off (not found within 30 mm), its estimate 20 mm off, then
    # dropped by the fit: the fit limit lost it, not the localiser
    near = _trace(lab, "fit limit", net_off=20, centre_off=45)
    assert lost_stages([lab], [near], lambda c: STAGES[0]) == ["fit limit"]
    # an estimate 70 mm off does not count: the localiser lost it
    wide = _trace(lab, "fit limit", net_off=70, centre_off=45)
    assert lost_stages([lab], [wide], lambda c: STAGES[0]) == [STAGES[0]]
    # a candidate already matched to another hand within 30 mm is not taken
    taken = _trace(other, "reported", final_off=5)
    assert lost_stages([lab, other], [taken], lambda c: STAGES[0]) == [STAGES[0], REPORTED]


def test_the_residual_sweep_drops_hands_above_each_limit():
    from types import SimpleNamespace as NS

    from vvhand_ros.bench_hands import node_default_options, sweep_rows

    assert node_default_options(2, "node", 0.008)["fit"].max_residual_mm == 8.0
    assert node_default_options(2, "no-limit", 0.008)["fit"].max_residual_mm == 0.0
    assert node_default_options(2, "mirror")["mirror"] is True
    assert node_default_options(2, "node")["mirror"] is False
    rng = np.random.default_rng(4)
    a, b = _hand(-200, rng), _hand(200, rng)

    def est(joints, residual_mm):
        return NS(joints_mm=joints, side="left", fit=NS(residual_mm=residual_mm))
    frames = [NS(meta={"hands": [{"joints_mm": a}, {"joints_mm": b}]}),
              NS(meta={"hands": [{"joints_mm": a}]})]
    kept = [[est(a, 3.0), est(b, 7.0)], [est(a, 4.0), est(b, 9.0)]]  # frame 2: b a phantom
    free = [[est(a, 6.0)], []]
    rows = sweep_rows([0.005, 0.008, 0.01], kept, frames, [2, 1], free)
    assert [r[:3] + r[4:6] + r[7:-1] for r in rows] == [
        ["0.005", 50.0, "0 (0.00 %)", 100.0, "0 (0.00 %)", "0 / 2"],
        ["0.008", 100.0, "0 (0.00 %)", 100.0, "0 (0.00 %)", "1 / 2"],
        ["0.01", 100.0, "0 (0.00 %)", 100.0, "1 (100.00 %)", "1 / 2"]]
    assert rows[0][3] == 0.0 and rows[0][6] == 0.0  # the labelled joints themselves
    assert [r[-1] for r in rows] == ["1, 0.00 mm", "0", "0"]
