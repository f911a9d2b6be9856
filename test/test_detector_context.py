"""The heat-map network's stride-16 context stage and the training checkpoints.

- ``deepen`` adds the stage without changing the function (its lateral starts at zero);
  training then moves it; ``widen`` of a network with the stage keeps the function too.
- The stage survives save/load and the ONNX export (onnxruntime = torch), and the
  localiser runs it; weights written before the stage existed load without one.
- Examples do not depend on the network's shape (``NETWORK_FIELDS``): a cache made for
  one shape loads for another, not for another canonical camera.
- ``train_detector`` calls its checkpoint with the network in training (zero steps: no
  training, no error); the train command writes ``OUT.checkpoint.pt`` (both networks,
  the phase and step reached) that ``--finetune`` reads, and adds the stage with
  ``--context-blocks``.
- ``--device``: checked before any work; CUDA trains both networks (skipped without it).
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from vvhand_core.camera import Intrinsics
from vvhand_core.detector.cli import add_arguments, run
from vvhand_core.detector.data import build_examples
from vvhand_core.detector.examples_file import load_examples, save_examples
from vvhand_core.detector.localiser import (
    DetectorLocaliser,
    DetectorLocaliserConfig,
    load_detector,
    save_detector,
)
from vvhand_core.detector.net import DetectorConfig, HandDetectorNet, deepen, widen
from vvhand_core.detector.refine import RefineNet
from vvhand_core.detector.shipped import write_exported
from vvhand_core.detector.train import DetectorTrainConfig, train_detector


def _trained_looking(net: HandDetectorNet) -> HandDetectorNet:
    """BatchNorm statistics and every weight away from their initial values."""
    torch.manual_seed(3)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net.eval()


def test_deepen_keeps_the_function_and_training_moves_it():
    net = _trained_looking(HandDetectorNet(DetectorConfig(width=3)))
    x = torch.rand(2, 3, 50, 70)
    deep = deepen(net, 2).eval()
    assert deep.config.context_blocks == 2 and len(deep.s16) == 2
    assert deep.s16[1][0].dilation == (2, 2)
    torch.testing.assert_close(deep(x), net(x), atol=0, rtol=0)
    with pytest.raises(ValueError, match="already has"):
        deepen(deep, 1)
    with pytest.raises(ValueError, match=">= 1"):
        deepen(net, 0)
    # the new stage learns: one step moves its lateral away from zero
    deep.train()
    out = deep(x)
    out[:, 0].mean().backward()
    assert deep.lateral16.weight.grad.abs().sum() > 0
    # a wider copy of a deepened (and moved) network computes the same function
    with torch.no_grad():
        deep.lateral16.weight.normal_(0, 0.1)
    deep.eval()
    wide = widen(deep, 5, noise=0.0).eval()
    assert wide.config.context_blocks == 2 and wide.s16[0][0].out_channels == 20
    torch.testing.assert_close(wide(x), deep(x), atol=1e-5, rtol=1e-5)


def test_context_stage_saves_exports_and_localises(tmp_path):
    pytest.importorskip("onnxruntime")
    net = _trained_looking(deepen(HandDetectorNet(DetectorConfig(width=2)), 2))
    with torch.no_grad():
        net.lateral16.weight.normal_(0, 0.2)  # the stage matters to the output
        net.head[-1].bias[0] = 4.0  # "a hand" everywhere: there are peaks to lift
    path = save_detector(tmp_path / "ctx.pt", net, {}, RefineNet(width=2).eval())
    back, _, _ = load_detector(path)
    assert back.config == net.config
    x = torch.rand(1, 3, 61, 81)
    torch.testing.assert_close(back(x), net(x))
    meta = write_exported(path)  # verifies onnxruntime against torch on random inputs
    assert max(meta["verification"]["max_abs_diff_on_random_inputs"].values()) < 1e-3
    depth = np.full((120, 160), 600.0, np.float32)
    depth[40:80, 60:100] = 450.0
    intr = Intrinsics(fx=120.0, fy=120.0, cx=80.0, cy=60.0, width=160, height=120)
    answers = {}
    for runtime in ("onnxruntime", "torch"):
        loc = DetectorLocaliser(DetectorLocaliserConfig(weights=str(path), runtime=runtime))
        answers[runtime] = loc.locate_all(depth, intr)
    assert len(answers["torch"]) > 0
    assert len(answers["onnxruntime"]) == len(answers["torch"])
    # weights written before the stage existed (no context_blocks in their config) load
    old = HandDetectorNet(DetectorConfig(width=2))
    blob_path = save_detector(tmp_path / "old.pt", old, {})
    blob = torch.load(blob_path, weights_only=True)
    del blob["config"]["context_blocks"]
    torch.save(blob, blob_path)
    assert load_detector(blob_path)[0].config.context_blocks == 0


def test_examples_do_not_depend_on_the_network_shape(tmp_path):
    from vvhand_core.detector.train_command import TRAIN_SOURCES

    sources = [(TRAIN_SOURCES["v1"], 2)]
    made = DetectorConfig(width=2)
    ex = build_examples(sources, made, workers=1)
    path = tmp_path / "ex.npz"
    save_examples(path, ex, sources, made)
    back = load_examples(path, sources, DetectorConfig(width=7, context_blocks=3))
    np.testing.assert_array_equal(back.depth, ex.depth)
    with pytest.raises(ValueError):
        load_examples(path, sources, DetectorConfig(width=2, focal_px=100.0))


def test_checkpoints_in_training_and_the_train_command(tmp_path):
    from vvhand_core.detector.train_command import TRAIN_SOURCES

    sources = [(TRAIN_SOURCES["v1"], 3)]
    ex = build_examples(sources, DetectorConfig(width=2), workers=1)
    seen = []

    def keep(net, step):
        seen.append((step, net.training))
    cfg = DetectorTrainConfig(steps=3, batch_size=2, crop_h=32, crop_w=32)
    train_detector(ex, DetectorConfig(width=2), cfg, checkpoint=keep, checkpoint_s=0.0)
    assert seen == [(1, True), (2, True), (3, True)]
    seen.clear()
    train_detector(ex, DetectorConfig(width=2), cfg, checkpoint=keep, checkpoint_s=1e9)
    assert seen == []
    # zero steps (a run that only renders its examples) trains nothing and does not fail
    net, history = train_detector(ex, DetectorConfig(width=2), DetectorTrainConfig(steps=0))
    assert history == [] and not net.training

    start = save_detector(tmp_path / "start.pt", HandDetectorNet(DetectorConfig(width=2)),
                          {"note": "start"}, RefineNet())
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "deep.pt"
    args = ["train", "--v2-frames", "0", "--v1-frames", "3", "--batch-size", "2",
            "--finetune", str(start), "--workers", "1", "--threads", "1", "--eval-frames",
            "0", "--examples", str(tmp_path / "ex.npz"), "--steps", "2", "--refine-steps",
            "2", "--context-blocks", "2", "--checkpoint-min", "1e-9", "--out", str(out)]
    assert run(parser.parse_args(args)) == 0
    net, refiner, meta = load_detector(out)
    assert net.config.context_blocks == 2 and meta["finetune"]["context_blocks_added"] == 2
    ckpt, ckpt_refiner, ckpt_meta = load_detector(out.with_suffix(".checkpoint.pt"))
    assert ckpt.config.context_blocks == 2
    # the last checkpoint: the refiner's last step, both networks as written at the end
    assert ckpt_meta["checkpoint"] == {"phase": "refiner", "step": 2, "of": 2}
    for k, v in net.state_dict().items():
        assert torch.equal(ckpt.state_dict()[k], v)
    for k, v in refiner.state_dict().items():
        assert torch.equal(ckpt_refiner.state_dict()[k], v)
    with pytest.raises(SystemExit, match="already has a context stage"):
        run(parser.parse_args([*args[:8], str(out), *args[9:]]))
    with pytest.raises(SystemExit, match="--init keeps"):
        run(parser.parse_args(["train", "--init", str(start), "--context-blocks", "1",
                               "--out", str(tmp_path / "x.pt")]))


def test_train_device_is_checked_and_cuda_trains_both_networks(tmp_path):
    """--device: a device torch cannot use here stops the command before any work; on a
    machine with CUDA both networks train there and the weights load on the CPU."""
    from vvhand_core.detector.refine import train_refiner
    from vvhand_core.detector.train_command import TRAIN_SOURCES, check_device

    assert check_device("cpu") == "cpu"
    assert check_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(SystemExit, match="only cpu and cuda"):
        check_device("meta")
    with pytest.raises(SystemExit, match="--device 'nonsense'"):
        check_device("nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="--device 'cuda': .*CUDA is not available"):
            check_device("cuda")
        pytest.skip("needs CUDA: training on it")
    ex = build_examples([(TRAIN_SOURCES["v1"], 3)], DetectorConfig(width=2), workers=1)
    cfg = DetectorTrainConfig(steps=2, batch_size=2, crop_h=32, crop_w=32, device="cuda")
    net, history = train_detector(ex, DetectorConfig(width=2), cfg)
    assert len(history) == 2 and next(net.parameters()).device.type == "cpu"
    refiner = RefineNet()
    losses = train_refiner(refiner, ex, DetectorConfig(width=2), 2, batch_size=2,
                           device="cuda")
    assert len(losses) == 2 and next(refiner.parameters()).device.type == "cpu"
    path = save_detector(tmp_path / "cuda.pt", net, {"device": "cuda"}, refiner)
    assert load_detector(path)[2] == {"device": "cuda"}
