"""The hand detector's runtimes (torch, onnxruntime) and its fast numpy code.

Both runtimes give the same centres on fixed frames; the runtime option fails clearly.
The numpy code around the networks (canonical resampling, input encoding, patches,
percentiles, peaks) was rewritten for speed: each piece is checked here against the
straightforward version it replaced (kept below as the reference): the same numbers,
bit for bit, except the peaks' sub-pixel positions (float32 sums in another order).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vvhand_core import onnx_model
from vvhand_core.camera import Intrinsics
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.detector import runtime as det_runtime
from vvhand_core.detector.localiser import DetectorLocaliser, DetectorLocaliserConfig
from vvhand_core.detector.net import (
    STRIDE,
    DetectorConfig,
    HandDetectorNet,
    canonical_camera,
    canonical_depth,
    encode_input,
    find_peaks,
    percentile_linear,
    surface_depth_mm,
)
from vvhand_core.detector.refine import PATCH, REF_RADIUS, RefineNet, patch_at
from vvhand_core.onnx_model import onnxruntime_available

needs_ort = pytest.mark.skipif(not onnxruntime_available(), reason="onnxruntime not installed")
SPLITS = {"v1": SynthConfig(seed=3), "v2": SynthConfig(scene_version=2, seed=5)}


@pytest.fixture(scope="module")
def frames():
    """Six frames of each fixed split (v2: cameras from 320x240 to 1280x720)."""
    return {k: [SyntheticHandGenerator(c).frame(i) for i in range(6)] for k, c in SPLITS.items()}


@pytest.fixture(scope="module")
def localisers():
    torch.set_num_threads(1)
    return {rt: DetectorLocaliser(DetectorLocaliserConfig(use_tracking=False, runtime=rt))
            for rt in ("torch", "onnxruntime")}


# ------------------------------------------------------------------ runtimes
@needs_ort
@pytest.mark.parametrize("split", list(SPLITS))
def test_runtimes_give_the_same_centres(localisers, frames, split):
    """Packaged detector + refiner: every candidate (low threshold) within 0.01 mm."""
    t, o = localisers["torch"], localisers["onnxruntime"]
    assert (t.runtime, o.runtime) == ("torch", "onnxruntime")
    located = 0
    for f in frames[split]:
        ct, co = t.locate(f.depth_mm, f.intrinsics), o.locate(f.depth_mm, f.intrinsics)
        assert (ct is None) == (co is None)
        if ct is not None:
            located += 1
            np.testing.assert_allclose(co, ct, rtol=0, atol=0.01)
        ft = t.candidates(f.depth_mm, f.intrinsics, 0.05)
        fo = o.candidates(f.depth_mm, f.intrinsics, 0.05)
        assert len(ft) == len(fo)
        for (st, ct), (so, co) in zip(ft, fo):
            assert so == pytest.approx(st, abs=1e-4)
            np.testing.assert_allclose(co, ct, rtol=0, atol=0.01)
    assert located >= 5


@needs_ort
def test_auto_prefers_onnxruntime_and_dynamic_shapes():
    """A small random net without refiner: same heat-map from both, on odd image sizes."""
    torch.manual_seed(0)
    net, ref = HandDetectorNet(DetectorConfig(width=3)).eval(), RefineNet(width=4).eval()
    loc = DetectorLocaliser(DetectorLocaliserConfig(), net=net, refiner=ref)
    assert loc.runtime == "onnxruntime"
    for h, w in ((37, 50), (64, 81), (121, 162)):
        x = np.random.default_rng(h).random((1, 3, h, w), dtype=np.float32)
        with torch.inference_mode():
            want = net(torch.from_numpy(x))[0].numpy()
        got = loc.runner.heat(x)
        assert got.shape == want.shape == (2, -(-h // STRIDE), -(-w // STRIDE))
        np.testing.assert_allclose(got, want, atol=1e-4)
    p = np.random.default_rng(1).random((3, 3, PATCH, PATCH), dtype=np.float32)
    with torch.inference_mode():
        np.testing.assert_allclose(loc.runner.refine(p), ref(torch.from_numpy(p)).numpy(),
                                   atol=1e-4)


def test_runtime_option_errors(monkeypatch):
    with pytest.raises(ValueError, match="runtime must be one of"):
        DetectorLocaliserConfig(runtime="tensorrt")
    net = HandDetectorNet(DetectorConfig(width=2))

    def missing():
        raise ImportError("backend 'onnxruntime' needs the onnxruntime package (pip install "
                          "onnxruntime): No module named 'onnxruntime'")

    monkeypatch.setattr(onnx_model, "import_onnxruntime", missing)
    with pytest.raises(ValueError, match="runtime 'onnxruntime'.*pip install onnxruntime"):
        DetectorLocaliser(DetectorLocaliserConfig(runtime="onnxruntime"), net=net)
    assert DetectorLocaliser(DetectorLocaliserConfig(runtime="auto"), net=net).runtime == "torch"
    assert DetectorLocaliser(DetectorLocaliserConfig(runtime="torch"), net=net).runtime == "torch"


@needs_ort
def test_failed_export_errors_or_falls_back(monkeypatch):
    import vvhand_core.onnx_export as onnx_export

    def broken(*args, **kwargs):
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(onnx_export, "export_module", broken)
    net = HandDetectorNet(DetectorConfig(width=2))
    with pytest.raises(ValueError, match="runtime 'onnxruntime'.*exporter broke"):
        DetectorLocaliser(DetectorLocaliserConfig(runtime="onnxruntime"), net=net)
    with pytest.warns(RuntimeWarning, match="using torch"):
        loc = DetectorLocaliser(DetectorLocaliserConfig(runtime="auto"), net=net)
    assert isinstance(loc.runner, det_runtime.TorchRunner)


# ------------------------------------------------------------------ the numpy rewrite
def ref_canonical_depth(depth_mm, intr, focal_px):
    cam = canonical_camera(intr, focal_px)
    sx, sy = cam.fx / intr.fx, cam.fy / intr.fy
    cols = np.clip(np.rint((np.arange(cam.width) + 0.5) / sx - 0.5), 0, intr.width - 1)
    rows = np.clip(np.rint((np.arange(cam.height) + 0.5) / sy - 0.5), 0, intr.height - 1)
    d = np.asarray(depth_mm)[rows.astype(np.intp)[:, None], cols.astype(np.intp)[None, :]]
    d = d.astype(np.float32)
    return np.where(np.isfinite(d), d, np.float32(0)), cam


def ref_encode_input(d, lo, hi, near_mm=None):
    d = np.asarray(d, dtype=np.float32)
    valid = (d >= lo) & (d <= hi)
    z = np.where(valid, d, np.float32(0))
    near = near_mm
    if near is None:
        near = float(np.percentile(d[valid], 1.0)) if valid.any() else 0.0
    rel = np.where(valid, np.clip((z - near) / 300.0, 0.0, 3.0), np.float32(0))
    return np.stack([valid.astype(np.float32), z / np.float32(1000.0), rel.astype(np.float32)])


def ref_patch_at(depth, u0, v0, lo, hi):
    h, w = depth.shape
    half = PATCH // 2
    out = np.zeros((PATCH, PATCH), np.float32)
    y0, x0 = v0 - half, u0 - half
    ys, xs, ye, xe = max(y0, 0), max(x0, 0), min(y0 + PATCH, h), min(x0 + PATCH, w)
    if ys < ye and xs < xe:
        out[ys - y0:ye - y0, xs - x0:xe - x0] = depth[ys:ye, xs:xe]
    valid = (out >= lo) & (out <= hi)
    core = slice(half - REF_RADIUS, half + REF_RADIUS + 1)
    vals = out[core, core][valid[core, core]]
    if vals.size == 0:
        return None
    z_ref = float(np.percentile(vals, 20.0))
    rel = np.where(valid, np.clip((out - z_ref) / 100.0, -3.0, 3.0), 0.0)
    return np.stack([valid.astype(np.float32), rel.astype(np.float32),
                     np.full_like(out, z_ref / 1000.0)]), z_ref


def ref_find_peaks(out, threshold, max_peaks):
    heat = torch.sigmoid(out[0])
    pooled = F.max_pool2d(heat[None, None], 3, 1, 1)[0, 0]
    idx = torch.nonzero((heat == pooled) & (heat >= threshold))
    scores = heat[idx[:, 0], idx[:, 1]]
    found = []
    for k in torch.argsort(scores, descending=True)[:max_peaks].tolist():
        i, j = int(idx[k, 0]), int(idx[k, 1])
        win = heat[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2]
        ii = torch.arange(max(i - 1, 0), max(i - 1, 0) + win.shape[0], dtype=heat.dtype)
        jj = torch.arange(max(j - 1, 0), max(j - 1, 0) + win.shape[1], dtype=heat.dtype)
        tot = win.sum()
        found.append((float(scores[k]), float((win * jj[None]).sum() / tot) * STRIDE,
                      float((win * ii[:, None]).sum() / tot) * STRIDE, float(out[1, i, j])))
    return found


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_percentile_linear_is_numpys_percentile():
    rng = np.random.default_rng(0)
    for trial in range(300):
        dtype = (np.float32, np.float64, np.uint16, np.int64)[trial % 4]
        vals = rng.uniform(200, 1200, int(rng.integers(1, 2000))).astype(dtype)
        if trial % 5 == 0:  # many ties
            vals = (np.round(vals / 50) * 50).astype(dtype)
        for q in (0.0, 1.0, 5.0, 20.0, 50.0, 99.9, 100.0, float(rng.uniform(0, 100))):
            assert percentile_linear(vals, q) == float(np.percentile(vals, q)), (dtype, q)


def test_numpy_code_matches_the_reference(frames):
    """Canonical depth, encoded input, patches and surface depth: identical bits."""
    cfg = DetectorConfig()
    rng = np.random.default_rng(1)
    for f in frames["v1"][:3] + frames["v2"][:3]:
        with_nan = f.depth_mm.astype(np.float32)
        with_nan[::7, ::5] = np.nan
        for depth in (f.depth_mm, with_nan):
            got, want = canonical_depth(depth, f.intrinsics, 120.0), \
                ref_canonical_depth(depth, f.intrinsics, 120.0)
            assert same_bits(got[0], want[0]) and got[1] == want[1]
        canon = got[0]
        assert same_bits(encode_input(canon, 200, 1200), ref_encode_input(canon, 200, 1200))
        for near in (612.5, 0.0, -50.0):
            crop = canon[10:70, 20:90]
            assert same_bits(encode_input(crop, 200, 1200, near),
                             ref_encode_input(crop, 200, 1200, near))
        for u, v in rng.uniform(-30, 190, (12, 2)):
            u0, v0 = int(round(u)), int(round(v))
            got, want = patch_at(canon, u0, v0, 200, 1200), ref_patch_at(canon, u0, v0, 200, 1200)
            assert (got is None) == (want is None)
            if got is not None:
                assert same_bits(got[0], want[0]) and got[1] == want[1]
            r, (h, w) = cfg.surface_radius, canon.shape
            win = canon[max(v0 - r, 0):min(v0 + r + 1, h), max(u0 - r, 0):min(u0 + r + 1, w)]
            vals = win[(win >= 200) & (win <= 1200)]
            want = float(np.percentile(vals, cfg.surface_percentile)) if vals.size else None
            assert surface_depth_mm(canon, u, v, cfg, 200, 1200) == want


def test_find_peaks_matches_the_reference():
    """Same peaks, scores, order and dz; positions within 1e-4 px (float32 sum order)."""
    rng = np.random.default_rng(2)
    compared = 0
    for trial in range(60):
        h, w = int(rng.integers(5, 50)), int(rng.integers(5, 50))
        out = torch.from_numpy(rng.normal(-2, 2, (2, h, w)).astype(np.float32))
        if trial % 3 == 0:
            out[0, 0, :] = 3.0  # plateaus and borders
        for thr in (0.05, 0.3, 0.7):
            want = ref_find_peaks(out, thr, 5)
            for got in (find_peaks(out, thr, 5), find_peaks(out.numpy(), thr, 5)):
                assert [(p.score, p.dz) for p in got] == [(s, dz) for s, _, _, dz in want]
                np.testing.assert_allclose([(p.u, p.v) for p in got],
                                           np.reshape([(u, v) for _, u, v, _ in want], (-1, 2)),
                                           rtol=0, atol=1e-4)
                compared += len(got)
    assert compared > 300


def test_canonical_index_is_cached_per_camera():
    loc = DetectorLocaliser(DetectorLocaliserConfig(runtime="torch"),
                            net=HandDetectorNet(DetectorConfig(width=2)))
    a = Intrinsics(475.0, 470.0, 319.5, 239.5, 640, 480)
    b = Intrinsics(240.0, 240.0, 159.5, 119.5, 320, 240)
    for intr in (a, b, a):
        loc.candidates(np.full((intr.height, intr.width), 700, np.uint16), intr, 0.3)
    assert len(loc._index) == 2
    with pytest.raises(IndexError):
        canonical_depth(np.zeros((100, 100), np.uint16), a, 120.0)


@needs_ort
def test_eval_cli_times_both_runtimes_without_writing(tmp_path, monkeypatch, capsys):
    """`vvhand detector eval --no-results`: both runtimes, their ratio, nothing written."""
    import argparse

    from vvhand_core.detector import cli

    results = tmp_path / "results.md"
    monkeypatch.setenv("VVHAND_RESULTS", str(results))
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["eval", "--frames", "2", "--no-results"])) == 0
    out = capsys.readouterr().out
    for name in ("detector (learned, torch)", "detector (learned, onnxruntime)",
                 "detector, hand_threshold 1 (learned, torch)", "geometric (nearest object)"):
        assert out.count(name) == 2, name
    assert out.count("onnxruntime / torch = ") == 2
    assert not results.exists()
