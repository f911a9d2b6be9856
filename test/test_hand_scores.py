"""Scoring every estimated hand against every labelled hand (vvhand_core.hand_scores)."""

from __future__ import annotations

import numpy as np

from vvhand_core.hand_scores import MATCH_MM, score_frame, summarise


def _hand(x_mm, rng, spread=30.0):
    return rng.normal(0, spread, (21, 3)) + [x_mm, 0.0, 500.0]


def test_missed_extra_error_and_sides():
    rng = np.random.default_rng(0)
    left, right = _hand(-150, rng), _hand(150, rng)
    # both found (the right one 5 mm off), in the other order, sides one right one wrong
    s = score_frame([right + 5.0, left], ["left", "left"], [left, right], ["left", "right"])
    assert s.labelled == 2 and s.matched == 2 and s.extra == 0
    assert np.allclose(sorted(s.errors_mm), [0.0, np.sqrt(75.0)])
    assert (s.side_calls, s.side_right) == (2, 1)
    # the second hand missed, a phantom far away, an unknown side
    t = score_frame([left, _hand(600, rng)], ["unknown", "right"], [left, right],
                    ["left", "right"])
    assert (t.matched, t.extra, t.side_calls) == (1, 1, 0)
    # an estimate between the hands, farther than MATCH_MM from both: extra, both missed
    u = score_frame([(left + right) / 2], ["left"], [left, right], ["left", "right"])
    assert (u.matched, u.extra) == (0, 1) and MATCH_MM < 150
    out = summarise([s, t, u])
    assert out["labelled"] == 6 and out["matched"] == 3
    assert out["reported_pct"] == 50.0 and out["extra"] == 2
    assert np.isclose(out["extra_pct"], 100 * 2 / 6)
    assert out["side_right_pct"] == 50.0 and np.isclose(out["side_calls_pct"], 100 * 2 / 3)


def test_side_at_margins_calls_only_confident_agreeing_sides():
    from vvhand_core.hand_scores import side_at_margins

    rng = np.random.default_rng(1)
    hands = [_hand(x, rng) for x in (-300, -100, 100, 300)]
    truth = ["right", "left", "right", "left"]
    logit = np.log(np.array([0.97, 0.85, 0.6, 0.95]) / (1 - np.array([0.97, 0.85, 0.6, 0.95])))
    # confident right (right), right at 0.85 (wrong), right at 0.6 (right), left at 0.95
    # said right although the evidence says left (disagreeing: never called)
    s = score_frame(hands, ["right", "right", "right", "right"], hands, truth,
                    list(logit[:3]) + [-logit[3]])
    assert len(s.sides) == 4
    rows = side_at_margins([s], [0.5, 0.8, 0.9, 0.99])
    assert [r[0] for r in rows] == [0.5, 0.8, 0.9, 0.99]
    assert np.allclose([r[1] for r in rows], [75.0, 50.0, 25.0, 0.0])
    assert np.allclose([r[2] for r in rows[:3]], [200 / 3, 50.0, 100.0])
    assert np.isnan(rows[3][2])
    # without evidence nothing is recorded
    assert score_frame(hands, ["right"] * 4, hands, truth).sides == []
