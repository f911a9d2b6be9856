"""Hands centred outside the image (``detector.offimage``): their training targets (heat
point at the border, refiner offsets to the true centre), the examples cache brought up
to date, and their outcomes in ``detector.misses``."""

from __future__ import annotations

import numpy as np
import pytest

from vvhand_core.camera import Intrinsics
from vvhand_core.data.base import DepthFrame
from vvhand_core.detector.data import (
    Examples,
    TrainingCrops,
    _example,
    build_examples,
)
from vvhand_core.detector.examples_file import load_examples, save_examples
from vvhand_core.detector.localiser import DetectorLocaliserConfig
from vvhand_core.detector.net import DetectorConfig
from vvhand_core.detector.offimage import (
    frame_offimage_hands,
    heat_point,
    reaches_in,
    spec_hands,
    unlabelled_hands,
)
from vvhand_core.detector.refine import UV_SCALE_PX, refiner_sample
from vvhand_core.skeletons import HANDS2019_21

# fx = 120 = the canonical focal length: the canonical image is the frame itself
INTR = Intrinsics(120, 120, 31.5, 23.5, 64, 48)
CFG = DetectorConfig(width=2)
# a v3 frame (424 x 240, third person) whose second hand is centred below the image and
# reaches into it
V3 = {"scene_version": 3, "seed": 22}


def _edge_frame():
    """Hand 0 inside; a second hand's palm (a 500 mm slab) on the right border, its centre
    (the ``outside`` one) 10 px beyond it."""
    depth = np.full((48, 64), 900.0, np.float32)
    depth[16:32, 52:] = 500.0
    joints = np.tile([0.0, 0.0, 700.0], (21, 1))
    frame = DepthFrame(depth, INTR, joints, HANDS2019_21,
                       {"hands": [{"center_mm": [0.0, 0.0, 700.0]}]})
    u_out = 63 + 10.0
    centre = np.array([(u_out - INTR.cx) / 120 * 520, 0.0, 520.0])
    return frame, centre


def test_a_hand_centred_outside_gets_its_centre_and_a_heat_point_at_the_border():
    frame, centre = _edge_frame()
    _, _, hands = _example(frame, CFG, 200.0, 1200.0, [centre])
    u, v, dz, sigma, present, hu, hv = hands[1]
    assert present == 1.0 and u == pytest.approx(73.0, abs=1e-3)  # the true centre, outside
    assert (hu, hv) == pytest.approx((61.0, 23.5), abs=1e-3)  # clamped, 2 px inside
    assert dz == pytest.approx((520.0 - 500.0) / 100.0, abs=1e-4)  # from the slab's surface
    assert heat_point(73.0, -5.0, 64, 48) == (61.0, 2.0)
    assert heat_point(30.0, 20.0, 64, 48) == (30.0, 20.0)


def test_crops_and_heat_map_target_a_hand_centred_outside():
    frame, centre = _edge_frame()
    _, _, hands = _example(frame, CFG, 200.0, 1200.0, [centre])
    hands[0] = 0  # only the hand outside
    depth = np.zeros((1, 48, 96), np.uint16)  # zero-padded as examples of several sizes are
    depth[0, :, :64] = frame.depth_mm
    ex = Examples(depth, np.array([500.0], np.float32), hands[None])
    crops = TrainingCrops(ex, (32, 32), p_hand=1.0, margin=4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        b = crops.batch(rng, 1)
        heat, dz = b["heat"][0], b["dz"][0]
        assert heat.max() == 1.0  # the crop holds the heat point, the map its peak
        i, j = np.unravel_index(np.argmax(heat), heat.shape)
        assert dz[i, j] == pytest.approx(0.2, abs=1e-4)
        assert b["input"][0, 0, :, 4 * j].any()  # the peak's column is in the image


def test_refiner_samples_lead_from_the_border_to_the_centre_outside():
    frame, centre = _edge_frame()
    _, _, hands = _example(frame, CFG, 200.0, 1200.0, [centre])
    rng = np.random.default_rng(1)
    for _ in range(20):
        got = refiner_sample(frame.depth_mm, hands[1], CFG, rng, jitter_px=4.0)
        assert got is not None
        _, (du, dv, _), (u0, v0), (u, v) = got
        assert min(abs(u0 - 61), abs(u0 - 2)) <= 4.5 and abs(v0 - 23.5) <= 4.5  # heat point
        assert not 0 <= u <= 63  # the target outside (either side when mirrored)
        assert u0 + du * UV_SCALE_PX == pytest.approx(u) and v0 + dv * UV_SCALE_PX == (
            pytest.approx(v))


def test_reach_rule():
    intr = Intrinsics(120, 120, 31.5, 23.5, 64, 48)
    joints = np.tile([0.0, 0.0, 500.0], (21, 1))
    joints[:, 0] = np.linspace(-20.0, 160.0, 21)  # the hand's left part in the image
    just_out = np.array([(70.0 - 31.5) / 120 * 500, 0.0, 500.0])  # 7 px = 29 mm outside
    assert reaches_in(just_out, joints, intr)
    far = np.array([(200.0 - 31.5) / 120 * 500, 0.0, 500.0])  # 137 px = 570 mm outside
    assert not reaches_in(far, joints, intr)
    joints[:, 0] = 200.0  # no joint in the image
    assert not reaches_in(just_out, joints, intr)


def _surface(ex):
    from vvhand_core.detector.net import surface_depth_mm

    row = ex.hands[0, 1]
    return surface_depth_mm(ex.depth[0].astype(np.float32), row[5], row[6], CFG, 200.0, 1200.0)


def test_v3_frame_examples_hold_the_unlabelled_hand_and_old_caches_get_it(tmp_path):
    (centre, _), = unlabelled_hands(spec_hands(V3, 0))
    ex = build_examples([(V3, 1)], CFG, workers=1)
    row = ex.hands[0, 1]
    # canonical image 152 x 86: the centre below it, the heat point 2 px above its bottom
    assert row[4] == 1.0 and row[1] > 85 and row[6] == 83.0 and row[5] == row[0]
    assert np.isfinite(row[2]) and centre[2] == pytest.approx(row[2] * 100 + _surface(ex), 1.0)
    # an examples file written before these targets: five columns, no "targets" in its key
    old = ex.hands[:, :, :5].copy()
    old[0, 1] = 0
    path = tmp_path / "old.npz"
    save_examples(path, Examples(ex.depth, ex.near_mm, old), [(V3, 1)], CFG)
    with np.load(path) as z:
        key = str(z["key"]).replace(', "targets": 2', "")
        np.savez(path, depth=z["depth"], near_mm=z["near_mm"], hands=old, key=np.array(key))
    got = load_examples(path, [(V3, 1)], CFG)
    np.testing.assert_allclose(got.hands, ex.hands, rtol=1e-5, atol=1e-3)


def test_misses_score_the_unlabelled_hand_apart_from_the_labelled_ones():
    from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
    from vvhand_core.detector.misses import OFF_IMAGE, diagnose_frame, miss_rows

    frame = SyntheticHandGenerator(SynthConfig.from_dict(V3)).frame(0)
    (centre,) = frame_offimage_hands(frame)
    assert centre[1] / centre[2] * frame.intrinsics.fy + frame.intrinsics.cy > 240  # below

    class Fixed:  # stands in for the network: the two hands' centres, found exactly
        cfg = DetectorLocaliserConfig(use_tracking=False, runtime="torch")

        def candidates(self, depth_mm, intr, threshold):
            return [(0.9, np.asarray(frame.meta["hands"][0]["center_mm"])), (0.8, centre)]

    out = diagnose_frame(Fixed(), frame)
    assert [o.labelled for o in out] == [True, False] and all(o.found for o in out)
    assert out[1].condition == OFF_IMAGE
    rows = {r[0]: r for r in miss_rows(out, "condition")}
    assert rows["all"][1] == 1 and rows[OFF_IMAGE][1:3] == [1, "100.0 %"]
    assert miss_rows(out, "placement")[-1][1] == 1
    # scoring: a candidate on the hand outside is neither a found hand nor a phantom
    from vvhand_core.detector.evaluate_hands import score_frame

    first = np.asarray(frame.meta["hands"][0]["center_mm"])
    got = score_frame([first, centre + [0.0, 0.0, 40.0]], frame)
    assert got.found == [True] and got.extra == 0
    assert score_frame([first, centre + [0.0, 0.0, 200.0]], frame).extra == 1
    # a frame of another split's settings: its scene cannot be drawn again, so none
    other = DepthFrame(frame.depth_mm, frame.intrinsics, frame.joints_mm, HANDS2019_21,
                       {**frame.meta, "center_mm": [0.0, 0.0, 1.0]})
    assert frame_offimage_hands(other) == []


def test_train_command_reuses_an_old_cache_with_nothing_to_render(tmp_path):
    """`detector train --examples-from OLD` where OLD (written before the off-image
    targets) holds every source: nothing rendered, its v3 rows brought up to date."""
    import argparse

    from vvhand_core.detector.cli import add_arguments
    from vvhand_core.detector.train_command import training_examples

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    common = ["train", "--v2-frames", "0", "--v1-frames", "0", "--v3b-frames", "1",
              "--workers", "1"]  # frame 0 of seed 1004: a hand centred outside the image
    fresh, sources = training_examples(parser.parse_args(common), CFG)
    assert fresh.hands[0, 1, 4] == 1.0
    old = tmp_path / "old.npz"
    save_examples(old, Examples(fresh.depth, fresh.near_mm, fresh.hands[:, :, :5]), sources,
                  CFG)
    with np.load(old) as z:
        key = str(z["key"]).replace(', "targets": 2', "")
        np.savez(old, depth=z["depth"], near_mm=z["near_mm"], hands=z["hands"][:, :, :5],
                 key=np.array(key))
    got, again = training_examples(parser.parse_args([*common, "--examples-from", str(old)]), CFG)
    assert again == sources
    np.testing.assert_allclose(got.hands, fresh.hands, rtol=1e-5, atol=1e-3)
