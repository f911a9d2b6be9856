"""vvhand_core.lite: the numpy twins against their torch counterparts, and LitePipeline
(numpy + scipy + onnxruntime) against VirtualViewPipeline with backend "onnxruntime",
in a process where importing torch fails.

Tolerances (measured values in the tests' comments):
- crop, crop transform, normalise: bit-identical (the same float32 operations in order).
- view matrices: 2 float32 ulps of the rotation entries (numpy's and torch's float32
  sin/cos may differ by one ulp), 3e-4 mm on translations of up to ~1000 mm.
- renderer (same inputs): the same z-buffer except pixels whose target lies within a
  float32 ulp of a rounding boundary (numpy's and torch's 3-term products may sum in
  other orders): at most 0.1 % of the rendered pixels may differ (measured: none).
- mapping back, fusion: float32 round-off, rtol 1e-6 / atol 1e-4 mm.
- whole pipeline: the same selected views and sides, joints and joint spreads within
  TOL_MM = 0.05 mm, logits, weights and score within 1e-4 (student, uniform) or 3e-3
  (teacher). Measured on these 4 frames: joints 6.1e-5 mm (student-3), 3.7e-4 mm
  (uniform-9), 0.012 mm (teacher-3); teacher logits 8.7e-4, weights 1.9e-4. The student
  sees the identical crop; the teacher scores all 25 rendered views, and numpy's float32
  sin differs from torch's (Sleef) by one ulp for some grid angles, which moves a handful
  of rendered pixels (4 of 254,576 on these frames) and, through this random A2J and
  teacher, the teacher's logits.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from no_torch import BLOCK_TORCH

from vvhand_core.crop import CropConfig, crop_depth, normalise
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.fusion import (
    fuse_camera_joints,
    fusion_weights,
    gather_views,
    select_top_n,
    selection_score,
    to_camera_frame,
)
from vvhand_core.jointspace import crop_uvd_to_camera_mm
from vvhand_core.lite import fusion as lfz
from vvhand_core.lite import geometry as lgeo
from vvhand_core.lite.pipeline import LiteConfig, LitePipeline
from vvhand_core.lite.render import render_views
from vvhand_core.localise import oracle_centre
from vvhand_core.pipeline import HandPoseResult, PipelineConfig, VirtualViewPipeline
from vvhand_core.render.torch_backend import TorchRenderer
from vvhand_core.views import grid_subset_indices, invert_rigid, view_grid, view_matrices

pytest.importorskip("onnxruntime", reason="LitePipeline needs onnxruntime")

TOL_MM = 0.05  # max |joints lite - joints torch pipeline (onnxruntime backend)|
MODES = (("student", 3), ("teacher", 3), ("uniform", 9))
# max |logits|, |weights|, |score| lite - torch pipeline, per selector (module doc)
TOL_SCORES = {"student": 1e-4, "uniform": 1e-4, "teacher": 3e-3}


@pytest.fixture(scope="module")
def frames():
    """Four synthetic frames of one camera (in front of a wall) and their oracle centres."""
    gen = SyntheticHandGenerator(SynthConfig(seed=21, background="wall"))
    fs = [gen.frame(i) for i in range(4)]
    centres = np.stack([oracle_centre(f.joints_mm) for f in fs])
    return np.stack([f.depth_mm for f in fs]), fs[0].intrinsics, centres


def _crops(frames, cube=250.0, size=176):
    depth, intr, centres = frames
    k = np.tile(intr.as_array().astype(np.float32), (len(depth), 1))
    crop, t = lgeo.crop_depth(depth.astype(np.float32), centres.astype(np.float32), k, cube,
                              size)
    return crop, t, k, centres.astype(np.float32)


# ------------------------------------------------------------------ numpy twins
def test_crop_and_normalise_are_bit_identical(frames):
    depth, intr, centres = frames
    jitter = np.random.default_rng(1).normal(0, 40, centres.shape) * [1, 1, 0.5]
    for c, cube, size in ((centres, 250.0, 176), (centres + jitter, 180.0, 64)):
        c32 = c.astype(np.float32)
        k = np.tile(intr.as_array().astype(np.float32), (len(c), 1))
        crop, t = lgeo.crop_depth(depth.astype(np.float32), c32, k, cube, size)
        ref, t_ref = crop_depth(torch.from_numpy(depth.astype(np.float32)),
                                torch.from_numpy(c32), torch.from_numpy(k),
                                CropConfig(cube, size))
        assert (crop > 0).sum() > 1000
        np.testing.assert_array_equal(t, t_ref.numpy())
        np.testing.assert_array_equal(crop, ref.numpy())
        zc = c32[:, 2]
        np.testing.assert_array_equal(lgeo.normalise(crop, zc, cube),
                                      normalise(ref, torch.from_numpy(zc), cube).numpy())


def test_view_matrices_match():
    for m in (1, 3, 9, 15, 25, 81):
        np.testing.assert_array_equal(lgeo.view_grid(m), view_grid(m).numpy())
    for n, m in ((1, 25), (9, 25), (3, 25), (9, 81)):
        np.testing.assert_array_equal(lgeo.grid_subset_indices(n, m),
                                      grid_subset_indices(n, m).numpy())
    rng = np.random.default_rng(2)
    centres = (rng.normal(0, 100, (5, 3)) + [0, 0, 450]).astype(np.float32)
    angles = rng.uniform(-60, 60, (7, 2)).astype(np.float32)
    for ang in (view_grid(25).numpy(), angles):
        mats = lgeo.view_matrices(ang, centres)
        ref = view_matrices(torch.from_numpy(ang), torch.from_numpy(centres)).numpy()
        np.testing.assert_allclose(mats[..., :3, :3], ref[..., :3, :3], rtol=0, atol=2.4e-7)
        np.testing.assert_allclose(mats, ref, rtol=0, atol=3e-4)  # mm (translations)
        np.testing.assert_allclose(lgeo.invert_rigid(mats),
                                   invert_rigid(torch.from_numpy(mats)).numpy(),
                                   rtol=0, atol=3e-4)


def test_renderer_matches_torch(frames):
    crop, t, k, centres = _crops(frames)
    mats = lgeo.view_matrices(lgeo.view_grid(25), centres)  # (B, 25, 4, 4)
    mine = render_views(crop, t, k, mats)
    ref = TorchRenderer("cpu").render(torch.from_numpy(crop), torch.from_numpy(t),
                                      torch.from_numpy(k), torch.from_numpy(mats)).numpy()
    np.testing.assert_array_equal(mine[:, 12], crop)  # the identity view is the crop
    differ = mine != ref
    rendered = (ref > 0).sum()
    print(f"render: {differ.sum()} of {rendered} foreground pixels differ")
    assert rendered > 100_000 and differ.sum() <= 1e-3 * rendered
    empty = np.zeros_like(crop[:1])
    assert not render_views(empty, t[:1], k[:1], mats[:1]).any()


def test_mapping_back_and_fusion_match(frames):
    _, t, k, centres = _crops(frames)
    b, v, j = len(t), 5, 21
    rng = np.random.default_rng(4)
    uvd = np.concatenate((rng.uniform(0, 176, (b, v, j, 2)), rng.uniform(-1, 1, (b, v, j, 1))),
                         -1).astype(np.float32)
    tt, kt, zt = torch.from_numpy(t), torch.from_numpy(k), torch.from_numpy(centres[:, 2])
    cam = lgeo.crop_uvd_to_camera_mm(uvd, t, k, centres[:, 2], 250.0)
    ref = crop_uvd_to_camera_mm(torch.from_numpy(uvd), tt, kt, zt, 250.0).numpy()
    np.testing.assert_allclose(cam, ref, rtol=1e-6, atol=1e-4)
    logits = rng.normal(0, 1, (b, 25)).astype(np.float32)
    lt = torch.from_numpy(logits)
    idx = lfz.select_top_n(logits, v)
    np.testing.assert_array_equal(idx, select_top_n(lt, v).numpy())
    mats = lgeo.view_matrices(lgeo.view_grid(25), centres)
    sel = lfz.gather_views(mats, idx)
    np.testing.assert_array_equal(sel, gather_views(torch.from_numpy(mats),
                                                    torch.from_numpy(idx)).numpy())
    for fusion in ("confidence", "average"):
        w = lfz.fusion_weights(lfz.gather_views(logits, idx), fusion)
        w_ref = fusion_weights(gather_views(lt, torch.from_numpy(idx)), fusion).numpy()
        np.testing.assert_allclose(w, w_ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(lfz.selection_score(logits, idx),
                               selection_score(lt, torch.from_numpy(idx)).numpy(), rtol=1e-6)
    views = lfz.to_camera_frame(cam, lgeo.invert_rigid(sel))
    views_ref = to_camera_frame(torch.from_numpy(cam), invert_rigid(torch.from_numpy(sel)))
    np.testing.assert_allclose(views, views_ref.numpy(), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(lfz.fuse_camera_joints(views, w),
                               fuse_camera_joints(views_ref, torch.from_numpy(w)).numpy(),
                               rtol=1e-6, atol=1e-4)


# ------------------------------------------------------------------ whole pipeline
NO_TORCH = BLOCK_TORCH + r"""
import json, sys, types
import numpy as np

from vvhand_core.lite.pipeline import LiteConfig, LitePipeline

data = np.load(sys.argv[2])
intr = types.SimpleNamespace(**{k: data[k].item() for k in
                                ("fx", "fy", "cx", "cy", "width", "height")})
pipe = LitePipeline.from_onnx(sys.argv[1], LiteConfig(track=False, localiser="geometric",
                                                       num_threads=1))
out = {"modes": {}}
for selector, n in json.loads(sys.argv[3]):
    pipe.configure(selector=selector, num_views=n)
    out["modes"][f"{selector}-{n}"] = [
        {"joints": r.joints_mm.tolist(), "views": r.selected_views.tolist(),
         "weights": r.weights.tolist(), "logits": r.logits.tolist(), "score": r.score,
         "side": r.side, "spread": r.joint_spread_mm.tolist(), "valid": r.valid}
        for r in pipe.run_batch(data["depth"], intr)]  # the geometric localiser, no torch
assert "torch" not in sys.modules
print(json.dumps(out))
"""


def _compare(ref, got):
    """Max differences {joints_mm, logits, weights, spread_mm}; views and sides must agree."""
    worst = dict.fromkeys(("joints_mm", "logits", "weights", "spread_mm"), 0.0)
    for r, g in zip(ref, got, strict=True):
        g = g if isinstance(g, dict) else {
            "joints": g.joints_mm, "views": g.selected_views.tolist(), "weights": g.weights,
            "logits": g.logits, "score": g.score, "side": g.side, "spread": g.joint_spread_mm,
            "valid": g.valid}
        assert r.valid and g["valid"], r.message
        assert r.selected_views.tolist() == g["views"]
        assert g["side"] == r.side
        for key, a, b in (("joints_mm", g["joints"], r.joints_mm), ("logits", g["logits"],
                          r.logits), ("weights", g["weights"], r.weights),
                          ("spread_mm", g["spread"], r.joint_spread_mm)):
            worst[key] = max(worst[key], float(np.abs(np.asarray(a) - b).max()))
        worst["weights"] = max(worst["weights"], abs(g["score"] - r.score))
    return worst


def test_lite_pipeline_without_torch(lite_export_dir, frames, tmp_path):
    depth, intr, _ = frames
    cfg = PipelineConfig(device="cpu", renderer="torch", track=False, backend="onnxruntime",
                         localiser="geometric")
    torch_pipe = VirtualViewPipeline.from_onnx(lite_export_dir, cfg)
    lite = LitePipeline.from_onnx(lite_export_dir, cfg)  # a PipelineConfig is taken by name
    assert lite.config == LiteConfig(track=False, localiser="geometric")
    refs, worst = {}, {}
    for selector, n in MODES:
        torch_pipe.configure(selector=selector, num_views=n)
        lite.configure(selector=selector, num_views=n)
        refs[selector, n] = torch_pipe.run_batch(depth, intr)
        mine = lite.run_batch(depth, intr)
        assert all(type(r) is HandPoseResult for r in mine)  # the torch pipeline's type
        assert set(mine[0].timings_ms) == set(refs[selector, n][0].timings_ms)
        worst["in-process", f"{selector}-{n}"] = _compare(refs[selector, n], mine)
    # frames without a hand, or with a bad given centre: the same invalid results
    blank = np.zeros_like(depth[:1])
    for args in ((blank, intr), (depth[:1], intr, np.array([[0.0, 0.0, np.nan]]))):
        a, b = torch_pipe.run_batch(*args)[0], lite.run_batch(*args)[0]
        assert not a.valid and not b.valid and a.message == b.message
    assert LiteConfig.from_pipeline_config(PipelineConfig()).localiser == "detector"
    with pytest.raises(ValueError, match="localiser must be one of"):
        lite.configure(localiser="oracle")
    for bad in ({"num_views": 26}, {"selector": "oracle"}, {"threads": 2}):
        with pytest.raises(ValueError):
            lite.configure(**bad)
    with pytest.raises(ValueError, match="mirror pass needs torch"):
        lite.configure(mirror=True)
    lite.configure(mirror=False)  # what it lacks, switched off: accepted
    np.savez(tmp_path / "frames.npz", depth=depth, fx=intr.fx, fy=intr.fy,
             cx=intr.cx, cy=intr.cy, width=intr.width, height=intr.height)
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, str(lite_export_dir),
                           str(tmp_path / "frames.npz"), json.dumps(MODES)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    for selector, n in MODES:
        worst["no-torch", f"{selector}-{n}"] = _compare(refs[selector, n],
                                                     got["modes"][f"{selector}-{n}"])
    for k, v in worst.items():
        print(f"max |lite - torch pipeline| {k}: {v}")
    assert max(w["joints_mm"] for w in worst.values()) <= TOL_MM
    assert max(w["spread_mm"] for w in worst.values()) <= TOL_MM
    for (where, mode), w in worst.items():
        assert max(w["logits"], w["weights"]) <= TOL_SCORES[mode.split("-")[0]], (where, mode)
