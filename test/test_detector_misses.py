"""Why a hand was missed (``detector.misses``, `vvhand bench localiser --misses`): each
cause from fixed detections, the conditions of a hand, and the diagnosis's answer equal
to ``locate_all``'s on fixed v3 frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vvhand_core.camera import Intrinsics
from vvhand_core.data.base import DepthFrame
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.detector.evaluate_hands import score_frame
from vvhand_core.detector.localiser import DetectorLocaliser, DetectorLocaliserConfig
from vvhand_core.detector.misses import CAUSES, CONDITIONS, diagnose_frame, miss_rows
from vvhand_core.skeletons import HANDS2019_21

INTR = Intrinsics(100, 100, 32, 24, 64, 48)


class FixedDetections:
    """Stands in for the network only: ``candidates`` returns the detections given."""

    def __init__(self, found, **cfg) -> None:
        self.cfg = DetectorLocaliserConfig(use_tracking=False, runtime="torch", **cfg)
        self.found = [(s, np.asarray(c, np.float64)) for s, c in found]

    def candidates(self, depth_mm, intr, threshold):
        return [(s, c) for s, c in self.found if s >= threshold]


def _frame(centres, depth_value=500.0, visibility=None):
    joints = [np.tile(np.asarray(c, np.float64), (21, 1)) for c in centres]
    hands = [{"center_mm": list(c), "joints_mm": j.tolist(), "grasp": "power",
              "visibility": visibility or ["visible"] * 21} for c, j in zip(centres, joints)]
    depth = np.full((48, 64), depth_value, np.float32)
    return DepthFrame(depth, INTR, joints[0], HANDS2019_21,
                      {"hands": hands, "placement": "overhead"})


HAND = [0.0, 0.0, 500.0]


@pytest.mark.parametrize("found, cause", [
    ([(0.9, HAND)], None),
    ([(0.3, HAND)], "dropped: below threshold"),
    ([(0.9, [0.0, 0.0, 560.0])], "depth off"),  # on the hand's ray, 60 mm behind it
    ([(0.9, [45.0, 0.0, 500.0])], "placed 30-60 mm off"),
    ([(0.9, [300.0, 0.0, 500.0])], "no peak"),
    ([], "no peak"),
    ([(0.9, [300.0, 0, 500]), (0.42, HAND)], "dropped: below relative"),
    ([(0.9, [40.0, 0, 500]), (0.8, [5.0, 0, 500])], "dropped: duplicate"),
])
def test_each_cause_from_fixed_detections(found, cause):
    out = diagnose_frame(FixedDetections(found), _frame([HAND]))
    assert len(out) == 1 and out[0].found == (cause is None) and out[0].cause == cause
    assert out[0].placement == "overhead" and out[0].grasp == "power"


def test_two_hands_one_peak_and_max_hands():
    other = [50.0, 0.0, 500.0]
    out = diagnose_frame(FixedDetections([(0.9, [45.0, 0, 500])]), _frame([HAND, other]))
    assert [o.cause for o in out] == ["taken by the other hand", None]
    assert [o.condition for o in out] == ["near the other hand"] * 2
    far = [300.0, 0.0, 500.0]
    det = FixedDetections([(0.9, far), (0.8, HAND)], max_hands=1)
    out = diagnose_frame(det, _frame([HAND, far]))
    assert [o.cause for o in out] == ["dropped: max_hands", None]


def test_conditions():
    det = FixedDetections([])
    assert diagnose_frame(det, _frame([HAND]))[0].condition == "clear"
    assert diagnose_frame(det, _frame([[-500.0, 0, 500]]))[0].condition == "cut by image edge"
    assert diagnose_frame(det, _frame([HAND], 0.0))[0].condition == "little depth on the hand"
    hidden = ["object"] * 15 + ["visible"] * 6
    assert diagnose_frame(det, _frame([HAND], visibility=hidden))[0].condition == \
        "hidden by object"
    behind = ["other"] * 11 + ["visible"] * 10
    assert diagnose_frame(det, _frame([HAND], visibility=behind))[0].condition == \
        "hidden by arm or other hand"
    assert diagnose_frame(det, _frame([HAND], visibility=behind[1:] + ["visible"])
                          )[0].condition == "clear"  # 10 of 21: under half
    cut = ["outside"] * 6 + ["visible"] * 15
    assert diagnose_frame(det, _frame([HAND], visibility=cut))[0].condition == \
        "cut by image edge"


def test_miss_rows_count_every_cause():
    out = [*diagnose_frame(FixedDetections([(0.3, HAND)]), _frame([HAND])),
           *diagnose_frame(FixedDetections([(0.9, HAND)]), _frame([HAND]))]
    rows = miss_rows(out, "condition")
    assert rows[-1][:4] == ["all", 2, "50.0 %", 1]
    assert rows[-1][4:] == [int(c == "dropped: below threshold") for c in CAUSES]
    assert [r[0] for r in rows[:-1]] == ["clear"] and set(CONDITIONS) >= {"clear"}


def test_diagnosis_answer_is_locate_alls_on_v3_frames():
    """The diagnosis rebuilds locate_all's answer: the same hands found, frame by frame."""
    torch.set_num_threads(1)
    det = DetectorLocaliser(DetectorLocaliserConfig(use_tracking=False))
    gen = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=7))
    found, missed = 0, 0
    for i in range(12):
        f = gen.frame(i)
        want = score_frame([h.centre_mm for h in det.locate_all(f.depth_mm, f.intrinsics)], f)
        got = diagnose_frame(det, f)
        assert [o.found for o in got] == want.found
        assert all((o.cause is None) == o.found and o.cause in (None, *CAUSES) for o in got)
        found += sum(want.found)
        missed += len(want.found) - sum(want.found)
    assert found > 0 and missed > 0  # both kinds of hands were compared
