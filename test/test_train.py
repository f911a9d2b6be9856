"""Training: configs, samples and targets, the stage-1 loss path, overfitting, distillation,
checkpoints / resume, and validation == the inference pipeline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from vvhand_core.camera import project_t
from vvhand_core.checkpoint import load_checkpoint, save_checkpoint
from vvhand_core.crop import CropConfig, apply_crop_transform
from vvhand_core.evaluate import mean_error
from vvhand_core.jointspace import apply_transform
from vvhand_core.models import build_models
from vvhand_core.render import make_renderer
from vvhand_core.skeletons import HANDS2019_21
from vvhand_core.train import cli, stage1, stage2
from vvhand_core.train.config import AugmentConfig, ConfigError, Stage1Config
from vvhand_core.train.configio import load_config, save_config, to_dict
from vvhand_core.train.loop import DistEnv, load_resume_state, run_training
from vvhand_core.train.samples import (
    TrainingSamples,
    batch_view_matrices,
    make_sample,
    render_views,
)
from vvhand_core.train.splits import open_split
from vvhand_core.views import identity_index, view_grid

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "config" / "train_tiny.yaml"
CPU = DistEnv(device=torch.device("cpu"))


def tiny_config(*overrides: str) -> Stage1Config:
    return load_config("stage1", TINY, list(overrides))


def first_batch(samples, size: int = 2) -> dict[str, torch.Tensor]:
    return next(iter(DataLoader(samples, batch_size=size, shuffle=False)))


@pytest.fixture(scope="module")
def tiny_job():
    torch.manual_seed(0)
    return stage1.build_job(tiny_config("data.train_frames=2"), CPU)


# ----------------------------------------------------------------------------- config


def test_config_file_overrides_and_round_trip(tmp_path):
    cfg = tiny_config("optim.lr=2e-3", "model.a2j.width=0.25", "augment.cube_scale=[0.9, 1.1]",
                      "top_n=2")
    assert cfg.optim.lr == pytest.approx(2e-3)
    assert cfg.model.a2j.width == 0.25
    assert cfg.augment.cube_scale == (0.9, 1.1)
    assert cfg.fused_views == 2 and cfg.validation_views == 2
    assert cfg.data.synth == {"background": "none"}
    path = save_config(cfg, tmp_path / "c.yaml")
    again = load_config("stage1", path)
    assert to_dict(again) == to_dict(cfg)


@pytest.mark.parametrize("override, words", [
    ("optim.lrr=1", "optim.lrr"),
    ("optim.lr=fast", "optim.lr"),
    ("optim.batch_size=1.5", "optim.batch_size"),
    ("model.a2j.depth=3", "depth"),
    ("top_n=7", "top_n"),
    ("data.train_seed=102", "differ"),
    ("data.synth.seed=5", "seed"),
    ("augment.cube_scale=[1.2, 1.0]", "cube_scale"),
    ("skeleton=nyu_14", "joints"),
    ("optim=3", "optim"),
])
def test_config_errors_name_the_key(override, words):
    with pytest.raises(ConfigError, match=words):
        tiny_config(override)


def test_config_stage2_rules(tmp_path):
    with pytest.raises(ConfigError, match="teacher_checkpoint"):
        load_config("stage2", None, [])
    with pytest.raises(ConfigError, match="random_views"):
        load_config("stage2", None, ["teacher_checkpoint=x.pt", "augment.random_views=true"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config("stage1", bad)


# ----------------------------------------------------------------------------- samples


def test_sample_crop_and_identity_targets_agree_with_projection():
    cfg = tiny_config()
    frames = open_split(cfg.data, "val")
    frame = frames[0]
    crop_cfg = CropConfig(cfg.model.cube_mm, cfg.model.crop_size)
    sample = make_sample(frame, crop_cfg)
    batch = {k: v[None] for k, v in sample.items()}
    joints = batch["joints_mm"]
    np.testing.assert_allclose(sample["centre_mm"].numpy(), frame.joints_mm.mean(0), atol=1e-3)
    mats = batch_view_matrices(batch, view_grid(3))
    vb = render_views(make_renderer("torch"), batch, mats)
    ident = identity_index(3)
    # the identity view is the crop itself; its targets are T(project(joints)), d_n
    assert torch.equal(vb.views_mm[0, ident], sample["crop_mm"])
    uv = apply_crop_transform(batch["t"], project_t(joints, batch["k"][:, None]))
    np.testing.assert_allclose(vb.target_uvd[0, ident, :, :2], uv[0], atol=1e-3)
    dn = (joints[0, :, 2] - sample["centre_mm"][2]) / (sample["cube_mm"] / 2)
    np.testing.assert_allclose(vb.target_uvd[0, ident, :, 2], dn, atol=1e-5)
    # visible joints lie just behind the crop's surface at their crop pixel
    visible = np.array(frame.meta["visible"])
    assert visible.sum() >= 5
    px = torch.floor(uv[0] + 0.5).long()
    surf = sample["crop_mm"][px[:, 1], px[:, 0]].numpy()
    z = joints[0, :, 2].numpy()
    gap = (z - surf)[visible]
    assert ((gap > -6) & (gap < 30)).all(), gap


def test_augmentation_is_deterministic_per_epoch_and_index():
    cfg = tiny_config("augment.cube_scale=[0.8, 1.2]", "augment.centre_jitter_mm=20")
    frames = open_split(cfg.data, "train")
    samples = TrainingSamples(frames, CropConfig(250.0, 176), cfg.augment, seed=3)
    a = samples[1]
    b = samples[1]
    assert torch.equal(a["crop_mm"], b["crop_mm"]) and torch.equal(a["cube_mm"], b["cube_mm"])
    samples.set_epoch(1)
    c = samples[1]
    assert not torch.equal(a["cube_mm"], c["cube_mm"])
    assert 200.0 <= float(c["cube_mm"]) <= 300.0
    exact = TrainingSamples(frames, CropConfig(250.0, 176), None)[1]
    shift = (c["centre_mm"] - exact["centre_mm"]).abs()
    assert (shift <= 20.0 + 1e-4).all() and shift.max() > 0.5


@pytest.mark.parametrize("augment", [
    AugmentConfig(),
    AugmentConfig(roll_deg=180.0),
    AugmentConfig(random_views=True, roll_deg=90.0),
])
def test_targets_fused_back_give_the_ground_truth(augment):
    """Targets in every (augmented) view, fused through the inverse views, are the GT."""
    cfg = tiny_config()
    samples = TrainingSamples(open_split(cfg.data, "train"), CropConfig(250.0, 176), None)
    batch = first_batch(samples)
    gen = torch.Generator().manual_seed(1)
    mats = batch_view_matrices(batch, view_grid(3), augment, gen)
    vb = render_views(make_renderer("torch"), batch, mats)
    logits = torch.randn(2, 3)
    for n in (1, 3):
        fused = stage1.fuse_top_n(vb.target_uvd, logits, mats, batch, n)
        np.testing.assert_allclose(fused, batch["joints_mm"], atol=2e-2)
    moved = apply_transform(batch["joints_mm"][:, None], mats)  # joints in each view
    if augment.roll_deg or augment.random_views:
        assert (moved - batch["joints_mm"][:, None]).abs().max() > 5.0


# ----------------------------------------------------------------------------- stage 1


def test_fusion_loss_gradient_reaches_a2j_backbone_and_teacher(tiny_job):
    job = tiny_job
    job.set_train_mode()
    batch = first_batch(job.train_samples)
    mats = batch_view_matrices(batch, view_grid(3))
    vb = render_views(make_renderer("torch"), batch, mats)
    out = job.trainable(vb.inputs, vb.target_uvd, vb.mats, batch)
    job.trainable.zero_grad(set_to_none=True)
    out["fusion"].backward()
    stem = job.a2j.backbone.conv1.weight.grad
    assert stem is not None and stem.abs().sum() > 0
    teacher_grads = [p.grad for p in job.teacher.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in teacher_grads)
    assert math.isclose(out["loss"].item(), out["a2j"].item() + 0.1 * out["fusion"].item(),
                        rel_tol=1e-5)


@pytest.mark.slow
def test_tiny_model_overfits_tiny_batch():
    """Mean 3D error (fusion path, eval mode) falls by more than 5x on 2 fixed frames."""
    torch.manual_seed(0)
    cfg = tiny_config("data.train_frames=2", "augment.cube_scale=[1, 1]",
                      "augment.centre_jitter_mm=0", "augment.depth_noise_mm=0")
    job = stage1.build_job(cfg, CPU)
    batch = first_batch(job.train_samples)

    def error() -> float:
        job.eval_mode()
        with torch.no_grad():
            return mean_error(job.predict(batch), batch["joints_mm"])

    start = error()
    opt = torch.optim.Adam(job.trainable.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    job.set_train_mode()
    for _ in range(90):
        loss, _ = job.train_step(job.trainable, batch, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = error()
    assert start > 20.0
    assert end < start / 5, (start, end)


# ----------------------------------------------------------------------------- stage 2


def _tiny_stage1_checkpoint(path: Path) -> Path:
    cfg = tiny_config()
    torch.manual_seed(0)
    a2j, student, teacher = build_models(cfg.model, HANDS2019_21)
    return save_checkpoint(path, a2j, student, teacher, HANDS2019_21, cfg.model,
                           {"stage": "stage1", "steps": 0})


@pytest.mark.slow
def test_distillation_moves_student_logits_toward_teacher(tmp_path):
    ckpt = _tiny_stage1_checkpoint(tmp_path / "s1.pt")
    cfg = load_config("stage2", None, [
        f"teacher_checkpoint={ckpt}", "device=cpu", "renderer=torch", "data.train_frames=2",
        "data.val_frames=1", "data.train_seed=101", "data.synth={background: none}"])
    job = stage2.build_job(cfg, CPU)
    batch = first_batch(job.train_samples)
    renderer = make_renderer("torch")
    grid = view_grid(3)

    def gap() -> float:
        job.student.eval()
        with torch.no_grad():
            _, s, t = stage2.distill_step(job.a2j, job.teacher, job.student, renderer, grid,
                                          batch, 100.0)
        return float((s - t).abs().mean())

    before = gap()
    frozen = [p.clone() for p in job.a2j.parameters()]
    opt = torch.optim.Adam(job.student.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        job.set_train_mode()
        loss, _ = job.train_step(job.student, batch, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = gap()
    assert before > 0.05
    assert after < 0.5 * before, (before, after)
    assert all(torch.equal(a, b) for a, b in zip(frozen, job.a2j.parameters()))


# ----------------------------------------------------------------------------- loop


@pytest.mark.slow
def test_cli_trains_resumes_and_keeps_best(tmp_path):
    out = tmp_path / "run"
    args = ["stage1", "--config", str(TINY), "--out", str(out), "--set", "optim.epochs=1",
            "--set", "optim.steps_per_epoch=1", "--set", "data.val_frames=1"]
    assert cli.main(args) == 0
    state = load_resume_state(out)
    assert state["epoch"] == 1 and state["step"] == 1
    assert set(state["optimizer"]) == {"state", "param_groups"}
    # resume to 2 epochs: continues at epoch 2, does not redo epoch 1
    assert cli.main([*args[:-6], "--set", "optim.epochs=2", "--set", "optim.steps_per_epoch=1",
                     "--set", "data.val_frames=1", "--resume"]) == 0
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["type"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert load_resume_state(out)["step"] == 2
    last, best = load_checkpoint(out / "last.pt"), load_checkpoint(out / "best.pt")
    assert last.meta["epoch"] == 2 and last.meta["steps"] == 2
    best_val = min(r["val_mean_error_mm"] for r in epochs)
    assert best.meta["val_mean_error_mm"] == pytest.approx(best_val, abs=1e-3)
    assert last.meta["train_config"]["optim"]["epochs"] == 2
    assert last.meta["hardware"]["device"] == "cpu"


def test_cli_reports_config_errors(tmp_path, capsys):
    assert cli.main(["stage1", "--config", str(TINY), "--set", "optim.lr=-1",
                     "--out", str(tmp_path)]) == 2
    assert "optim.lr" in capsys.readouterr().err
    assert cli.main(["stage2", "--set", f"teacher_checkpoint={tmp_path / 'none.pt'}",
                     "--out", str(tmp_path)]) == 2
    assert "none.pt" in capsys.readouterr().err


def test_run_training_one_step_writes_loadable_checkpoints(tmp_path):
    cfg = tiny_config("optim.steps_per_epoch=1", "data.val_frames=1", "data.train_frames=2")
    job = stage1.build_job(cfg, CPU)
    result = run_training(job, CPU, tmp_path)
    assert result.steps == 1 and math.isfinite(result.best_val_mean_error_mm)
    loaded = load_checkpoint(tmp_path / "best.pt")
    assert loaded.meta["stage"] == "stage1"
    assert loaded.meta["validation"]["selector"] == "teacher"
    for a, b in zip(job.a2j.state_dict().values(), loaded.a2j.state_dict().values()):
        assert torch.equal(a, b)
    torch.load(tmp_path / "last_state.pt", weights_only=True)


# ----------------------------------------------------------------------------- splits


def test_synthetic_splits_are_disjoint_and_dir_split_holds_out_a_tail(tmp_path):
    from vvhand_core.data.synthetic.generator import SynthConfig
    from vvhand_core.data.synthetic.io import write_dataset

    cfg = tiny_config()
    train, val = open_split(cfg.data, "train"), open_split(cfg.data, "val")
    assert len(train) == 4 and len(val) == 2
    assert not np.array_equal(train[0].joints_mm, val[0].joints_mm)
    write_dataset(tmp_path / "syn", SynthConfig(seed=5, width=160, height=120, fx=120, fy=120,
                                                cx=79.5, cy=59.5), 5, progress=False)
    dcfg = tiny_config("data.dataset=synthetic_dir", f"data.root={tmp_path / 'syn'}",
                       "data.val_fraction=0.2", "data.synth={}", "data.train_frames=0",
                       "data.val_frames=0")
    train, val = open_split(dcfg.data, "train"), open_split(dcfg.data, "val")
    assert [f.meta["frame_id"] for f in (train[i] for i in range(len(train)))] == [0, 1, 2, 3]
    assert [val[0].meta["frame_id"]] == [4] and len(val) == 1


# ----------------------------------------------------------------------------- pipeline


@pytest.mark.parametrize("selector", ["teacher", "student"])
def test_validation_forward_equals_the_pipeline(tiny_job, selector):
    from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline

    job = tiny_job
    job.eval_mode()
    frames = job.val_samples.frames
    batch = first_batch(job.val_samples)
    renderer, grid = make_renderer("torch"), view_grid(3)
    n = 2
    with torch.no_grad():
        if selector == "teacher":
            ours = stage1.predict_teacher(job.a2j, job.teacher, renderer, grid, batch, n)
        else:
            ours = stage2.predict_student(job.a2j, job.student, renderer, grid, batch, n)
    pipe = VirtualViewPipeline(job.a2j, job.student, job.teacher, HANDS2019_21,
                               PipelineConfig(selector=selector, num_views=n, device="cpu",
                                              renderer="torch", cube_mm=250.0, track=False),
                               num_candidates=3)
    depth = np.stack([frames[i].depth_mm for i in range(2)])
    results = pipe.run_batch(depth, frames[0].intrinsics, batch["centre_mm"].double().numpy())
    theirs = np.stack([r.joints_mm for r in results])
    np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-2)


def test_stage2_run_writes_a_deployable_checkpoint(tmp_path):
    ckpt = _tiny_stage1_checkpoint(tmp_path / "s1.pt")
    out = tmp_path / "s2"
    assert cli.main(["stage2", "--out", str(out), "--set", f"teacher_checkpoint={ckpt}",
                     "--set", "device=cpu", "--set", "renderer=torch",
                     "--set", "data.train_frames=2", "--set", "data.val_frames=1",
                     "--set", "optim.epochs=1", "--set", "val_num_views=2"]) == 0
    loaded = load_checkpoint(out / "best.pt")
    assert loaded.meta["stage"] == "stage2" and loaded.meta["stage1"]["stage"] == "stage1"
    assert loaded.meta["validation"] == {
        "selector": "student", "num_views": 2, "num_candidates": 3,
        "centre": "oracle (mean of ground-truth joints)", "cube_mm": 250.0}
    first = load_checkpoint(ckpt)
    for a, b in zip(first.a2j.state_dict().values(), loaded.a2j.state_dict().values()):
        assert torch.equal(a, b)  # A2J frozen
    changed = [not torch.equal(a, b) for a, b in zip(first.student.state_dict().values(),
                                                     loaded.student.state_dict().values())]
    assert any(changed)
    # shipping it: fp16 weights + a training record read from the metadata
    from vvhand_core.train.export import export_checkpoint

    pt, md = export_checkpoint(out / "best.pt", tmp_path / "model.pt")
    small = load_checkpoint(pt)
    assert pt.stat().st_size < 0.6 * (out / "best.pt").stat().st_size
    for a, b in zip(loaded.a2j.state_dict().values(), small.a2j.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-3)
    text = md.read_text()
    assert "Stage 1" in text and "Stage 2" in text
    assert f"{loaded.meta['val_mean_error_mm']} mm" in text


def test_time_limit_stops_after_the_current_epoch(tmp_path):
    cfg = tiny_config("optim.epochs=3", "optim.time_limit_min=1e-6", "data.val_frames=1")
    job = stage1.build_job(cfg, CPU)
    result = run_training(job, CPU, tmp_path)
    assert result.epochs == 1 and result.steps == 0
    meta = load_checkpoint(tmp_path / "last.pt").meta
    assert meta["stopped_by_time_limit"] is True and meta["epoch"] == 1


@pytest.mark.parametrize("name", ["train_stage1", "train_default_stage1", "train_tiny"])
def test_shipped_stage1_configs_load(name):
    cfg = load_config("stage1", REPO / "config" / f"{name}.yaml")
    assert cfg.model.crop_size == 176


@pytest.mark.parametrize("name", ["train_stage2", "train_default_stage2"])
def test_shipped_stage2_configs_load(name):
    cfg = load_config("stage2", REPO / "config" / f"{name}.yaml")
    assert cfg.teacher_checkpoint.endswith("best.pt")
