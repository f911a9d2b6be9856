"""How the detector scores a detection: its heat-map peak, times ``edge_factor`` where the
centre lies within ``edge_margin_px`` canonical pixels of the image border
(``DetectorLocaliserConfig``), checked on a fixed hand-free v3 scene whose one detection
is an object cut by the border."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.detector.localiser import DetectorLocaliser, DetectorLocaliserConfig
from vvhand_core.detector.ops import canonical_camera


@pytest.fixture(scope="module")
def det():
    torch.set_num_threads(1)
    return DetectorLocaliser(DetectorLocaliserConfig(use_tracking=False, edge_factor=1.0))


def test_centres_near_the_border_score_less(det):
    """Hand-free v3 tuning scene 108 (seed 7): its one strong detection lies at the
    image's border: 0.8 x its peak by default, under the 0.4 threshold. Detections
    inside the image (frame 0's hands) keep their peak. (The scene is one where the
    packaged weights report that phantom without the rule: 53 before leg 14 and with leg
    16, 307 with legs 14 and 18, 108 with legs 20 and 23; with leg 20 also 535 and 628 of
    scenes 0..699, with leg 23 no other.)"""
    gen = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=7))
    free, hands = gen.scene(108, hands=False).frame, gen.frame(0)
    edged = DetectorLocaliser(replace(det.cfg, edge_factor=0.8, edge_margin_px=16.0))
    near = inside = 0
    for f in (free, hands):
        plain = det.candidates(f.depth_mm, f.intrinsics, 0.05)
        got = edged.candidates(f.depth_mm, f.intrinsics, 0.05)
        assert [s for s, _ in got] == sorted((s for s, _ in got), reverse=True)
        cam = canonical_camera(f.intrinsics, det.config.focal_px)
        for (s, c), (s2, c2) in zip(sorted(plain, key=lambda x: x[1][0]),
                                    sorted(got, key=lambda x: x[1][0]), strict=True):
            np.testing.assert_array_equal(c, c2)  # the same centres, only the scores change
            u, v = c[0] / c[2] * cam.fx + cam.cx, c[1] / c[2] * cam.fy + cam.cy
            edge = min(u, v, cam.width - 1 - u, cam.height - 1 - v) < 16.0
            near, inside = near + edge, inside + (not edge)
            assert s2 == pytest.approx(s * (0.8 if edge else 1.0))
    assert near >= 1 and inside >= 1  # both kinds of detections were compared
    assert det.locate_all(free.depth_mm, free.intrinsics) != []  # a phantom without the rule
    assert edged.locate_all(free.depth_mm, free.intrinsics) == []
    assert DetectorLocaliserConfig().edge_factor == 0.8  # the rule is on by default


@pytest.mark.parametrize("bad", [dict(edge_factor=1.5), dict(edge_factor=-0.1),
                                 dict(edge_margin_px=-1.0)])
def test_edge_settings_are_checked(bad):
    with pytest.raises(ValueError, match="edge_"):
        DetectorLocaliserConfig(**bad)
