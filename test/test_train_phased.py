"""The phased CPU recipe: k-of-M views, the teacher at any crop size, depth units, the
schedule, the frame cache, resume == uninterrupted, the CLI end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vvhand_core.checkpoint import load_checkpoint
from vvhand_core.crop import CropConfig
from vvhand_core.jointspace import camera_mm_to_crop_uvd, crop_uvd_to_camera_mm, depth_scale
from vvhand_core.losses import a2j_loss
from vvhand_core.models import A2JConfig, ModelConfig, build_models, teacher_features
from vvhand_core.models.a2j import A2J, A2JOutput
from vvhand_core.models.configs import with_legacy_defaults
from vvhand_core.skeletons import HANDS2019_21
from vvhand_core.train import cache as cache_mod
from vvhand_core.train import cli
from vvhand_core.train.cache import CachedSamples, open_cache
from vvhand_core.train.config import ConfigError
from vvhand_core.train.configio import load_config
from vvhand_core.train.dist import DistEnv
from vvhand_core.train.phased import run_phased
from vvhand_core.train.phases import build_phased_job
from vvhand_core.train.samples import batch_view_matrices, make_sample
from vvhand_core.train.schedule import lr_factor, phase_plan, slot
from vvhand_core.train.splits import open_split
from vvhand_core.views import view_grid, view_matrices

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "config" / "train_tiny_phased.yaml"
CPU = DistEnv(device=torch.device("cpu"))


def tiny(tmp_path: Path, *overrides: str):
    return load_config("phased", TINY, [f"cache.dir={tmp_path / 'cache'}", *overrides])


class FakeClock:
    """A clock that moves ``dt`` seconds per reading: runs become deterministic."""

    def __init__(self, dt: float) -> None:
        self.t, self.dt = 0.0, dt

    def __call__(self) -> float:
        self.t += self.dt
        return self.t


# ----------------------------------------------------------------------------- views


def test_k_of_m_views_are_distinct_grid_views_and_jitter_stays_close():
    centre = torch.tensor([[10.0, -20.0, 500.0], [0.0, 0.0, 400.0], [5.0, 5.0, 600.0]])
    batch = {"centre_mm": centre}
    grid = view_grid(25)
    full = view_matrices(grid, centre)  # (B, 25, 4, 4)
    mats = batch_view_matrices(batch, grid, None, torch.Generator().manual_seed(0), 3)
    assert mats.shape == (3, 3, 4, 4)
    picks = []
    for b in range(3):
        d = (mats[b, :, None] - full[b, None]).abs().amax(dim=(-1, -2))  # (3, 25)
        assert (d.min(dim=1).values < 1e-4).all()
        idx = d.argmin(dim=1)
        assert len(set(idx.tolist())) == 3
        picks.append(tuple(idx.tolist()))
    assert len(set(picks)) > 1  # frames draw their own views
    again = batch_view_matrices(batch, grid, None, torch.Generator().manual_seed(0), 3)
    assert torch.equal(mats, again)
    jit = batch_view_matrices(batch, grid, None, torch.Generator().manual_seed(0), 3, 5.0)
    rot = jit[..., :3, :3]
    for b in range(3):  # each jittered view lies within ~7.1 degrees of its grid view
        cos = ((rot[b, :, None] * full[b, None, :, :3, :3]).sum(dim=(-1, -2)) - 1) / 2
        ang = torch.rad2deg(torch.arccos(cos.clamp(-1, 1))).min(dim=1).values
        assert (ang < 7.2).all() and (ang > 1e-3).all()
    with pytest.raises(ValueError):
        batch_view_matrices(batch, grid, None, None, 26)


# ----------------------------------------------------------------------------- networks


@pytest.mark.parametrize("crop", [64, 96, 128, 176])
def test_teacher_works_at_every_crop_size(crop):
    cfg = ModelConfig.small(num_candidates=3)
    cfg.a2j = A2JConfig(backbone="resnet18", width=0.125, crop_size=crop, head_layers=1)
    a2j, _, teacher = build_models(cfg, HANDS2019_21)
    out = a2j(torch.randn(2 * 3, 1, crop, crop))
    logits = teacher(teacher_features(out.teacher_input(), 3))
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in teacher.parameters() if p.requires_grad)


def test_teacher_at_176_px_is_the_release_encoder():
    """Ceil-mode pools and edge padding change nothing on 11x11 maps (old checkpoints)."""
    torch.manual_seed(0)
    _, _, teacher = build_models(ModelConfig.small(), HANDS2019_21)
    teacher.eval()
    enc = teacher.encoder
    release = torch.nn.Sequential(enc[0], enc[1], enc[2], torch.nn.MaxPool2d(3, 2), enc[4],
                                  enc[5], enc[6], torch.nn.MaxPool2d(3, 2),
                                  torch.nn.Conv2d(128, enc[8].out_channels, 2))
    release[8].load_state_dict(enc[8].state_dict())
    x = torch.randn(5, 64, 11, 11)
    torch.testing.assert_close(enc(x), release(x), rtol=0, atol=0)


@pytest.mark.parametrize("units", ["normalised", "pixels"])
def test_depth_units_round_trip_through_targets_decode_and_loss(units):
    """Targets encoded in the network's depth units decode back to the camera joints."""
    s = 128
    a2j = A2J(A2JConfig(backbone="resnet18", width=0.125, crop_size=s, head_layers=1,
                        depth_units=units))
    f = depth_scale(units, s)
    assert a2j.depth_scale == f == (1.0 if units == "normalised" else 64.0)
    centre = torch.tensor([[15.0, -10.0, 450.0]])
    k = torch.tensor([[475.0, 475.0, 319.5, 239.5]])
    from vvhand_core.crop import crop_transform

    t = crop_transform(centre, k, 250.0, s)
    joints = centre[:, None] + torch.tensor([[[20.0, 5.0, -30.0], [-40.0, 30.0, 45.0]]])
    target = camera_mm_to_crop_uvd(joints, t, k, centre[:, 2], 250.0)  # (1, 2, 3) d_n
    a, j = a2j.anchors.shape[0], 2
    near = ((a2j.anchors[:, None] - target[0, None, :, :2]).norm(dim=-1)).argmin(dim=0)
    resp = torch.full((1, a, j), -30.0)
    resp[0, near, torch.arange(j)] = 30.0
    offsets = (target[0, :, :2][None] - a2j.anchors[:, None])[None]  # (1, A, J, 2)
    depth = (target[..., 2] * f).expand(1, a, j).clone()
    out = A2JOutput(resp, offsets, depth, (s // 16, s // 16))
    uvd = a2j.decode(out)[0]
    torch.testing.assert_close(uvd, target[0:1], atol=1e-4, rtol=0)
    back = crop_uvd_to_camera_mm(uvd, t, k, centre[:, 2], 250.0)
    torch.testing.assert_close(back, joints, atol=1e-2, rtol=0)
    assert a2j_loss(out, a2j.anchors, target, 3.0, f).depth < 1e-8
    if units == "pixels":  # the same output read with the old scale is far off
        assert a2j_loss(out, a2j.anchors, target, 3.0, 1.0).depth > 1.0


def test_depth_gradient_per_mm_is_like_uv_in_pixel_units():
    """A 20 mm depth error: ~100x weaker gradient per mm in normalised units than u, v's."""
    s, cube = 176, 250.0
    px_per_mm = s / cube

    def grad_per_mm(f: float) -> float:
        err_mm = 20.0
        d = torch.tensor([err_mm / (cube / 2) * f], requires_grad=True)
        torch.nn.functional.smooth_l1_loss(d, torch.zeros(1), beta=1.0).backward()
        return float(d.grad) * f / (cube / 2)  # d loss / d mm

    uv = 1.0 * px_per_mm * 0.5  # linear zone, weight 0.5, per mm
    old, new = grad_per_mm(depth_scale("normalised", s)), grad_per_mm(depth_scale("pixels", s))
    assert uv / old > 50 and 0.5 < new / uv < 3


def test_old_checkpoints_keep_normalised_depth_and_run_in_the_pipeline():
    """The model shipped on 2026-11-24 (kept as test data; its config has no depth_units)."""
    from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
    from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline

    legacy = REPO / "test" / "data" / "legacy_model_2026-11-24.pt"
    loaded = load_checkpoint(legacy)
    assert loaded.model_config.a2j.depth_units == "normalised"
    assert loaded.a2j.depth_scale == 1.0
    assert ModelConfig.from_dict({"a2j": {}}).a2j.depth_units == "pixels"  # training default
    assert with_legacy_defaults({"a2j": {"depth_units": "pixels"}})["a2j"]["depth_units"] == \
        "pixels"
    frame = SyntheticHandGenerator(SynthConfig(seed=3)).frame(0)
    pipe = VirtualViewPipeline.from_checkpoint(
        legacy, PipelineConfig(selector="student", num_views=3, device="cpu",
                               renderer="torch", track=False))
    res = pipe.run_batch(frame.depth_mm[None], frame.intrinsics,
                         frame.joints_mm.mean(0)[None].astype(np.float64))[0]
    err = np.linalg.norm(res.joints_mm - frame.joints_mm, axis=-1).mean()
    assert err < 60.0, err


# ----------------------------------------------------------------------------- schedule


def test_schedule_warmup_middle_and_end():
    w, f = 0.1, 0.02
    assert lr_factor(0.0, w, f) == pytest.approx(f)
    assert lr_factor(0.05, w, f) == pytest.approx(f + (1 - f) * 0.5)
    assert lr_factor(0.1, w, f) == pytest.approx(1.0)
    assert lr_factor(0.55, w, f) == pytest.approx((1 + f) / 2)  # half-way down the cosine
    assert lr_factor(1.0, w, f) == pytest.approx(f)
    assert lr_factor(2.0, w, f) == pytest.approx(f)
    vals = [lr_factor(p / 100, w, f) for p in range(10, 101)]
    assert all(a >= b for a, b in zip(vals, vals[1:]))
    plan = phase_plan([("a2j", 0.75), ("teacher", 0.15), ("student", 0.1)], 1800.0)
    assert [(p.start_s, p.end_s) for p in plan] == [(0, 1350), (1350, 1620), (1620, 1800)]
    assert plan[1].progress(1485.0) == pytest.approx(0.5)
    assert slot(179.9, 60) == 2 and slot(180.0, 60) == 3


# ----------------------------------------------------------------------------- cache


def test_frame_cache_is_keyed_by_the_source_and_reused(tmp_path, monkeypatch):
    cfg = tiny(tmp_path)
    frames = open_split(cfg.data, "train")
    built = []
    real_build = cache_mod.build_cache
    monkeypatch.setattr(cache_mod, "build_cache",
                        lambda *a, **k: built.append(a[1]) or real_build(*a, **k))
    root = tmp_path / "c"
    first = open_cache(frames, cfg.data, 300.0, 128, root, progress=False)
    again = open_cache(frames, cfg.data, 300.0, 128, root, progress=False)
    assert first.folder == again.folder and len(built) == 1
    assert json.loads((first.folder / "meta.json").read_text())["source"]["synth"]["seed"] == 101
    for change in ("data.train_seed=103", "data.synth={background: none, noise_sigma_mm: 2.0}"):
        other = tiny(tmp_path, change)
        c = open_cache(open_split(other.data, "train"), other.data, 300.0, 128, root,
                       progress=False)
        assert c.folder != first.folder
    assert open_cache(frames, cfg.data, 300.0, 144, root, progress=False).folder != first.folder
    assert len(built) == 4 and len(list(root.iterdir())) == 4


@pytest.mark.parametrize("size", [96, 128])
def test_cached_samples_match_full_frame_crops(tmp_path, size):
    cfg = tiny(tmp_path)
    frames = open_split(cfg.data, "train")
    cache = open_cache(frames, cfg.data, 300.0, 160, tmp_path / "c", progress=False)
    crop = CropConfig(250.0, size)
    plain = CachedSamples(cache, crop)
    for i in range(3):
        a, b = plain[i], make_sample(frames[i], crop)
        torch.testing.assert_close(a["t"], b["t"], atol=1e-3, rtol=1e-5)
        for key in ("k", "centre_mm", "joints_mm", "cube_mm"):
            torch.testing.assert_close(a[key], b[key])
        fg = (a["crop_mm"] > 0) | (b["crop_mm"] > 0)
        close = ((a["crop_mm"] - b["crop_mm"]).abs() < 5)[fg].float().mean()
        assert close > 0.85, float(close)
    aug = CachedSamples(cache, crop, cfg.augment, seed=3)
    x, y, z = aug[(1, 2)], aug[(1, 2)], aug[(2, 2)]
    assert torch.equal(x["crop_mm"], y["crop_mm"]) and not torch.equal(x["cube_mm"], z["cube_mm"])
    assert (x["centre_mm"] - plain[2]["centre_mm"]).abs().max() <= 5.0 + 1e-4


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize("override, words", [
    ("phases.a2j.share=0.6", "add up"),
    ("phases.a2j.views_per_frame=4", "views_per_frame"),
    ("optim.checkpoint_every_min=11", "checkpoint_every_min"),
    ("cache.window_mm=260", "window_mm"),
    ("cache.px=64", "cache.px"),
    ("phases.student.frames=7", "frames"),
    ("optim.time_budget_min=0", "time_budget_min"),
])
def test_phased_config_errors_name_the_key(tmp_path, override, words):
    with pytest.raises(ConfigError, match=words):
        tiny(tmp_path, override)


def test_cpu_recipe_config_loads():
    cfg = load_config("phased", REPO / "config" / "train_cpu.yaml")
    assert cfg.phases.a2j.views_per_frame == 3 and cfg.model.num_candidates == 25
    assert cfg.optim.checkpoint_every_min <= 10 and cfg.model.a2j.depth_units == "pixels"


# ----------------------------------------------------------------------------- runs


def _records(out: Path) -> list[dict]:
    lines = (out / "train_log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] != "checkpoint"]


def test_resume_follows_the_uninterrupted_curve(tmp_path):
    """Two legs (stopped in the A2J and teacher phases) == one uninterrupted run."""
    cfg = tiny(tmp_path, "optim.time_budget_min=0.05", "optim.validate_every_min=0.02",
               "optim.checkpoint_every_min=0.015")
    dt = 0.06
    whole = run_phased(build_phased_job(cfg, CPU, progress=False), CPU, tmp_path / "a",
                       clock=FakeClock(dt), progress=False)
    assert whole.finished
    legs = []
    for i, stop in enumerate([0.011, 0.016, 0.0]):
        job = build_phased_job(cfg, CPU, progress=False)
        legs.append(run_phased(job, CPU, tmp_path / "b", resume=i > 0, stop_after_min=stop,
                               clock=FakeClock(dt), progress=False))
        with (tmp_path / "b" / "train_log.jsonl").open("a") as fh:  # work lost in a kill
            if i < 2:
                fh.write(json.dumps({"type": "step", "phase": "x", "step": 10**6,
                                     "run_time_s": 0.0}) + "\n")
    assert [leg.finished for leg in legs] == [False, False, True]
    a, b = _records(tmp_path / "a"), _records(tmp_path / "b")
    phases = [r["phase"] for r in b if r["type"] == "step"]
    assert {"a2j", "teacher", "student"} <= set(phases)
    plan = phase_plan([("a2j", 0.5), ("teacher", 0.3), ("student", 0.2)], 3.0)
    assert legs[0].run_time_s < plan[0].end_s < legs[1].run_time_s < plan[1].end_s
    assert len(a) == len(b) and a == b
    wa, wb = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" /
                                                                           "last.pt")
    for na, nb in zip((wa.a2j, wa.teacher, wa.student), (wb.a2j, wb.teacher, wb.student)):
        for x, y in zip(na.state_dict().values(), nb.state_dict().values()):
            assert torch.equal(x, y)
    vals = [r for r in a if r["type"] == "val"]
    assert {r["phase"] for r in vals} == {"a2j", "teacher", "student"}
    lrs = [r["lr"] for r in a if r["type"] == "step" and r["phase"] == "a2j"]
    assert lrs[-1] < max(lrs)  # the cosine came down by the end of the phase


def test_init_from_starts_a_leg_from_an_earlier_run(tmp_path):
    """init_from: the networks start as the checkpoint's; a different model is refused."""
    from vvhand_core.checkpoint import save_checkpoint

    cfg = tiny(tmp_path, "optim.time_budget_min=0.02")
    first = build_phased_job(cfg, CPU, progress=False)
    for net in first.networks():  # distinct from any seeded initialisation
        for p in net.parameters():
            p.data.uniform_(-0.1, 0.1)
    ckpt = tmp_path / "prev.pt"
    save_checkpoint(ckpt, first.a2j, first.student, first.teacher, first.skeleton,
                    cfg.model, {"stage": "phased", "phase": "student", "steps": 7})
    fresh = build_phased_job(cfg, CPU, progress=False)
    warm = build_phased_job(tiny(tmp_path, f"init_from={ckpt}"), CPU, progress=False)
    assert warm.meta["init_from"] == {"path": str(ckpt), "stage": "phased",
                                      "phase": "student", "steps": 7}
    for a, f, w in zip(first.networks(), fresh.networks(), warm.networks()):
        for key, x in a.named_parameters():
            assert torch.equal(x, dict(w.named_parameters())[key]), key
            assert not torch.equal(x, dict(f.named_parameters())[key]), key
    with pytest.raises(ConfigError, match="init_from .* differs"):
        build_phased_job(tiny(tmp_path, f"init_from={ckpt}", "model.a2j.width=0.25"), CPU,
                         progress=False)


def test_cli_phased_end_to_end_writes_a_deployable_model(tmp_path):
    from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline

    out = tmp_path / "run"
    assert cli.main(["phased", "--config", str(TINY), "--out", str(out),
                     "--set", f"cache.dir={tmp_path / 'cache'}",
                     "--set", "optim.time_budget_min=0.04"]) == 0
    assert {"last.pt", "best.pt", "last_state.pt", "config.yaml", "train_log.jsonl",
            "teacher_logits.npy"} <= {p.name for p in out.iterdir()}
    best = load_checkpoint(out / "best.pt")
    assert best.meta["stage"] == "phased" and best.meta["phase"] == "student"
    assert math.isfinite(best.meta["val_mean_error_mm"])
    pipe = VirtualViewPipeline.from_checkpoint(
        out / "best.pt", PipelineConfig(selector="student", num_views=2, device="cpu",
                                        renderer="torch", track=False))
    assert pipe.crop_size == 96
    assert cli.main(["phased", "--config", str(TINY), "--out", str(out), "--resume",
                     "--set", f"cache.dir={tmp_path / 'cache'}"]) == 0  # finished: no-op
    assert cli.main(["stage1", "--stop-after-min", "1"]) == 2


def test_training_curves_script_end_to_end(tmp_path):
    """The curves script trains a tiny plan (seconds per run), plots and tabulates."""
    import subprocess
    import sys

    results = tmp_path / "results.md"
    plan = tmp_path / "plan.yaml"
    cache = f"cache.dir={tmp_path / 'cache'}"
    plan.write_text(
        "budget_min: 0.03\nruns:\n"
        f"  - {{name: tiny stage 1, stage: stage1, config: {REPO / 'config/train_tiny.yaml'},"
        " set: ['data.val_frames=1', 'optim.steps_per_epoch=1', 'optim.epochs=2']}\n"
        f"  - {{name: tiny recipe, stage: phased, config: {TINY}, set: ['{cache}']}}\n")
    png = tmp_path / "curve.png"
    # one thread, as the rest of the suite (conftest): two on a busy 2-core machine crawl
    env = {**__import__("os").environ, "VVHAND_RESULTS": str(results), "OMP_NUM_THREADS": "1"}

    def script(*extra):
        return subprocess.run([str(REPO / "scripts" / "training_curves.sh"), "--plan", str(plan),
                               "--out", str(tmp_path / "runs"), "--plot", str(png), *extra],
                              env={**env, "PYTHON": sys.executable}, capture_output=True,
                              text=True, timeout=600)

    # in legs: run 1 first (run 0 untouched), then run 0; the second table covers both
    proc = script("--runs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "runs" / "1_phased").is_dir()
    assert not (tmp_path / "runs" / "0_stage1").exists()
    results.unlink()
    proc = script("--runs", "0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert png.stat().st_size > 10_000
    text = results.read_text()
    assert "Learning curves (0.03 min per run)" in text
    assert "| tiny stage 1 |" in text and "| tiny recipe |" in text
    row = next(line for line in text.splitlines() if line.startswith("| tiny recipe |"))
    assert "student 2" in row and row.split("|")[-2].strip() != "-"
    from vvhand_core.train.curves import curve

    points = curve(tmp_path / "runs" / "1_phased")
    assert [p["phase"] for p in points][-1] == "student"
    assert all(b["minutes"] >= a["minutes"] for a, b in zip(points, points[1:]))
