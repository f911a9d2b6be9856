"""Contact sheet: worst / median / best selection and a drawn picture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vvhand_core.contact_sheet import Panel, pick_worst_median_best, write_contact_sheet
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.skeletons import HANDS2019_21


def test_pick_worst_median_best():
    e = np.array([5.0, 50.0, np.nan, 20.0, 1.0, 30.0, 10.0, 40.0])
    rows = pick_worst_median_best(e, 2)
    assert rows[0] == [1, 7] and rows[2] == [0, 4]  # worst two, best two
    assert len(rows[1]) == 2 and set(rows[1]) <= {5, 3, 6}
    assert pick_worst_median_best(np.array([3.0, 1.0, 2.0]), 2) == [[0, 2], [1]]
    assert pick_worst_median_best(np.array([np.nan]), 2) == []


def test_sheet_draws_the_skeleton_over_the_depth(tmp_path):
    gen = SyntheticHandGenerator(SynthConfig(scene_version=2, seed=5))
    frames = [gen.frame(i) for i in range(3)]
    rng = np.random.default_rng(0)
    panels = [Panel(f.depth_mm, f.intrinsics, f.joints_mm + rng.normal(0, 5 * (k + 1),
                                                                       (21, 3)),
                    f.joints_mm, f"#{k}") for k, f in enumerate(frames)]
    assert panels[2].error_mm > panels[0].error_mm > 0
    path = write_contact_sheet(panels, HANDS2019_21, tmp_path / "s.png", "t", per_row=1)
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    # the thumb is drawn in its own colour: some pixels are strongly coloured
    sat = img.max(axis=-1) - img.min(axis=-1)
    assert (sat > 100).sum() > 200
    with pytest.raises(ValueError):
        write_contact_sheet([], HANDS2019_21, tmp_path / "e.png")
