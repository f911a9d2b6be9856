"""The training loop both stages share: DDP set-up, loaders, validation, checkpoints, resume.

A stage builds a :class:`TrainingJob` (its networks, what the optimizer updates, one
training step, one validation forward) and hands it to :func:`run_training`, which runs
the epochs with Adam + exponential decay, validates after every epoch on the validation
split with the shared metrics (``vvhand_core.evaluate``), and writes into the output
folder (rank 0 only):

    last.pt          checkpoint after the latest epoch (``checkpoint.save_checkpoint``)
    best.pt          checkpoint of the epoch with the lowest validation mean error
    last_state.pt    optimizer / scheduler / counters for --resume (tensors and
                     primitives only: loads with torch.load(weights_only=True))
    config.yaml      the resolved training config
    train_log.jsonl  one JSON record per log interval ("step") and per epoch ("epoch")

Distributed (``train/dist.py``): under torchrun (WORLD_SIZE > 1) every process joins one
process group (NCCL on CUDA, gloo on CPU), trains on its DistributedSampler shard through
DistributedDataParallel and validates every k-th frame; predictions are gathered so
every rank sees the same validation error.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm import tqdm

from vvhand_core.checkpoint import load_checkpoint, save_checkpoint
from vvhand_core.evaluate import Metrics, compute_metrics
from vvhand_core.models import ModelConfig
from vvhand_core.skeletons import Skeleton
from vvhand_core.train.configio import save_config, to_dict
from vvhand_core.train.dist import (  # noqa: F401 - DistEnv & co. are part of this API
    DistEnv,
    barrier,
    hardware_info,
    past_deadline,
    setup_distributed,
    teardown_distributed,
)
from vvhand_core.train.samples import TrainingSamples, batch_to

LAST, BEST, STATE, CONFIG, LOG = "last.pt", "best.pt", "last_state.pt", "config.yaml", \
    "train_log.jsonl"


# ---------------------------------------------------------------- the job


@dataclass
class TrainingJob:
    """What a stage trains and how (built by stage1.build_job / stage2.build_job).

    a2j, student, teacher: all three networks (all go into every checkpoint).
    trainable: the module whose trainable parameters the optimizer updates (wrapped in
    DistributedDataParallel under torchrun) and that ``train_step`` receives.
    train_step(module, batch, generator) -> (loss, {name: float}): one step's loss on a
    device batch; generator: a CPU torch.Generator for augmentation draws.
    predict(batch) -> joints (B, J, 3) camera mm: the validation forward.
    set_train_mode(): put the networks in their training modes.
    train_samples / val_samples: TrainingSamples (augmenting / not).
    validation: how predict selects and fuses views, recorded in the metadata.
    meta: further metadata for the checkpoints (dataset, stage-1 source, ...).
    """

    stage: str
    config: Any
    a2j: nn.Module
    student: nn.Module
    teacher: nn.Module
    model_config: ModelConfig
    skeleton: Skeleton
    trainable: nn.Module
    train_step: Callable[[nn.Module, dict[str, Tensor], torch.Generator],
                         tuple[Tensor, dict[str, float]]]
    predict: Callable[[dict[str, Tensor]], Tensor]
    set_train_mode: Callable[[], None]
    train_samples: TrainingSamples
    val_samples: TrainingSamples
    validation: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def networks(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        """(a2j, student, teacher)."""
        return self.a2j, self.student, self.teacher

    def eval_mode(self) -> None:
        """Every network in eval mode."""
        for net in self.networks():
            net.eval()


@dataclass
class TrainResult:
    """Summary of a finished run."""

    out_dir: Path
    epochs: int
    steps: int
    best_val_mean_error_mm: float
    best_epoch: int
    last_val_mean_error_mm: float
    wall_time_s: float


# ---------------------------------------------------------------- data


def train_loader(samples: TrainingSamples, batch_size: int, env: DistEnv, seed: int,
                 num_workers: int) -> tuple[DataLoader, DistributedSampler]:
    """Shuffled loader over this rank's shard (a one-replica sampler without DDP)."""
    sampler = DistributedSampler(samples, num_replicas=env.world_size, rank=env.rank,
                                 shuffle=True, seed=seed, drop_last=False)
    loader = DataLoader(samples, batch_size=batch_size, sampler=sampler,
                        num_workers=num_workers, pin_memory=env.device.type == "cuda")
    return loader, sampler


def validate(job: TrainingJob, env: DistEnv, batch_size: int, num_workers: int = 0) -> Metrics:
    """Validation metrics of ``job.predict`` over the whole validation split.

    Rank r predicts frames r, r + W, ...; predictions are gathered so every rank returns
    the same :class:`Metrics` (computed by vvhand_core.evaluate).
    """
    job.eval_mode()
    samples = job.val_samples
    idx = list(range(env.rank, len(samples), env.world_size))
    loader = DataLoader(Subset(samples, idx), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers)
    ids, preds, gts = [], [], []
    with torch.no_grad():
        for batch in loader:
            b = batch_to(batch, env.device)
            preds.append(job.predict(b).float().cpu().numpy())
            gts.append(batch["joints_mm"].float().numpy())
            ids.append(batch["index"].numpy())
    j = job.skeleton.num_joints
    part = (np.concatenate(ids) if ids else np.zeros(0, np.int64),
            np.concatenate(preds) if preds else np.zeros((0, j, 3), np.float32),
            np.concatenate(gts) if gts else np.zeros((0, j, 3), np.float32))
    parts = [part]
    if env.distributed:
        parts = [None] * env.world_size
        dist.all_gather_object(parts, part)
    order = np.concatenate([p[0] for p in parts])
    pred = np.concatenate([p[1] for p in parts])[np.argsort(order, kind="stable")]
    gt = np.concatenate([p[2] for p in parts])[np.argsort(order, kind="stable")]
    return compute_metrics(pred, gt, name="val", skeleton=job.skeleton)


# ---------------------------------------------------------------- checkpoints


def _save_state(path: Path, opt: torch.optim.Optimizer, sched: Any, counters: dict) -> None:
    blob = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), **counters}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load_resume_state(out_dir: Path) -> dict[str, Any] | None:
    """The resume state of a run folder (None when it holds no complete epoch)."""
    state, last = out_dir / STATE, out_dir / LAST
    if not (state.is_file() and last.is_file()):
        return None
    return torch.load(state, map_location="cpu", weights_only=True)


def _write_checkpoint(job: TrainingJob, path: Path, meta: dict[str, Any]) -> None:
    save_checkpoint(path, job.a2j, job.student, job.teacher, job.skeleton, job.model_config,
                    meta)


def _log(out_dir: Path, record: dict[str, Any]) -> None:
    with (out_dir / LOG).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def _step_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, epoch, rank, 7]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


# ---------------------------------------------------------------- the loop


def run_training(job: TrainingJob, env: DistEnv, out_dir: str | Path,
                 resume: bool = False) -> TrainResult:
    """Train ``job`` for its configured epochs (continuing a run when ``resume``)."""
    cfg, optim = job.config, job.config.optim
    out = Path(out_dir)
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
    barrier(env)
    start_epoch, step, best, best_epoch, wall_before = 0, 0, math.inf, -1, 0.0
    last_val = math.nan
    state = load_resume_state(out) if resume else None
    if resume and state is None and env.is_main:
        print(f"vvhand train: nothing to resume in {out}, starting from scratch",
              file=sys.stderr)
    if state is not None:
        loaded = load_checkpoint(out / LAST, "cpu")
        for mine, theirs in zip(job.networks(), (loaded.a2j, loaded.student, loaded.teacher)):
            mine.load_state_dict(theirs.state_dict())
        start_epoch, step = int(state["epoch"]), int(state["step"])
        best, best_epoch = float(state["best_val"]), int(state["best_epoch"])
        wall_before, last_val = float(state["wall_time_s"]), float(state["last_val"])
        if loaded.meta.get("epoch") != start_epoch and env.is_main:
            print(f"vvhand train: {out / LAST} is from epoch {loaded.meta.get('epoch')}, "
                  f"{out / STATE} from epoch {start_epoch} (interrupted while saving?); "
                  f"continuing after epoch {start_epoch}", file=sys.stderr)
        if loaded.meta.get("train_config") != to_dict(cfg) and env.is_main:
            print(f"vvhand train: resuming {out} with a config that differs from the one "
                  "it was started with", file=sys.stderr)
    params = [p for p in job.trainable.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=optim.lr, weight_decay=optim.weight_decay)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=optim.lr_decay)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
    model: nn.Module = job.trainable
    if env.distributed:
        ids = [env.device.index] if env.device.type == "cuda" else None
        model = DistributedDataParallel(job.trainable, device_ids=ids)
    if env.is_main:
        save_config(cfg, out / CONFIG)
    loader, sampler = train_loader(job.train_samples, optim.batch_size, env, cfg.seed,
                                   cfg.data.num_workers)
    steps_per_epoch = len(loader) if optim.steps_per_epoch == 0 else \
        min(optim.steps_per_epoch, len(loader))
    t_start = time.perf_counter()
    deadline = t_start + 60.0 * optim.time_limit_min if optim.time_limit_min > 0 else math.inf
    epochs_done = start_epoch
    tty = sys.stderr.isatty()
    for epoch in range(start_epoch, optim.epochs):
        job.train_samples.set_epoch(epoch)
        sampler.set_epoch(epoch)
        job.set_train_mode()
        gen = _step_generator(cfg.seed, epoch, env.rank)
        bar = tqdm(total=steps_per_epoch, desc=f"{job.stage} epoch {epoch + 1}/{optim.epochs}",
                   unit="step", disable=not env.is_main, mininterval=1.0 if tty else 30.0,
                   dynamic_ncols=True, file=sys.stderr)
        sums: dict[str, float] = {}
        count = 0
        for i, batch in enumerate(loader):
            if i >= steps_per_epoch or past_deadline(deadline, env):
                break
            b = batch_to(batch, env.device)
            loss, parts = job.train_step(model, b, gen)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{job.stage}: non-finite loss at step {step + 1} "
                                         f"(epoch {epoch + 1}): {parts}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if optim.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, optim.grad_clip)
            opt.step()
            step += 1
            count += 1
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            bar.update(1)
            if step % cfg.log_every == 0 and env.is_main:
                avg = {k: v / count for k, v in sums.items()}
                bar.set_postfix({k: f"{v:.4g}" for k, v in avg.items()}, refresh=False)
                _log(out, {"type": "step", "epoch": epoch + 1, "step": step,
                           "lr": opt.param_groups[0]["lr"], **avg})
        bar.close()
        epochs_done = epoch + 1
        stop = past_deadline(deadline, env)
        lr = opt.param_groups[0]["lr"]
        if count:
            sched.step()
        metrics = validate(job, env, optim.batch_size, cfg.data.num_workers)
        last_val = metrics.mean_error_mm
        improved = last_val < best
        if improved:
            best, best_epoch = last_val, epoch + 1
        wall = wall_before + time.perf_counter() - t_start
        if env.is_main:
            meta = {
                "stage": job.stage, "trained": True, "epoch": epoch + 1,
                "epochs": optim.epochs, "steps": step,
                "frames_seen": step * optim.batch_size * env.world_size,
                "val_mean_error_mm": round(last_val, 4),
                "val_success_20mm": round(metrics.success_at(20), 4),
                "val_frames": metrics.num_frames,
                "best_val_mean_error_mm": round(best, 4), "best_epoch": best_epoch,
                "validation": job.validation, "hardware": hardware_info(env),
                "wall_time_s": round(wall, 1), "stopped_by_time_limit": stop,
                "train_config": to_dict(cfg), **job.meta,
            }
            _write_checkpoint(job, out / LAST, meta)
            if improved:
                _write_checkpoint(job, out / BEST, meta)
            _save_state(out / STATE, opt, sched, {
                "epoch": epoch + 1, "step": step, "best_val": best, "best_epoch": best_epoch,
                "wall_time_s": wall, "last_val": last_val})
            avg = {k: v / max(count, 1) for k, v in sums.items()}
            record = {"type": "epoch", "epoch": epoch + 1, "step": step, "lr": lr,
                      "val_mean_error_mm": last_val,
                      "val_success_20mm": metrics.success_at(20), "best": improved,
                      "wall_time_s": wall, "steps_this_epoch": count,
                      "stopped_by_time_limit": stop,
                      **{f"train_{k}": v for k, v in avg.items()}}
            _log(out, record)
            print(f"{job.stage} epoch {epoch + 1}/{optim.epochs}: step {step}, "
                  + ", ".join(f"{k} {v:.4g}" for k, v in avg.items())
                  + f", val mean error {last_val:.2f} mm"
                  + (" (best)" if improved else f" (best {best:.2f} mm, epoch {best_epoch})")
                  + f", {wall:.0f} s" + (" - time limit reached, stopping" if stop else ""),
                  file=sys.stderr, flush=True)
        barrier(env)
        if stop:
            break
    wall = wall_before + time.perf_counter() - t_start
    return TrainResult(out, epochs_done, step, best, best_epoch, last_val, wall)
