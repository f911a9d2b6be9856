"""The refiner's border channel (detector.ops.RefineConfig) and the examples' image sizes.

- patch_at's fourth channel is 1 exactly where the patch lies inside the image (the
  array, or ``image_box`` of a padded training example); the other three channels do not
  change with it.
- add_border_input computes the same offsets as the refiner it extends (zero weights on
  the new channel), so a finetuned leg starts where the old refiner was.
- frame_sizes (drawn, not rendered) equals the sizes build_examples keeps, for v1, v2, v3
  and hand-free v3 sources; a border refiner refuses examples without sizes.
- A border refiner survives save/load and the ONNX export (4 input channels described),
  and the localiser lifts peaks through it (4-channel patches) with onnxruntime and with
  torch alike.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vvhand_core.detector.data import Examples, build_examples, frame_sizes
from vvhand_core.detector.localiser import (
    DetectorLocaliser,
    DetectorLocaliserConfig,
    load_detector,
    save_detector,
)
from vvhand_core.detector.net import DetectorConfig, HandDetectorNet
from vvhand_core.detector.ops import PATCH, Peak, patch_at
from vvhand_core.detector.refine import RefineNet, add_border_input, train_refiner
from vvhand_core.detector.shipped import load_exported, write_exported
from vvhand_core.detector.train_command import TRAIN_SOURCES


def _depth(h: int = 60, w: int = 80) -> np.ndarray:
    d = np.full((h, w), 700.0, np.float32)
    d[20:40, 30:50] = 500.0
    return d


def test_border_channel_marks_the_image():
    d = _depth()
    x3, z3 = patch_at(d, 10, 50, 200.0, 1200.0)
    x4, z4 = patch_at(d, 10, 50, 200.0, 1200.0, border=True)
    assert x3.shape == (3, PATCH, PATCH) and x4.shape == (4, PATCH, PATCH)
    np.testing.assert_array_equal(x4[:3], x3)
    assert z3 == z4
    half = PATCH // 2
    # patch pixel (r, c) is image pixel (50 - half + r, 10 - half + c)
    rows = np.arange(PATCH)[:, None] + 50 - half
    cols = np.arange(PATCH)[None, :] + 10 - half
    want = (rows >= 0) & (rows < 60) & (cols >= 0) & (cols < 80)
    np.testing.assert_array_equal(x4[3] == 1.0, want)
    assert set(np.unique(x4[3])) == {0.0, 1.0}
    # a padded example: the image is the top-left 50 x 70, the rest zero padding
    x5, _ = patch_at(d, 60, 40, 200.0, 1200.0, border=True, image_box=(0, 0, 70, 50))
    rows = np.arange(PATCH)[:, None] + 40 - half
    cols = np.arange(PATCH)[None, :] + 60 - half
    np.testing.assert_array_equal(x5[3] == 1.0, (rows >= 0) & (rows < 50) & (cols >= 0)
                                  & (cols < 70))


def test_add_border_input_keeps_the_function():
    torch.manual_seed(0)
    old = RefineNet(width=4).eval()
    new = add_border_input(old).eval()
    assert new.config.border and new.config.channels == 4
    x = torch.rand(5, 4, PATCH, PATCH)
    with torch.inference_mode():
        np.testing.assert_allclose(new(x).numpy(), old(x[:, :3]).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="already"):
        add_border_input(new)


def test_frame_sizes_match_the_rendered_examples():
    cfg = DetectorConfig(width=2)
    sources = [(TRAIN_SOURCES["v2"], 3), (TRAIN_SOURCES["v1"], 2), (TRAIN_SOURCES["v3"], 4),
               (TRAIN_SOURCES["v3 hand-free"], 2)]
    ex = build_examples(sources, cfg, workers=1)
    assert ex.sizes.shape == (11, 2)
    np.testing.assert_array_equal(frame_sizes(sources, cfg), ex.sizes)
    assert len({tuple(s) for s in ex.sizes}) > 1  # the cameras differ: padding matters
    losses = train_refiner(RefineNet(width=2, border=True), ex, cfg, steps=2, batch_size=4)
    assert len(losses) == 2 and all(np.isfinite(losses))
    with pytest.raises(ValueError, match="image sizes"):
        train_refiner(RefineNet(width=2, border=True),
                      Examples(ex.depth, ex.near_mm, ex.hands), cfg, steps=1)


def test_border_refiner_saves_exports_and_runs(tmp_path):
    pytest.importorskip("onnxruntime")
    torch.manual_seed(1)
    net = HandDetectorNet(DetectorConfig(width=3)).eval()
    with torch.no_grad():
        net.head[-1].bias[0] = 4.0  # untrained: "a hand" everywhere, so there are peaks
    ref = RefineNet(width=4, border=True).eval()
    path = save_detector(tmp_path / "det.pt", net, {}, ref)
    _, loaded, _ = load_detector(path)
    assert loaded.config == ref.config
    meta = write_exported(path)
    assert meta["refine_config"] == {"width": 4, "border": True}
    assert meta["networks"]["refine"]["inputs"]["patches"][1] == 4
    assert load_exported(path).refine_config.border
    canon = _depth()
    # one peak inside, one at the border (its patch half outside the image)
    peaks = [Peak(0.9, 40.0, 30.0, 0.0), Peak(0.9, 2.0, 30.0, 0.0)]
    got = {}
    for runtime in ("onnxruntime", "torch"):
        loc = DetectorLocaliser(DetectorLocaliserConfig(weights=str(path), runtime=runtime))
        assert loc.refine_border
        got[runtime] = loc._lift(canon, peaks)
    assert all(g is not None for g in got["torch"])
    np.testing.assert_allclose(np.array(got["onnxruntime"]), np.array(got["torch"]),
                               atol=1e-3)


def test_train_command_takes_a_refiner_from_other_weights_and_adds_the_border(tmp_path):
    """`detector train --finetune A --steps 0 --refiner-from B`: A's heat-map network, B's
    refiner (kept with --refine-steps 0); `--refine-border` adds the channel to it and
    trains it, the examples' sizes made and written to --examples."""
    import argparse

    from vvhand_core.detector.cli import add_arguments, run

    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.manual_seed(2)
    # a start whose config is not the default: every run below must use it
    a_cfg = DetectorConfig(width=2, surface_radius=4)
    save_detector(a, HandDetectorNet(a_cfg), {"note": "a"}, RefineNet())
    ref_b = RefineNet()
    save_detector(b, HandDetectorNet(DetectorConfig(width=2)), {"note": "b"}, ref_b)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    common = ["train", "--v2-frames", "0", "--v1-frames", "3", "--batch-size", "2",
              "--finetune", str(a), "--refiner-from", str(b), "--steps", "0", "--workers",
              "1", "--threads", "1", "--eval-frames", "0"]
    kept = tmp_path / "kept.pt"
    assert run(parser.parse_args([*common, "--refine-steps", "0", "--out", str(kept)])) == 0
    net, refiner, meta = load_detector(kept)
    heat_a, _, _ = load_detector(a)
    assert meta["refiner"] == {"steps": 0, "kept_from": str(b)}
    assert meta["refiner_from"]["record"] == {"note": "b"}
    for k, v in ref_b.state_dict().items():
        assert torch.equal(refiner.state_dict()[k], v)
    for k, v in heat_a.state_dict().items():
        assert torch.equal(net.state_dict()[k], v)
    # an examples cache written before the sizes were kept: rendered, then saved without
    ex_path = tmp_path / "ex.npz"
    assert run(parser.parse_args([*common, "--examples", str(ex_path), "--refine-steps", "0",
                                  "--out", str(kept)])) == 0
    with np.load(ex_path) as z:
        old = {k: z[k] for k in z.files if k != "sizes"}
        assert json.loads(str(z["key"]))["detector"] == a_cfg.to_dict()  # the start's
    np.savez(ex_path, **old)
    plain = tmp_path / "plain.npz"  # --finetune alone keeps the start's config too
    assert run(parser.parse_args([*common[:9], *common[11:], "--examples", str(plain),
                                  "--refine-steps", "0", "--out", str(tmp_path / "p.pt")])) == 0
    with np.load(plain) as z:
        assert json.loads(str(z["key"]))["detector"] == a_cfg.to_dict()
    bordered = tmp_path / "bordered.pt"
    assert run(parser.parse_args([*common, "--examples", str(ex_path), "--refine-steps", "2",
                                  "--refine-border", "--out", str(bordered)])) == 0
    _, refiner, meta = load_detector(bordered)
    assert refiner.config.border and meta["refiner"]["config"] == {"width": 16, "border": True}
    with np.load(ex_path) as z:
        assert z["sizes"].shape == (3, 2)
    with pytest.raises(SystemExit, match="needs --finetune"):
        run(parser.parse_args(["train", "--v1-frames", "1", "--refiner-from", str(b),
                               "--eval-frames", "0", "--out", str(tmp_path / "x.pt")]))
