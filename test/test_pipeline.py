"""VirtualViewPipeline: each mode renders the views it should, wiring, batching, errors."""

import warnings

import numpy as np
import pytest
import torch

from vvhand_core.camera import Intrinsics
from vvhand_core.checkpoint import CheckpointError, save_random_checkpoint
from vvhand_core.crop import CropConfig, crop_depth, normalise
from vvhand_core.jointspace import crop_uvd_to_camera_mm
from vvhand_core.models import ModelConfig, build_models
from vvhand_core.pipeline import STAGES, PipelineConfig, VirtualViewPipeline
from vvhand_core.render.scenes import compose, hand_like, pixel_rays, plane_depth
from vvhand_core.side import SideConfig
from vvhand_core.skeletons import HANDS2019_21, NYU_14

INTR = Intrinsics(240.0, 240.0, 160.0, 120.0, 320, 240)


def hand_frame(centre=(10.0, -5.0, 420.0), wall=True):
    rays = pixel_rays((INTR.fx, INTR.fy, INTR.cx, INTR.cy), INTR.height, INTR.width)
    parts = [hand_like(rays, centre)]
    if wall:
        parts.append(plane_depth(rays, (0.0, 0.0, 1000.0), (0.0, 0.0, -1.0)))
    return np.round(compose(*parts).numpy()).astype(np.uint16)


class CountingRenderer:
    """Wraps the real renderer and records how many views each call renders."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def render(self, crop_mm, t, k, view_mats):
        self.calls.append(view_mats.shape[1])
        return self.inner.render(crop_mm, t, k, view_mats)


def make_pipeline(skeleton=HANDS2019_21, **cfg):
    torch.manual_seed(0)
    mcfg = ModelConfig.small(skeleton.num_joints, "resnet18", 0.125, 25)
    a2j, student, teacher = build_models(mcfg, skeleton)
    config = PipelineConfig(device="cpu", renderer="torch", **cfg)
    return VirtualViewPipeline(a2j, student, teacher, skeleton, config, 25)


@pytest.fixture(scope="module")
def pipe():
    return make_pipeline()


@pytest.fixture(scope="module")
def frame():
    return hand_frame()


@pytest.mark.parametrize("selector,n,rendered", [
    ("student", 1, [1]), ("student", 3, [3]), ("student", 9, [9]),
    ("teacher", 3, [25]), ("uniform", 3, [3]), ("uniform", 25, [25]),
])
def test_each_mode_renders_the_views_it_should(pipe, frame, selector, n, rendered):
    pipe.configure(selector=selector, num_views=n, fusion="confidence")
    spy = CountingRenderer(pipe.renderer)
    pipe.ops.renderer = spy
    try:
        res = pipe.run(frame, INTR)
    finally:
        pipe.ops.renderer = spy.inner
    assert res.valid, res.message
    assert spy.calls == rendered
    assert res.selected_views.shape == (n,) and res.selected_views.dtype == np.int64
    assert len(set(res.selected_views.tolist())) == n
    assert res.weights.shape == (n,) and abs(res.weights.sum() - 1) < 1e-5
    assert res.logits.shape == (25,) and res.num_candidates == 25
    assert res.joints_mm.shape == (21, 3) and res.joints_mm.dtype == np.float32
    assert np.isfinite(res.joints_mm).all()
    assert set(res.timings_ms) == set(STAGES)
    assert all(v >= 0 for v in res.timings_ms.values())
    assert res.timings_ms["total"] >= max(v for k, v in res.timings_ms.items() if k != "total")
    if selector == "uniform":
        assert res.score == 1.0 and not res.logits.any()
    else:
        top = np.argsort(-res.logits, kind="stable")[:n]
        assert set(top.tolist()) == set(res.selected_views.tolist())
        p = np.exp(res.logits - res.logits.max())
        p /= p.sum()
        assert res.score == pytest.approx(p[res.selected_views].sum(), abs=1e-5)
        sel = res.logits[res.selected_views]
        w = np.exp(sel - sel.max())
        assert np.allclose(res.weights, w / w.sum(), atol=1e-5)


def test_uniform_views_are_m_grid_indices(pipe, frame):
    # 15 = 3 elevations (-60, 0, 60) x 5 azimuths -> rows 0, 2, 4 of the 5x5 grid
    expected = {1: [12], 3: [10, 12, 14], 9: [0, 2, 4, 10, 12, 14, 20, 22, 24],
                15: [0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 20, 21, 22, 23, 24]}
    for n, idx in expected.items():
        pipe.configure(selector="uniform", num_views=n, fusion="average")
        res = pipe.run(frame, INTR)
        assert res.selected_views.tolist() == idx
        assert np.allclose(res.weights, 1.0 / n)


def test_identity_view_matches_manual_computation(pipe, frame):
    """uniform-1 = A2J on the original crop, mapped to camera mm: check the wiring."""
    pipe.configure(selector="uniform", num_views=1, fusion="average", cube_mm=240.0)
    centre = np.array([12.0, -3.0, 425.0])
    res = pipe.run(frame, INTR, centre_mm=centre)
    pipe.configure(cube_mm=250.0)
    k = INTR.as_tensor()[None]
    c = torch.tensor(centre, dtype=torch.float32)[None]
    crop, t = crop_depth(torch.from_numpy(frame.astype(np.float32))[None], c, k,
                         CropConfig(240.0, 176))
    with torch.inference_mode():
        uvd = pipe.a2j.predict(normalise(crop, c[:, 2], 240.0)[:, None])
    joints = crop_uvd_to_camera_mm(uvd, t, k, c[:, 2], 240.0)[0].numpy()
    assert res.valid and res.cube_mm == 240.0
    assert np.allclose(res.centre_mm, centre)
    assert np.allclose(res.joints_mm, joints, atol=1e-3)


def test_no_hand_gives_invalid_result(pipe):
    res = pipe.run(np.zeros((240, 320), np.uint16), INTR)
    assert not res.valid and "no hand" in res.message
    assert res.joints_mm.shape == (21, 3) and not res.joints_mm.any()
    assert res.selected_views.shape == (0,)
    nan_far = np.full((240, 320), np.nan, np.float32)
    assert not pipe.run(nan_far, INTR).valid


def test_read_only_float_input_with_nan(pipe, frame):
    pipe.configure(selector="student", num_views=3, fusion="confidence")
    d = frame.astype(np.float32)
    d[0, :50] = np.nan
    d.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = pipe.run(d, INTR)
    assert res.valid and np.isfinite(res.joints_mm).all()


def test_configure_validates(pipe):
    pipe.configure(selector="student", num_views=3, fusion="confidence")
    for bad in [dict(selector="oracle"), dict(num_views=0), dict(num_views=26),
                dict(selector="uniform", num_views=4), dict(fusion="max"), dict(cube_mm=-1.0),
                dict(min_depth_mm=900.0, max_depth_mm=300.0), dict(device="tpu"),
                dict(bogus=1)]:
        with pytest.raises(ValueError):
            pipe.configure(**bad)
    assert pipe.config.selector == "student" and pipe.config.num_views == 3  # unchanged
    with pytest.raises(ValueError) as exc:  # only the grids inside the M = 25 candidates
        pipe.configure(selector="uniform", num_views=81)
    assert "[1, 3, 9, 15, 25]" in str(exc.value) and "81" not in str(exc.value)[:-4]
    with pytest.raises(ValueError, match="depth image"):
        pipe.run(np.zeros((10, 10), np.uint16), INTR)


def test_missing_networks_are_reported():
    torch.manual_seed(0)
    a2j, _, teacher = build_models(ModelConfig.small(21, width=0.125), HANDS2019_21)
    pipe = VirtualViewPipeline(a2j, None, teacher, HANDS2019_21,
                               PipelineConfig(selector="teacher", device="cpu"))
    with pytest.raises(ValueError, match="student"):
        pipe.configure(selector="student")
    no_teacher = VirtualViewPipeline(a2j, None, None, HANDS2019_21,
                                     PipelineConfig(selector="uniform", fusion="average"))
    with pytest.raises(ValueError, match="teacher"):
        no_teacher.configure(fusion="confidence")


def test_run_batch_matches_single_runs_and_other_skeleton():
    pipe = make_pipeline(NYU_14, selector="student", num_views=3, track=False)
    frames = np.stack([hand_frame((0.0, 0.0, 400.0)), hand_frame((-30.0, 20.0, 520.0))])
    batch = pipe.run_batch(frames, INTR)
    assert len(batch) == 2
    for f, rb in zip(frames, batch):
        r1 = pipe.run(f, INTR)
        assert rb.valid and r1.valid and rb.joints_mm.shape == (14, 3)
        assert np.allclose(rb.centre_mm, r1.centre_mm)
        assert rb.selected_views.tolist() == r1.selected_views.tolist()
        assert np.allclose(rb.joints_mm, r1.joints_mm, atol=1e-2)
        assert rb.side == "unknown" and rb.right_probability == 0.5  # NYU: no palm joints
    # an invalid frame inside a batch does not disturb the others
    mixed = pipe.run_batch(np.stack([frames[0], np.zeros_like(frames[0])]), INTR)
    assert mixed[0].valid and not mixed[1].valid
    assert np.allclose(mixed[0].joints_mm, batch[0].joints_mm, atol=1e-2)


def test_side_comes_from_the_fused_joints(pipe, frame):
    from vvhand_core.side import decide_side, right_probability, side_score

    r = pipe.run(frame, INTR)
    assert r.valid
    p = right_probability(side_score(r.joints_mm, pipe.skeleton), pipe.config.side)
    assert r.right_probability == pytest.approx(p) and r.side == decide_side(p)
    pipe.configure(side=SideConfig(margin=0.5))  # every probability but 0.5 decides
    r2 = pipe.run(frame, INTR)
    assert r2.side == ("right" if r2.right_probability > 0.5 else "left")


def test_joint_spread_is_the_views_spread_under_the_fusion_weights(pipe, frame):
    from vvhand_core.confidence import joint_spread_mm

    pipe.configure(selector="student", num_views=3)
    r = pipe.run(frame, INTR)
    assert r.valid and r.joints_views_mm.shape == (3, 21, 3)
    np.testing.assert_allclose(r.joint_spread_mm,
                               joint_spread_mm(r.joints_views_mm, r.joints_mm, r.weights),
                               rtol=1e-5, atol=1e-4)
    pipe.configure(side=SideConfig())


def test_from_checkpoint(tmp_path, frame):
    path = save_random_checkpoint(tmp_path / "m.pt", width=0.125, skeleton="nyu_14", seed=1)
    pipe = VirtualViewPipeline.from_checkpoint(path, PipelineConfig(device="cpu", num_views=2))
    assert pipe.skeleton == NYU_14
    res = pipe.run(frame, INTR)
    assert res.valid and res.joints_mm.shape == (14, 3) and res.selected_views.shape == (2,)
    with pytest.raises(CheckpointError, match="does not exist"):
        VirtualViewPipeline.from_checkpoint(tmp_path / "missing.pt")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(frame):
    cpu = make_pipeline(selector="student", num_views=3, track=False)
    gpu = make_pipeline(selector="student", num_views=3, track=False)
    gpu.configure(device="cuda", renderer="auto")
    centre = np.array([10.0, -5.0, 420.0])
    a, b = cpu.run(frame, INTR, centre), gpu.run(frame, INTR, centre)
    assert a.selected_views.tolist() == b.selected_views.tolist()
    assert np.allclose(a.joints_mm, b.joints_mm, atol=0.5)


def test_bench_pipeline_smoke(tmp_path, monkeypatch, capsys):
    import argparse

    from vvhand_core.benchmarks import pipeline as bench

    monkeypatch.setenv("VVHAND_RESULTS", str(tmp_path / "results.md"))
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--backbones", "resnet18", "--modes",
                              "student-1,uniform-3,student-1+mirror,student-1+fit",
                              "--frames", "1",
                              "--warmup", "0", "--width", "0.125", "--device", "cpu",
                              "--renderer", "torch"])
    assert bench.run(args) == 0
    text = (tmp_path / "results.md").read_text()
    assert "Pipeline speed" in text and "| resnet18 | student-1 |" in text
    assert "| resnet18 | uniform-3 |" in text and "1/1" in text
    assert "numpy BLAS threads 1" in text and "--blas-threads 1" in text
    assert "| resnet18 | student-1+mirror | torch |" in text
    column = 5 + list(bench.STAGES).index("fit")  # the fit's ms: only where it ran
    rows = {x.split("|")[2].strip(): x.split("|") for x in text.splitlines()
            if x.startswith("| resnet18 | student-1")}
    assert float(rows["student-1+fit"][column]) > 0 == float(rows["student-1"][column])
    assert bench._parse_mode("teacher-9+mirror") == ("teacher", 9, True, False)
    assert bench._parse_mode("student-3+fit+mirror") == ("student", 3, True, True)
    for bad in ("student", "student-3+flip", "student-3+fit+fit"):
        with pytest.raises(ValueError, match="expected <selector>-<N>"):
            bench._parse_mode(bad)


def test_bench_pipeline_times_a_checkpoint(tmp_path, monkeypatch):
    import argparse

    from vvhand_core.benchmarks import pipeline as bench

    monkeypatch.setenv("VVHAND_RESULTS", str(tmp_path / "results.md"))
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--model", "default", "--modes", "student-3", "--onnx-modes", "",
                              "--frames", "1", "--warmup", "0", "--device", "cpu",
                              "--renderer", "torch"])
    assert bench.run(args) == 0
    text = (tmp_path / "results.md").read_text()
    assert "| model default_model.pt | student-3 | torch |" in text
    assert "the networks of" in text and "--model default" in text


FIRST_FRAME = r"""
import sys
import numpy as np
from vvhand_core.camera import Intrinsics
from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline

frame = np.load(sys.argv[2])
pipe = VirtualViewPipeline.from_checkpoint(sys.argv[1], PipelineConfig(device="cpu"))
fx, fy, cx, cy, w, h = frame["intrinsics"].tolist()
result = pipe.run(frame["depth_mm"], Intrinsics(fx, fy, cx, cy, int(w), int(h)),
                  centre_mm=frame["centre_mm"])
assert result.valid, result.message
print("sympy" in sys.modules)
"""


def test_first_frame_imports_nothing_heavy(checkpoint, hand_frame, tmp_path):
    """torch.broadcast_shapes imported sympy on its first call: ~1 s on a node's first frame.

    The pipeline's own work must not pull in such modules (sympy is torch's, for its
    compiler; nothing of ours needs it)."""
    import subprocess
    import sys

    intr = hand_frame.intrinsics
    path = tmp_path / "frame.npz"
    np.savez(path, depth_mm=hand_frame.depth_mm, centre_mm=hand_frame.joints_mm.mean(0),
             intrinsics=[intr.fx, intr.fy, intr.cx, intr.cy, intr.width, intr.height])
    out = subprocess.run([sys.executable, "-c", FIRST_FRAME, str(checkpoint), str(path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
