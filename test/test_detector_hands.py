"""Training data of the detector for every hand: labelled hands of each scene version,
hand-free negatives, crops and refiner samples around any hand, fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vvhand_core.camera import Intrinsics
from vvhand_core.data.base import DepthFrame
from vvhand_core.detector.data import (
    Examples,
    TrainingCrops,
    build_examples,
    hand_centres_mm,
)
from vvhand_core.detector.net import DetectorConfig, HandDetectorNet
from vvhand_core.detector.refine import RefineNet, train_refiner
from vvhand_core.detector.train import DetectorTrainConfig, train_detector
from vvhand_core.skeletons import HANDS2019_21


def _frame(meta, joints_mean=(0.0, 0.0, 500.0)):
    joints = np.tile(np.asarray(joints_mean), (21, 1))
    return DepthFrame(np.zeros((48, 64), np.float32), Intrinsics(60, 60, 32, 24, 64, 48),
                      joints, HANDS2019_21, meta)


def test_hand_centres_of_each_scene_version():
    v3 = _frame({"hands": [{"center_mm": [1.0, 2.0, 500.0]}, {"center_mm": [90.0, 0, 600]}]})
    np.testing.assert_allclose(hand_centres_mm(v3), [[1, 2, 500], [90, 0, 600]])
    v2 = _frame({"second_hand_center_mm": [200.0, 0, 700]})
    np.testing.assert_allclose(hand_centres_mm(v2), [[0, 0, 500], [200, 0, 700]])
    assert hand_centres_mm(_frame({"hand_free": True})) == []


def test_hand_free_sources_are_negatives():
    synth = {"scene_version": 2, "seed": 5, "width": 320, "height": 240, "fx": 240.0,
             "fy": 240.0, "cx": 159.5, "cy": 119.5}
    ex = build_examples([(synth, 3), ({**synth, "hand_free": True}, 3)],
                        DetectorConfig(width=2), workers=1)
    assert ex.hands[:3, 0, 4].all() and not ex.hands[3:, :, 4].any()
    assert (ex.depth[3:] > 0).any(axis=(1, 2)).all()  # the scene is there, its hands not


def _two_hand_examples():
    """One frame, two hands far apart told apart by their dz targets (0.1 and -0.2)."""
    hands = np.zeros((1, 3, 5), np.float32)
    hands[0, 0] = [30.0, 30.0, 0.1, 1.0, 1.0]
    hands[0, 1] = [200.0, 150.0, -0.2, 1.0, 1.0]
    depth = np.full((1, 180, 240), 600, np.uint16)
    return Examples(depth, np.array([600.0], np.float32), hands)


def test_crops_centre_on_every_hand():
    crops = TrainingCrops(_two_hand_examples(), (64, 64), p_hand=1.0, margin=8)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(30):
        b = crops.batch(rng, 1)
        heat, dz = b["heat"][0], b["dz"][0]
        peak = np.unravel_index(np.argmax(heat), heat.shape)
        assert heat[peak] == 1.0  # every crop holds a hand's centre
        seen.add(round(float(dz[peak]), 3))
    assert seen == {0.1, -0.2}  # both hands, not only hand 0


def test_training_continues_from_given_weights_and_any_hand_trains_the_refiner():
    ex = _two_hand_examples()
    net = HandDetectorNet(DetectorConfig(width=2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cfg = DetectorTrainConfig(steps=2, batch_size=2, crop_h=32, crop_w=32)
    out, hist = train_detector(ex, DetectorConfig(width=2), cfg, net=net)
    assert out is net and len(hist) == 2
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())
    ex.hands[0, 0, 4] = 0.0  # only the second hand is present
    losses = train_refiner(RefineNet(width=2), ex, DetectorConfig(width=2), steps=2,
                           batch_size=4)
    assert len(losses) == 2 and np.isfinite(losses).all()


def test_frame_weights_choose_how_often_frames_are_drawn():
    from vvhand_core.detector.train_command import TRAIN_SOURCES, source_weights

    ex = _two_hand_examples()
    two = Examples(np.concatenate([ex.depth, ex.depth]), np.concatenate([ex.near_mm] * 2),
                   np.concatenate([ex.hands, ex.hands]))
    two.hands[1, :, 2] = 0.5  # frame 1 told apart by its dz targets
    crops = TrainingCrops(two, (64, 64), p_hand=1.0, margin=8,
                          frame_weights=np.array([0.0, 1.0]))
    rng = np.random.default_rng(0)
    for _ in range(10):
        b = crops.batch(rng, 1)
        peak = np.unravel_index(np.argmax(b["heat"][0]), b["heat"][0].shape)
        assert b["dz"][0][peak] == 0.5  # only frame 1 is drawn
    sources = [(TRAIN_SOURCES["v2"], 2), (TRAIN_SOURCES["v1"], 1),
               (TRAIN_SOURCES["v3 hand-free"], 2)]
    np.testing.assert_array_equal(source_weights("v1=3, v3-hand-free=0", sources),
                                  [1, 1, 3, 0, 0])
    assert source_weights("", sources) is None
    fourth = [(TRAIN_SOURCES["v3d"], 2), (TRAIN_SOURCES["v3d hand-free"], 1)]
    np.testing.assert_array_equal(source_weights("v3d=2,v3d-hand-free=0", fourth), [2, 2, 0])
    hand_sources = [s for s in TRAIN_SOURCES.values() if not s.get("hand_free")]
    seeds = [s["seed"] for s in hand_sources]
    assert len(set(seeds)) == len(seeds) and not set(seeds) & {3, 5, 7, 9}  # no test split
    with pytest.raises(SystemExit, match="names are"):
        source_weights("v4=2", sources)


def test_train_command_finetunes_and_keeps_the_refiner(tmp_path):
    """`vvhand detector train --finetune W --refine-steps 0`: both networks start from W,
    the heat-map network trains (drawing by --source-weights), W's refiner is kept."""
    import argparse

    from vvhand_core.detector.cli import add_arguments, run
    from vvhand_core.detector.localiser import load_detector, save_detector

    start = tmp_path / "start.pt"
    ref = RefineNet()
    save_detector(start, HandDetectorNet(DetectorConfig(width=2)), {"note": "start"}, ref)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "tuned.pt"
    args = parser.parse_args(["train", "--v2-frames", "0", "--v1-frames", "3", "--steps", "2",
                              "--batch-size", "2", "--finetune", str(start),
                              "--refine-steps", "0", "--source-weights", "v1=2",
                              "--workers", "1", "--threads", "1", "--eval-frames", "0",
                              "--out", str(out)])
    assert run(args) == 0
    net, refiner, meta = load_detector(out)
    assert meta["finetune"]["record"] == {"note": "start"} and meta["source_weights"] == "v1=2"
    assert meta["refiner"] == {"steps": 0, "kept_from": str(start)}
    for k, v in ref.state_dict().items():
        assert torch.equal(refiner.state_dict()[k], v)
    first, _, _ = load_detector(start)
    assert any(not torch.equal(first.state_dict()[k], v) for k, v in net.state_dict().items())


def test_widened_network_computes_the_same_function():
    """detector.net.widen: more channels, the same output (noise 0); noise sets copies apart."""
    from vvhand_core.detector.net import widen

    torch.manual_seed(0)
    net = HandDetectorNet(DetectorConfig(width=3))
    with torch.no_grad():  # trained-looking BatchNorm statistics, not the defaults
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    net.eval()
    x = torch.rand(2, 3, 32, 40)
    wide = widen(net, 5, noise=0.0).eval()
    assert wide.config.width == 5 and wide.stem[0].out_channels == 5
    assert wide.s8[2][0].out_channels == 20
    torch.testing.assert_close(wide(x), net(x), atol=1e-5, rtol=1e-5)
    noisy = widen(net, 5, noise=0.05).eval()
    w = noisy.stem[0].weight
    assert not torch.equal(w[0], w[3])  # channel 3 copies channel 0, set apart by the noise
    with pytest.raises(ValueError, match="width 2"):
        widen(net, 2)


def test_train_command_keeps_the_heat_map_with_zero_steps_and_widens(tmp_path):
    """--finetune W --steps 0: W's heat-map network kept, the refiner trained (drawing by
    --refine-source-weights); --widen: the heat-map network trained at the new width."""
    import argparse

    from vvhand_core.detector.cli import add_arguments, run
    from vvhand_core.detector.localiser import load_detector, save_detector

    start = tmp_path / "start.pt"
    ref = RefineNet()
    save_detector(start, HandDetectorNet(DetectorConfig(width=2)), {"note": "start"}, ref)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    common = ["train", "--v2-frames", "0", "--v1-frames", "3", "--batch-size", "2",
              "--finetune", str(start), "--workers", "1", "--threads", "1",
              "--eval-frames", "0", "--examples", str(tmp_path / "ex.npz")]
    out = tmp_path / "refined.pt"
    assert run(parser.parse_args([*common, "--steps", "0", "--refine-steps", "2",
                                  "--refine-source-weights", "v1=2", "--out", str(out)])) == 0
    net, refiner, meta = load_detector(out)
    first, _, _ = load_detector(start)
    assert meta["heat_net"] == {"steps": 0, "kept_from": str(start)}
    assert meta["refine_source_weights"] == "v1=2" and meta["refiner"]["steps"] == 2
    for k, v in first.state_dict().items():
        assert torch.equal(net.state_dict()[k], v)
    assert any(not torch.equal(refiner.state_dict()[k], v) for k, v in ref.state_dict().items())
    wide = tmp_path / "wide.pt"
    assert run(parser.parse_args([*common, "--steps", "1", "--refine-steps", "0",
                                  "--widen", "3", "--close-pair-weight", "2",
                                  "--out", str(wide)])) == 0
    net, _, meta = load_detector(wide)
    assert net.config.width == 3 and meta["finetune"]["widened_to"] == 3
    assert meta["close_pair_weight"] == 2.0


def test_refiner_frame_weights_need_a_weighted_hand():
    ex = _two_hand_examples()
    with pytest.raises(ValueError, match="no frame with a hand"):
        train_refiner(RefineNet(width=2), ex, DetectorConfig(), steps=1, batch_size=2,
                      frame_weights=np.zeros(1))
    losses = train_refiner(RefineNet(width=2), ex, DetectorConfig(), steps=2, batch_size=2,
                           frame_weights=np.ones(1))
    assert len(losses) == 2 and all(np.isfinite(losses))


def test_cached_examples_serve_any_width_not_another_camera(tmp_path):
    from vvhand_core.detector.examples_file import load_examples, save_examples

    ex, sources = _two_hand_examples(), [({"seed": 1}, 1)]
    path = tmp_path / "ex.npz"
    save_examples(path, ex, sources, DetectorConfig(width=12))
    got = load_examples(path, sources, DetectorConfig(width=24))
    np.testing.assert_array_equal(got.hands, ex.hands)
    with pytest.raises(ValueError, match="other sources or another detector config"):
        load_examples(path, sources, DetectorConfig(width=12, focal_px=100.0))
    with pytest.raises(ValueError, match="other sources"):
        load_examples(path, [({"seed": 2}, 1)], DetectorConfig(width=12))


def test_examples_grow_from_a_cached_prefix(tmp_path):
    """`detector train --examples NEW --examples-from OLD`: OLD's frames are reused as the
    first sources', only the other sources are rendered (here one hand-free v3 scene)."""
    import argparse

    from vvhand_core.detector.cli import add_arguments
    from vvhand_core.detector.data import concat_examples
    from vvhand_core.detector.examples_file import (
        load_examples,
        load_examples_prefix,
        save_examples,
    )
    from vvhand_core.detector.train_command import training_examples

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    common = ["train", "--v2-frames", "0", "--workers", "1"]
    old, new = tmp_path / "old.npz", tmp_path / "new.npz"
    args = parser.parse_args([*common, "--v1-frames", "2", "--examples", str(old)])
    first, sources = training_examples(args, DetectorConfig())
    args = parser.parse_args([*common, "--v1-frames", "2", "--v3b-free-frames", "1",
                              "--examples", str(new), "--examples-from", str(old)])
    grown, more = training_examples(args, DetectorConfig())
    assert more[:1] == sources and more[1][0]["hand_free"] and len(grown.depth) == 3
    h, w = first.depth.shape[1:]
    np.testing.assert_array_equal(grown.depth[:2, :h, :w], first.depth)
    assert not grown.depth[:2, h:].any() and not grown.depth[:2, :, w:].any()
    assert grown.hands[2, :, 4].sum() == 0 and grown.hands[:2, 0, 4].all()
    np.testing.assert_array_equal(load_examples(new, more, DetectorConfig()).hands, grown.hands)
    with pytest.raises(ValueError, match="not the first"):
        load_examples_prefix(old, more[1:], DetectorConfig())
    ex = _two_hand_examples()
    save_examples(tmp_path / "one.npz", ex, [({"seed": 1}, 1)], DetectorConfig())
    got, k = load_examples_prefix(tmp_path / "one.npz", [({"seed": 1}, 1), ({"seed": 2}, 1)],
                                  DetectorConfig(width=24))
    assert k == 1 and len(concat_examples(got, ex).depth) == 2


def test_close_pairs_weigh_more_for_the_heat_map():
    """data.close_pair_frames and `vvhand detector train --close-pair-weight`."""
    import argparse

    from vvhand_core.detector.data import CLOSE_PAIR_PX, close_pair_frames
    from vvhand_core.detector.train_command import heat_weights

    hands = np.zeros((4, 3, 7), np.float32)
    hands[:, 0, [4, 5, 6]] = [1.0, 100.0, 100.0]
    hands[0, 1, [4, 5, 6]] = [1.0, 100.0 + CLOSE_PAIR_PX - 1, 100.0]  # close
    hands[1, 1, [4, 5, 6]] = [1.0, 100.0 + CLOSE_PAIR_PX + 1, 100.0]  # not close
    hands[2, 2, [4, 5, 6]] = [1.0, 110.0, 120.0]  # close: an unlabelled hand's row
    hands[3, 1, [4, 5, 6]] = [0.0, 100.0, 100.0]  # one hand only (row not present)
    np.testing.assert_array_equal(close_pair_frames(hands), [True, False, True, False])
    ex = Examples(np.zeros((4, 8, 8), np.uint16), np.zeros(4, np.float32), hands)
    sources = [({"seed": 1001}, 2), ({"scene_version": 2, "seed": 1002}, 2)]
    args = argparse.Namespace(source_weights="v1=2", close_pair_weight=3.0)
    np.testing.assert_array_equal(heat_weights(args, ex, sources), [6, 2, 3, 1])
    args.close_pair_weight = 1.0
    np.testing.assert_array_equal(heat_weights(args, ex, sources), [2, 2, 1, 1])
    args.source_weights = ""
    assert heat_weights(args, ex, sources) is None
    args.close_pair_weight = -1.0
    with pytest.raises(SystemExit, match="close-pair-weight"):
        heat_weights(args, ex, sources)
