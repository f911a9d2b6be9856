"""The learned hand detector: canonical camera, targets, peaks, the choice rule, training,
weights files, the pipeline switch, and the packaged detector on a fixed set of frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vvhand_core.camera import Intrinsics, project_np
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.detector.data import build_examples, heat_target
from vvhand_core.detector.examples_file import load_examples, save_examples
from vvhand_core.detector.localiser import (
    DetectorLocaliser,
    DetectorLocaliserConfig,
    load_detector,
    save_detector,
)
from vvhand_core.detector.net import (
    STRIDE,
    DetectorConfig,
    HandDetectorNet,
    canonical_depth,
    encode_input,
    find_peaks,
    fold_batchnorm,
)
from vvhand_core.detector.refine import (
    PATCH,
    UV_SCALE_PX,
    RefineNet,
    apply_offsets,
    patch_at,
    train_refiner,
)
from vvhand_core.detector.train import DetectorTrainConfig, focal_loss, train_detector
from vvhand_core.localise import make_localiser, oracle_centre

CAM = Intrinsics(475.0, 470.0, 319.5, 239.5, 640, 480)


def test_canonical_camera_keeps_every_ray():
    """A point seen at canonical pixel (u', v') is on the ray of the original pixel there."""
    depth = np.zeros((480, 640), np.uint16)
    depth[200:260, 300:380] = 600
    canon, cam = canonical_depth(depth, CAM, 120.0)
    assert cam.fx == pytest.approx(120.0) and cam.fy == pytest.approx(120.0)
    assert canon.shape == (cam.height, cam.width)
    assert canon.shape == (round(480 * 120 / 470), round(640 * 120 / 475))
    p = np.array([[35.0, -12.0, 600.0], [-80.0, 40.0, 900.0]])
    uv_c, uv = project_np(p, cam), project_np(p, CAM)
    # canonical pixel -> original pixel: u = (u' + 0.5) / s - 0.5
    np.testing.assert_allclose((uv_c[:, 0] + 0.5) * CAM.fx / cam.fx - 0.5, uv[:, 0], atol=1e-9)
    np.testing.assert_allclose((uv_c[:, 1] + 0.5) * CAM.fy / cam.fy - 0.5, uv[:, 1], atol=1e-9)
    # nearest neighbour: the box keeps its depth, nothing is interpolated
    assert set(np.unique(canon).tolist()) == {0.0, 600.0}
    ys, xs = np.nonzero(canon)
    u0, v0 = (xs.min() + 0.5) * CAM.fx / cam.fx - 0.5, (ys.min() + 0.5) * CAM.fy / cam.fy - 0.5
    assert 299 - 4 <= u0 <= 300 + 4 and 199 - 4 <= v0 <= 200 + 4


def test_encode_input_channels():
    d = np.array([[0, 500, 800], [np.nan, 1500, 650]], np.float32)
    x = encode_input(d, 200.0, 1200.0, near_mm=500.0)
    np.testing.assert_array_equal(x[0], [[0, 1, 1], [0, 0, 1]])
    np.testing.assert_allclose(x[1], [[0, 0.5, 0.8], [0, 0, 0.65]])
    np.testing.assert_allclose(x[2], [[0, 0, 1.0], [0, 0, 0.5]])


def test_heat_target_and_peaks_find_both_hands():
    hands = np.array([[41.0, 30.0, 0.2, 1.0, 1.0], [100.0, 70.0, -0.1, 1.0, 1.0],
                      [0, 0, 0, 1.0, 0.0]], np.float32)
    heat, dz = heat_target(hands, 24, 32)
    assert heat.max() == 1.0 and heat[round(30 / STRIDE), round(41 / STRIDE)] == 1.0
    assert dz[round(30 / STRIDE), round(41 / STRIDE)] == pytest.approx(0.2)
    assert dz[round(70 / STRIDE), round(100 / STRIDE)] == pytest.approx(-0.1)
    logits = torch.logit(torch.from_numpy(heat).clamp(1e-4, 1 - 1e-4))
    out = torch.stack([logits, torch.from_numpy(dz).nan_to_num(0.0)])
    peaks = find_peaks(out, 0.5)
    assert len(peaks) == 2
    got = sorted((p.u, p.v) for p in peaks)
    np.testing.assert_allclose(got, [(41.0, 30.0), (100.0, 70.0)], atol=1.5)
    assert find_peaks(out, 1.01) == []


def test_focal_loss_prefers_the_right_map():
    target = torch.zeros(1, 8, 8)
    target[0, 3, 4] = 1.0
    good = torch.full((1, 8, 8), -6.0)
    good[0, 3, 4] = 6.0
    bad = torch.full((1, 8, 8), -6.0)
    bad[0, 6, 1] = 6.0
    assert focal_loss(good, target) < 0.01 < focal_loss(bad, target)


def _loc(**kw):
    net = HandDetectorNet(DetectorConfig(width=2))
    return DetectorLocaliser(DetectorLocaliserConfig(**kw), net=net)


def test_choice_rule_nearest_hand_and_tracking():
    loc = _loc(threshold=0.3, relative_threshold=0.5, hand_threshold=0.5,
               track_threshold=0.1)
    far, near, weak = np.array([0, 0, 700.0]), np.array([150, 0, 500.0]), np.array([0, 0, 300.0])
    # the nearest of the strong candidates wins; a weak one (< 0.5 x best) does not
    assert loc.choose([(0.9, far), (0.6, near), (0.2, weak)]) is near
    assert loc.choose([(0.9, far), (0.4, near)]) is far
    assert loc.choose([(0.25, far)]) is None
    # a nearer candidate below hand_threshold does not beat a confident hand
    assert loc.choose([(0.9, far), (0.45, near)]) is far
    assert loc.choose([(0.45, far), (0.4, near)]) is near  # no confident one: the nearest
    assert _loc(hand_threshold=1.0).choose([(0.9, far), (0.45, near)]) is near  # rule off
    # with a prior, the candidate close to it wins even when weaker and farther
    loc.prior = far + np.array([20.0, 0, 0])
    assert loc.choose([(0.15, far), (0.9, near)]) is far
    loc.prior = np.array([-400.0, 0, 600.0])  # nothing near the prior: search from scratch
    assert loc.choose([(0.15, far), (0.9, near)]) is near
    loc.reset()
    assert loc.prior is None


def test_weights_round_trip_and_bad_files(tmp_path):
    net = HandDetectorNet(DetectorConfig(width=3))
    path = save_detector(tmp_path / "d.pt", net, {"note": "test"})
    loaded, refiner, meta = load_detector(path)
    assert meta == {"note": "test"} and loaded.config.width == 3 and refiner is None
    x = torch.rand(1, 3, 40, 48)
    torch.testing.assert_close(loaded(x), net.eval()(x))
    ref = RefineNet().eval()
    _, refiner, _ = load_detector(save_detector(tmp_path / "r.pt", net, {}, ref))
    p = torch.rand(2, 3, PATCH, PATCH)
    torch.testing.assert_close(refiner(p), ref(p))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    for bad in (tmp_path / "junk.pt", tmp_path / "missing.pt"):
        with pytest.raises(ValueError, match=str(bad.name)):
            load_detector(bad)
    with pytest.raises(ValueError, match="localiser must be one of"):
        make_localiser("nearest", 200, 1200, 250, False)


def test_training_steps_learn_a_tiny_set(tmp_path):
    """Real steps on 12 rendered frames: the loss falls. The examples file round-trips."""
    sources = [({"seed": 11, "width": 320, "height": 240, "fx": 240.0, "fy": 240.0,
                 "cx": 159.5, "cy": 119.5}, 12)]
    ex = build_examples(sources, DetectorConfig(width=4), workers=1)
    assert ex.hands[:, 0, 4].all()  # every frame's hand is inside its canonical image
    path = tmp_path / "new_dir" / "examples.npz"
    save_examples(path, ex, sources, DetectorConfig(width=4))
    back = load_examples(path, sources, DetectorConfig(width=4))
    np.testing.assert_array_equal(back.depth, ex.depth)
    np.testing.assert_array_equal(back.hands, ex.hands)
    with pytest.raises(ValueError, match="other sources"):
        load_examples(path, [(sources[0][0], 13)], DetectorConfig(width=4))
    cfg = DetectorTrainConfig(steps=60, batch_size=8, lr=1e-2, crop_h=64, crop_w=64)
    net, hist = train_detector(ex, DetectorConfig(width=4), cfg)
    first, last = np.mean([h["loss"] for h in hist[:5]]), np.mean([h["loss"] for h in hist[-5:]])
    assert last < 0.6 * first
    losses = train_refiner(RefineNet(width=4), ex, DetectorConfig(width=4), steps=60,
                           batch_size=16, lr=1e-2)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_refiner_patch_and_offsets():
    depth = np.zeros((60, 80), np.float32)
    depth[20:40, 30:50] = 500.0
    depth[29, 39] = 480.0  # the nearest point, in the centre window
    x, z_ref = patch_at(depth, 40, 30, 200.0, 1200.0)
    assert x.shape == (3, PATCH, PATCH)
    half = PATCH // 2
    assert x[0, half, half] == 1 and x[0, 0, 0] == 0  # (40, 30) valid; beyond the image not
    assert z_ref == 500.0 and x[1, half - 1, half - 1] == pytest.approx(-0.2)
    assert np.allclose(x[2], 0.5)
    assert patch_at(np.zeros((60, 80), np.float32), 40, 30, 200.0, 1200.0) is None
    u, v, z = apply_offsets(40, 30, 500.0, torch.tensor([0.5, -1.0, 0.3]))
    assert (u, v, z) == pytest.approx((40 + 0.5 * UV_SCALE_PX, 30 - UV_SCALE_PX, 530.0))


@pytest.fixture(scope="module")
def packaged():
    torch.set_num_threads(1)
    return DetectorLocaliser(DetectorLocaliserConfig(use_tracking=False))


@pytest.mark.parametrize("synth, n, min_within", [({"seed": 3}, 10, 9),
                                                   ({"scene_version": 2, "seed": 5}, 16, 14)])
def test_packaged_detector_on_fixed_frames(packaged, synth, n, min_within):
    """Regression guard: the shipped detector finds the labelled hand within 30 mm."""
    gen = SyntheticHandGenerator(SynthConfig.from_dict(synth))
    within = 0
    for i in range(n):
        f = gen.frame(i)
        c = packaged.locate(f.depth_mm, f.intrinsics)
        gt = oracle_centre(np.asarray(f.joints_mm, np.float64))
        within += c is not None and np.linalg.norm(c - gt) <= 30.0
    assert within >= min_within


def test_packaged_detector_finds_nothing_in_empty_scenes(packaged):
    assert packaged.locate(np.zeros((480, 640), np.uint16), CAM) is None
    wall = np.full((480, 640), 900, np.uint16)
    assert packaged.locate(wall, CAM) is None
    assert packaged.locate(np.full((480, 640), np.nan, np.float32), CAM) is None


def test_folded_batchnorm_gives_the_same_output():
    net = HandDetectorNet(DetectorConfig(width=4))
    for m in net.modules():  # non-trivial statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    x = torch.rand(2, 3, 48, 64)
    ref = net.eval()(x)
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(folded(x), ref, atol=1e-5, rtol=1e-4)


def test_packaged_detector_tracks_a_sequence():
    """A moving hand (sample_sequence): with the tracking prior every frame is found."""
    from vvhand_core.data.synthetic.generator import sample_sequence

    torch.set_num_threads(1)
    loc = DetectorLocaliser(DetectorLocaliserConfig(use_tracking=True))
    cfg = SynthConfig(seed=21, width=320, height=240, fx=240.0, fy=240.0, cx=159.5, cy=119.5)
    errors = []
    for f in sample_sequence(cfg, 24, keyframe_interval=8):
        c = loc.locate(f.depth_mm, f.intrinsics)
        gt = oracle_centre(np.asarray(f.joints_mm, np.float64))
        errors.append(np.inf if c is None else float(np.linalg.norm(c - gt)))
        assert c is None or loc.prior is c
    assert np.isfinite(errors).all() and np.median(errors) < 25.0


def test_packaged_detector_nearest_of_two_hands_and_both_sides(packaged):
    """Person scenes with a second, farther hand: the labelled (nearest) one is found; left
    and right hands alike."""
    gen = SyntheticHandGenerator(SynthConfig(scene_version=2, seed=5))
    two, sides = [], {"left": [], "right": []}
    i = 0
    while (len(two) < 4 or min(len(v) for v in sides.values()) < 4) and i < 60:
        f = gen.frame(i)
        i += 1
        c = packaged.locate(f.depth_mm, f.intrinsics)
        gt = oracle_centre(np.asarray(f.joints_mm, np.float64))
        ok = c is not None and np.linalg.norm(c - gt) <= 30.0
        sides[f.meta["side"]].append(ok)
        if f.meta["second_hand_center_mm"] is not None:
            second = np.asarray(f.meta["second_hand_center_mm"])
            assert second[2] > gt[2]  # the scenes' rule: the labelled hand is the nearest
            two.append(ok and np.linalg.norm(c - gt) < np.linalg.norm(c - second))
    assert len(two) >= 4 and sum(two) >= len(two) - 1
    for side, oks in sides.items():
        assert len(oks) >= 4 and np.mean(oks) >= 0.75, side
