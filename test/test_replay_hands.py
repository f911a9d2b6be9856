"""Replay scores every hand (issue 27): a bag with every hand labelled (`vvhand synth-bag
--scenes 3 --two-hands`), replayed offline with the shipped model, max_hands 2 and 1."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rosbags")
from vvhand_ros.bag import read_ground_truth, read_ground_truth_hands  # noqa: E402
from vvhand_ros.replay import ReplayConfig, format_report, run_replay  # noqa: E402
from vvhand_ros.synth_bag import held_objects, v3_stills, write_synthetic_bag  # noqa: E402


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("hands") / "bag"
    assert write_synthetic_bag(path, 1, seed=9, scene_version=3, two_hands=True,
                               progress=False) == 1
    return path


def test_bag_labels_every_hand(bag):
    hands = read_ground_truth_hands(bag)
    ((stamp, labelled),) = hands.items()
    assert len(labelled) == 2 and labelled[0].shape == (21, 3)
    assert np.linalg.norm(labelled[0].mean(0) - labelled[1].mean(0)) > 60.0
    np.testing.assert_array_equal(read_ground_truth(bag)[stamp], labelled[0])  # hand 0 as before


def test_demo_two_hand_stills_hold_objects(bag):
    """`make demo`'s two-hand frames (v3, seed 9) include hands that hold things."""
    frames = list(v3_stills(3, seed=9, two_hands=True))
    assert all(f.meta["num_hands"] == 2 for f in frames)
    counts = held_objects(frames)
    assert sum(counts.values()) == 6
    assert sum(n for g, n in counts.items() if g != "none") >= 2
    # the bag's first frame is the first of these stills
    (labelled,) = read_ground_truth_hands(bag).values()
    np.testing.assert_allclose(labelled[0], frames[0].meta["hands"][0]["joints_mm"], atol=1e-3)


def test_replay_scores_both_hands(bag, tmp_path):
    got = {}
    for m in (2, 1):
        report, _, _ = run_replay(ReplayConfig(bag=bag, fit=False, max_hands=m, device="cpu",
                                               out_dir=tmp_path / str(m)), progress=False)
        got[m] = report.hands["two-hand frames"]
        assert len(report.records[0].hands_mm) == got[m]["matched"] + got[m]["extra"]
        assert "every hand, two-hand frames" in format_report(report)
    assert got[2]["labelled"] == got[1]["labelled"] == 2
    assert got[2]["matched"] == 2 and got[2]["extra"] == 0  # both hands found, no phantom
    assert got[1]["matched"] == 1  # max_hands 1: the nearest hand only
