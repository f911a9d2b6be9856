"""Left / right from the joints' chirality (vvhand_core.side)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.side import (
    SideConfig,
    decide_side,
    has_side,
    right_probability,
    side_score,
)
from vvhand_core.skeletons import HANDS2019_21, get_skeleton


@pytest.fixture(scope="module")
def person_frames():
    gen = SyntheticHandGenerator(SynthConfig(scene_version=2, seed=11))
    return [gen.frame(i) for i in range(40)]


def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_ground_truth_joints_tell_the_side(person_frames):
    sides = [f.meta["side"] for f in person_frames]
    assert {"left", "right"} <= set(sides)  # both sides are in the sample
    scores = np.array([side_score(f.joints_mm, HANDS2019_21) for f in person_frames])
    told = np.where(scores > 0, "right", "left")
    assert np.mean(told == np.array(sides)) >= 0.95, list(zip(sides, scores))


def test_a_mirror_image_flips_the_score_and_a_rigid_motion_keeps_it(person_frames):
    rng = np.random.default_rng(0)
    for f in person_frames[:10]:
        j = f.joints_mm.astype(np.float64)
        s = side_score(j, HANDS2019_21)
        mirror = j * np.array([-1.0, 1.0, 1.0])
        assert side_score(mirror, HANDS2019_21) == pytest.approx(-s, abs=1e-9)
        moved = j @ random_rotation(rng).T + rng.normal(scale=300.0, size=3)
        assert side_score(moved, HANDS2019_21) == pytest.approx(s, abs=1e-9)


def test_probability_and_decision():
    cfg = SideConfig(temperature=0.5, margin=0.8)
    assert right_probability(0.0, cfg) == 0.5
    assert right_probability(2.0, cfg) > 0.98 and right_probability(-2.0, cfg) < 0.02
    assert right_probability(1e9, cfg) == pytest.approx(1.0)
    assert right_probability(math.nan, cfg) == 0.5
    assert decide_side(0.9, cfg) == "right" and decide_side(0.1, cfg) == "left"
    assert decide_side(0.7, cfg) == "unknown" and decide_side(0.5, cfg) == "unknown"
    for bad in ({"temperature": 0.0}, {"temperature": math.inf}, {"margin": 0.4},
                {"margin": 1.0}):
        with pytest.raises(ValueError):
            SideConfig(**bad)


def test_degenerate_input_and_skeletons_without_the_joints():
    j = np.zeros((21, 3))
    assert math.isnan(side_score(j, HANDS2019_21))
    j[3, 1] = np.nan
    assert math.isnan(side_score(j, HANDS2019_21))
    nyu = get_skeleton("nyu_14")
    assert has_side(HANDS2019_21) and not has_side(nyu)
    with pytest.raises(ValueError, match="nyu_14"):
        side_score(np.zeros((14, 3)), nyu)


def test_confident_side_is_the_margin_on_the_log_odds():
    from vvhand_core.side import confident_side

    logit = math.log(0.9 / 0.1)
    assert confident_side(logit + 1e-9, 0.9) == "right"
    assert confident_side(-logit - 1e-9, 0.9) == "left"
    assert confident_side(logit - 1e-6, 0.9) is None
    assert confident_side(-logit + 1e-6, 0.9) is None
    assert confident_side(0.1, 0.5) == "right"  # margin 0.5: every sign is a side
