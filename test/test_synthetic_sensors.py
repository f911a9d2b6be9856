"""Scene version 2 building blocks: sensor models, per-frame cameras, mirrored left hands.

Unit tests on hand-made depth images (exact expectations), then checks that the v2
frames really carry each sensor effect. Correctness only; timings live in benchmarks.
"""

import numpy as np
import pytest

from vvhand_core.camera import Intrinsics
from vvhand_core.data.synthetic.camera_sampling import RESOLUTIONS, sample_camera
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.data.synthetic.hand_model import pose_hand
from vvhand_core.data.synthetic.poses import GESTURES
from vvhand_core.data.synthetic.raycast import render_geometry
from vvhand_core.data.synthetic.sensor_models import (
    SensorModel,
    apply_sensor,
    grazing_mask,
    projector_shadow,
)

INTR = Intrinsics(300.0, 300.0, 79.5, 59.5, 160, 120)


def _sl(**kw):
    base = dict(kind="structured_light", min_range_mm=250.0, max_range_mm=4000.0,
                baseline_mm=50.0, disparity_step_px=0.1)  # fmt: skip
    return SensorModel(**{**base, **kw})


def _tof(**kw):
    return SensorModel(**{**dict(kind="tof", min_range_mm=200.0, max_range_mm=4000.0), **kw})


def _step_box(fg_mm=500.0, bg_mm=900.0):
    d = np.full((INTR.height, INTR.width), bg_mm, dtype=np.float32)
    d[40:80, 60:100] = fg_mm
    return d


# ----------------------------------------------------------------- sensor models, exact cases


def test_min_range_and_disparity_quantisation_grow_with_distance():
    ramp = np.repeat(np.linspace(150.0, 2500.0, INTR.height, dtype=np.float32)[:, None],
                     INTR.width, axis=1)  # fmt: skip
    for model in (_sl(), _tof()):
        out = apply_sensor(ramp, INTR, model, np.random.default_rng(0), quantize=False)
        assert np.all(out[ramp < model.min_range_mm - 5] == 0), model.kind
        assert np.all(out[ramp > model.min_range_mm + 5] > 0), model.kind
    # a fine ramp (0.5 mm per column): the output takes only the quantised depths
    wide = Intrinsics(300.0, 300.0, 1999.5, 1.5, 4000, 4)
    fine = np.repeat(np.linspace(300.0, 2300.0, 4000, dtype=np.float32)[None], 4, axis=0)
    out = apply_sensor(fine, wide, _sl(grazing_max_deg=90.0), np.random.default_rng(0),
                       quantize=False)  # fmt: skip
    levels = np.unique(out[out > 0])

    def step(lo, hi):
        sel = levels[(levels > lo) & (levels < hi)]
        return float(np.median(np.diff(sel)))

    fb = wide.fx * 50.0
    for z in (400.0, 1000.0, 2000.0):  # depth step of 0.1 px of disparity: z^2 0.1 / (f b)
        assert step(z - 60, z + 60) == pytest.approx(z * z * 0.1 / fb, rel=0.1)


def test_structured_light_shadow_falls_beside_nearer_surfaces():
    d = _step_box()
    fb = INTR.fx * 50.0
    width = fb / 500.0 - fb / 900.0  # 13.3 px
    for side, cols in ((1, slice(60 - 14, 60)), (-1, slice(100, 100 + 14))):
        disp = np.where(d > 0, fb / d, 0.0).astype(np.float32)
        shadow = projector_shadow(disp, side)
        assert shadow[40:80, cols].mean() > 0.9 * (width - 1) / 14
        assert shadow.sum() == pytest.approx(40 * width, abs=40 * 1.5)
        assert not shadow[d == 500.0].any()  # the near surface is lit
    out = apply_sensor(d, INTR, _sl(projector_side=1), np.random.default_rng(1))
    assert np.all(out[40:80, 60 - 12 : 60] == 0) and np.all(out[40:80, 101:114] > 0)


def test_tof_flying_pixels_lie_between_the_surfaces():
    d = _step_box()
    model = _tof(flying_prob=1.0)
    out = apply_sensor(d, INTR, model, np.random.default_rng(2), quantize=False)
    between = (out > 510.0) & (out < 890.0)
    ring = np.zeros_like(between)
    ring[39:81, 59:101] = True
    ring[41:79, 61:99] = False
    assert between.sum() > 0.9 * ring.sum() and not between[~ring].any()
    # away from the edge: exact depth (no noise, bias or dropouts configured)
    assert np.all(out[50:70, 70:90] == 500.0) and np.all(out[:20] == 900.0)
    clean_sl = apply_sensor(d, INTR, _sl(disparity_step_px=1e-4), np.random.default_rng(2),
                            quantize=False)  # fmt: skip
    assert not ((clean_sl > 510.0) & (clean_sl < 890.0)).any()  # no flying pixels in SL


def test_grazing_surfaces_lose_their_depth():
    v = np.arange(INTR.height, dtype=np.float32)[:, None]
    b = (v - INTR.cy) / INTR.fy
    for tilt_deg, expect in ((30.0, False), (84.0, True)):
        # plane through (0, 0, 800) with its normal tilted about x: n . p = n . p0
        n = np.array([0.0, np.sin(np.radians(tilt_deg)), -np.cos(np.radians(tilt_deg))])
        z = (n @ np.array([0.0, 0.0, 800.0])) / (n[1] * b + n[2])
        depth = np.repeat(z.astype(np.float32), INTR.width, axis=1)
        mask = grazing_mask(depth, INTR, 78.0, 20.0)
        centre = mask[50:70, 40:120]
        assert (centre.mean() > 0.9) if expect else not centre.any(), tilt_deg


# ----------------------------------------------------------------- cameras, mirrored hands


def test_sampled_cameras_cover_the_range():
    rng = np.random.default_rng(0)
    cams = [sample_camera(rng)[0] for _ in range(300)]
    f = np.array([k.fx for k in cams])
    assert f.min() >= 200.0 and f.max() <= 650.0 and f.min() < 260 and f.max() > 600
    sizes = {(k.width, k.height) for k in cams}
    assert sizes == set(RESOLUTIONS)
    assert min(sizes) == (320, 240) and max(sizes) == (1280, 720)
    for k in cams:
        assert abs(k.cx - (k.width - 1) / 2) <= 0.02 * k.width + 1e-9 and k.fx == k.fy


def test_left_hand_renders_as_the_mirror_image_of_the_right_one():
    intr = Intrinsics(300.0, 300.0, 79.5, 59.5, 160, 120)  # cx at the image's middle
    m = np.diag([-1.0, 1.0, 1.0])
    rot = np.array([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])  # palm to the camera
    rot = rot @ np.array([[0.8, -0.6, 0], [0.6, 0.8, 0], [0, 0, 1]])  # some in-plane turn
    t = np.array([0.0, 0.0, 450.0])
    right = pose_hand(np.array(GESTURES["victory"]))
    left = right.mirrored()
    np.testing.assert_allclose(left.joints, right.joints * [-1, 1, 1])
    assert np.allclose(np.linalg.det(left.ell_rotations), 1.0)
    d_right, _ = render_geometry(right.transformed(rot, t), intr)
    d_left, _ = render_geometry(left.transformed(m @ rot @ m, m @ t), intr)
    diff = np.abs(d_left - d_right[:, ::-1])
    assert (d_right > 0).sum() > 1000 and np.mean(diff > 0.01) < 0.002


# ----------------------------------------------------------------- the effects in v2 frames


@pytest.fixture(scope="module")
def sensor_scenes():
    small = dict(width=320, height=240, fx=260.0, fy=260.0, cx=159.5, cy=119.5)
    out = {}
    for kind in ("structured_light", "tof"):
        gen = SyntheticHandGenerator(SynthConfig(scene_version=2, seed=9, sensor=kind,
                                                 random_camera=False, **small))  # fmt: skip
        out[kind] = [gen.scene(i) for i in range(8)]
    return out


def test_v2_frames_carry_their_sensor_effects(sensor_scenes):
    for kind, scenes in sensor_scenes.items():
        for s in scenes:
            f, clean = s.frame, s.clean_depth_mm
            p = f.meta["sensor_params"]
            assert f.meta["sensor"] == kind and p["kind"] == kind
            out = f.depth_mm.astype(np.float32)
            assert np.all((out == 0) | (out >= p["min_range_mm"] - 0.5))
            assert np.all(out[clean == 0] == 0)
            missing = (out == 0) & (clean > 0)
            assert missing.any()  # edge / grazing / shadow holes
            if kind == "structured_light":
                fb, step = f.intrinsics.fx * p["baseline_mm"], p["disparity_step_px"]
                z = out[out > 800]
                k = fb / z / step  # whole disparity steps, up to the mm rounding
                tol = fb * 0.5 / (z * z * step) + 1e-3
                assert np.all(np.abs(k - np.rint(k)) <= tol)
                assert missing.mean() > 0.002  # projector shadows
            else:
                lo = np.minimum.reduce([np.roll(clean, s, a) for s in (-1, 0, 1) for a in (0, 1)])
                hi = np.maximum.reduce([np.roll(clean, s, a) for s in (-1, 0, 1) for a in (0, 1)])
                flying = (out > 0) & (np.abs(out - clean) > 30) & (out > lo + 15) & (out < hi - 15)
                assert flying.sum() > 10
