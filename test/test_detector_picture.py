"""The localiser's picture (detector.picture) and the answer it draws.

- ``misses.untracked_answer`` is ``locate_all``'s answer without tracking (the centres the
  picture draws and the misses are judged against), on v3 frames with and without hands.
- Frames land in the row their outcomes say (all found / a hand missed / hand-free), at
  most ``per_row`` each; the sheet is a PNG with one panel per kept frame.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.detector.localiser import DetectorLocaliser, DetectorLocaliserConfig
from vvhand_core.detector.misses import untracked_answer
from vvhand_core.detector.picture import ROWS, SheetCollector, write_localiser_sheet

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def v3_frames():
    gen = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=7))
    return [gen.frame(i) for i in range(8)] + [gen.scene(i, hands=False).frame
                                              for i in (307, 0, 1)]


def test_untracked_answer_is_locate_all(v3_frames):
    torch.set_num_threads(1)
    det = DetectorLocaliser(DetectorLocaliserConfig(use_tracking=False, edge_factor=1.0))
    answered = 0
    for f in v3_frames:
        raw, _, answer = untracked_answer(det, f)
        want = det.locate_all(f.depth_mm, f.intrinsics)
        assert len(answer) == len(want)
        for i, h in zip(answer, want):
            np.testing.assert_allclose(raw[i][1], h.centre_mm, atol=1e-9)
        answered += len(answer)
    assert answered >= 8  # the frames' hands and the border phantom of scene 307


def test_sheet_rows_and_file(v3_frames, tmp_path):
    torch.set_num_threads(1)
    det = DetectorLocaliser(DetectorLocaliserConfig(use_tracking=False))
    sheet = SheetCollector(det, per_row=2)
    seen = list(sheet.watch(v3_frames))
    assert len(seen) == len(v3_frames)  # every frame passes through
    kept = [item for items in sheet.rows.values() for item in items]
    assert all(len(items) <= 2 for items in sheet.rows.values())
    assert len(sheet.rows[ROWS[2]]) == 2  # hand-free scenes
    for name, items in sheet.rows.items():
        for item in items:
            labelled = [o for o in item.outcomes if o.labelled]
            if name == ROWS[2]:
                assert not labelled
            else:
                assert labelled and all(o.found for o in labelled) == (name == ROWS[0])
    path = write_localiser_sheet(sheet.rows, tmp_path / "sheet.png", "test")
    assert path.stat().st_size > 10_000 and len(kept) >= 3
    with pytest.raises(ValueError, match="at least one frame"):
        write_localiser_sheet({r: [] for r in ROWS}, tmp_path / "none.png")
