"""The phased run: one wall-clock budget, three phases, checkpoints, legs, progress.

``run_phased(job, out_dir)`` trains the phases of a :class:`~.phases.PhasedJob` one
after the other, each for its share of ``optim.time_budget_min`` of run time
(``schedule.phase_plan``), with Adam at ``peak * lr_factor(progress)``. It validates every
``validate_every_min`` and at each phase's end, writes a checkpoint every
``checkpoint_every_min`` (<= 10) and at each phase's end, and writes into ``out_dir``:

    last.pt          the networks at the latest checkpoint (all three, with metadata)
    best.pt          the student-phase validation with the lowest error (deployable)
    last_state.pt    phase, steps, run time, optimizer: what --resume continues from
    teacher_logits.npy  the student phase's cached teacher confidences
    config.yaml      the resolved config
    train_log.jsonl  "step" (every log_every steps), "val", "checkpoint" and "phase"
                     records, each with run_time_s (the learning curve's x axis)

Run time counts everything after the start (steps, validations, checkpoints) but not
building the frame cache, and continues across legs: ``stop_after_min`` ends this
invocation (a leg) with a checkpoint; ``resume`` continues from it. The loop reads the
clock once per iteration and every decision (phase, learning rate, validation,
checkpoint) is a function of that reading, the step counters and the seed; the data
order and augmentation are functions of (seed, phase, step). So a resumed run follows
the uninterrupted run's curve (exactly, under a deterministic clock, as in the tests).
One process only (no torchrun).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from vvhand_core.checkpoint import load_checkpoint, save_checkpoint
from vvhand_core.evaluate import compute_metrics
from vvhand_core.train.configio import save_config, to_dict
from vvhand_core.train.dist import DistEnv, hardware_info
from vvhand_core.train.phases import TEACHER_LOGITS, Phase, PhasedJob
from vvhand_core.train.samples import batch_to
from vvhand_core.train.schedule import lr_factor, phase_plan, slot

LAST, BEST, STATE, CONFIG, LOG = "last.pt", "best.pt", "last_state.pt", "config.yaml", \
    "train_log.jsonl"


@dataclass
class PhasedResult:
    """Summary of an invocation (one leg or the whole run)."""

    out_dir: Path
    steps: int
    finished: bool
    run_time_s: float
    last_val_mean_error_mm: float
    best_val_mean_error_mm: float


def phase_batches(n: int, batch_size: int, seed: int, phase: int,
                  start_step: int) -> Iterator[list[tuple[int, int]]]:
    """Endless batches of (tag, frame) keys for a phase from step ``start_step`` on.

    Epoch e is a permutation of range(n) from (seed, phase, e); tag = phase * 2**20 + e
    selects the epoch's augmentation draws in :class:`~.cache.CachedSamples`.
    """
    per_epoch = math.ceil(n / batch_size)
    epoch, pos = divmod(start_step, per_epoch)
    while True:
        perm = np.random.default_rng([seed, phase, epoch, 11]).permutation(n)
        tag = phase * 2**20 + epoch
        for b in range(pos, per_epoch):
            yield [(tag, int(i)) for i in perm[b * batch_size:(b + 1) * batch_size]]
        epoch, pos = epoch + 1, 0


def step_generator(seed: int, phase: int, step: int) -> torch.Generator:
    """The CPU generator of one step's view draws."""
    state = np.random.SeedSequence([seed, phase, step, 7]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def phase_loader(job: PhasedJob, phase: Phase, start_step: int) -> Iterator[dict]:
    """Batches of ``phase`` from its step ``start_step`` (DataLoader workers as configured)."""
    sampler = phase_batches(phase.num_frames, phase.batch_size, job.config.seed, phase.index,
                            start_step)
    return iter(DataLoader(job.train_samples, batch_sampler=sampler,
                           num_workers=job.config.data.num_workers))


def make_optimizer(job: PhasedJob, phase: Phase) -> tuple[torch.optim.Adam, list[float]]:
    """Adam over the phase's parameter groups and the groups' lr multipliers."""
    groups = phase.groups()
    opt = torch.optim.Adam([{"params": p} for p, _ in groups], lr=job.config.optim.lr,
                           weight_decay=job.config.optim.weight_decay)
    return opt, [scale * phase.lr_scale for _, scale in groups]


def evaluate(job: PhasedJob, phase: Phase, device: torch.device, batch_size: int = 8):
    """Validation metrics of the phase's ``predict`` over the whole validation split."""
    job.eval_mode()
    preds, gts = [], []
    samples = job.val_samples
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            items = [samples[i] for i in range(start, min(start + batch_size, len(samples)))]
            batch = {k: torch.stack([it[k] for it in items]) for k in items[0]}
            preds.append(phase.predict(batch_to(batch, device)).float().cpu().numpy())
            gts.append(batch["joints_mm"].float().numpy())
    return compute_metrics(np.concatenate(preds), np.concatenate(gts), name="val",
                           skeleton=job.skeleton)


class _Run:
    """Counters and files of one run folder (what last_state.pt holds, and the log)."""

    def __init__(self, job: PhasedJob, env: DistEnv, out: Path) -> None:
        self.job, self.env, self.out = job, env, out
        self.phase, self.phase_step, self.step, self.run_time = 0, 0, 0, 0.0
        self.val_slot, self.ckpt_slot = 0, 0
        self.best, self.last_val = math.inf, math.nan
        # replay: the checkpoint was taken before this iteration's work (a resumed run
        # redoes the iteration at the saved run time); finished: after the last phase
        self.replay, self.finished = False, False

    def counters(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("phase", "phase_step", "step", "run_time",
                                              "val_slot", "ckpt_slot", "best", "last_val",
                                              "replay", "finished")}

    def log(self, record: dict[str, Any]) -> None:
        with (self.out / LOG).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({**record, "run_time_s": round(self.run_time, 3)}) + "\n")

    def meta(self, phase: Phase, extra: dict[str, Any]) -> dict[str, Any]:
        return {"stage": "phased", "trained": True, "phase": phase.name, "steps": self.step,
                "phase_steps": self.phase_step, "run_time_s": round(self.run_time, 1),
                "wall_time_s": round(self.run_time, 1), "validation": phase.validation,
                "hardware": hardware_info(self.env), "train_config": to_dict(self.job.config),
                **self.job.meta, **extra}

    def checkpoint(self, phase: Phase, opt: torch.optim.Optimizer, replay: bool) -> None:
        self.replay = replay
        job = self.job
        save_checkpoint(self.out / LAST, job.a2j, job.student, job.teacher, job.skeleton,
                        job.config.model, self.meta(phase, {"val_mean_error_mm":
                                                            _round(self.last_val)}))
        blob = {"optimizer": opt.state_dict(), **self.counters()}
        tmp = self.out / (STATE + ".tmp")
        torch.save(blob, tmp)
        tmp.replace(self.out / STATE)
        self.log({"type": "checkpoint", "phase": phase.name, "step": self.step})

    def resume(self) -> dict[str, Any] | None:
        if not ((self.out / STATE).is_file() and (self.out / LAST).is_file()):
            return None
        state = torch.load(self.out / STATE, map_location="cpu", weights_only=True)
        loaded = load_checkpoint(self.out / LAST, "cpu")
        for mine, theirs in zip(self.job.networks(), (loaded.a2j, loaded.student,
                                                      loaded.teacher)):
            mine.load_state_dict(theirs.state_dict())
        for k, v in self.counters().items():
            setattr(self, k, type(v)(state[k]))
        # the log continues from the checkpoint: records of work done after it are dropped
        log = self.out / LOG
        records = [json.loads(line) for line in
                   (log.read_text(encoding="utf-8") if log.is_file() else "").splitlines()]
        marks = [i for i, r in enumerate(records) if r["type"] == "checkpoint"
                 and r["step"] == self.step and r["run_time_s"] == round(self.run_time, 3)]
        kept = records[:marks[-1] + 1] if marks else \
            [r for r in records if r["run_time_s"] <= round(self.run_time, 3)]
        log.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        if self.phase < len(self.job.phases) - 1:  # confidences of a later, lost leg
            (self.out / TEACHER_LOGITS).unlink(missing_ok=True)
        return state


def _round(x: float) -> float | None:
    return None if not math.isfinite(x) else round(x, 4)


def run_phased(job: PhasedJob, env: DistEnv, out_dir: str | Path, resume: bool = False,
               stop_after_min: float = 0.0, clock: Callable[[], float] = time.perf_counter,
               progress: bool = True) -> PhasedResult:
    """Train the job's phases within the budget (see the module docstring)."""
    cfg = job.config
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(job, env, out)
    state = run.resume() if resume else None
    if resume and state is None:
        print(f"vvhand train: nothing to resume in {out}, starting from scratch",
              file=sys.stderr)
    if state is None:
        (out / LOG).unlink(missing_ok=True)
        (out / TEACHER_LOGITS).unlink(missing_ok=True)
    elif run.finished:
        print(f"vvhand train: {out} holds a finished run", file=sys.stderr)
        return PhasedResult(out, run.step, True, run.run_time, run.last_val, run.best)
    save_config(cfg, out / CONFIG)
    plan = phase_plan([(p.name, p.share) for p in job.phases], cfg.optim.time_budget_min * 60)
    val_s, ckpt_s = cfg.optim.validate_every_min * 60, cfg.optim.checkpoint_every_min * 60
    pending = run.run_time if state is not None and run.replay else None
    base, leg_start, t0 = run.run_time, run.run_time, clock()
    tty = sys.stderr.isatty()
    phase = job.phases[run.phase]
    opt, scales, batches, bar = None, [], None, None
    stopped, ema = False, {}

    def start_phase(p: Phase, first: bool) -> None:
        nonlocal opt, scales, batches, bar
        if plan[p.index].length_s > 0:
            p.prepare(out)
        opt, scales = make_optimizer(job, p)
        if first and state is not None:
            opt.load_state_dict(state["optimizer"])
        batches = phase_loader(job, p, run.phase_step)
        p.set_mode()
        sl = plan[p.index]
        bar = tqdm(total=round(sl.length_s), initial=round(run.run_time - sl.start_s),
                   desc=f"phase {p.index + 1}/{len(plan)} {p.name}", unit="s",
                   disable=not progress, mininterval=1.0 if tty else 30.0,
                   dynamic_ncols=True, file=sys.stderr)

    def validate(p: Phase) -> None:
        metrics = evaluate(job, p, env.device)
        run.last_val = metrics.mean_error_mm
        best = p.name == "student" and run.last_val < run.best
        if best:
            run.best = run.last_val
            save_checkpoint(out / BEST, job.a2j, job.student, job.teacher, job.skeleton,
                            cfg.model, run.meta(p, {"val_mean_error_mm": _round(run.last_val),
                                                    "val_success_20mm":
                                                        round(metrics.success_at(20), 4)}))
        run.log({"type": "val", "phase": p.name, "step": run.step,
                 "val_mean_error_mm": run.last_val, "val_success_20mm": metrics.success_at(20),
                 "selector": p.validation["selector"], "num_views": p.validation["num_views"],
                 "best": best})
        tqdm.write(f"[{run.run_time / 60:6.1f} min] {p.name}: validation mean error "
                   f"{run.last_val:.2f} mm ({p.validation['selector']}, "
                   f"{p.validation['num_views']} view(s))", file=sys.stderr)
        p.set_mode()

    start_phase(phase, True)
    while True:
        # microseconds: legs add up to the same readings as one uninterrupted run
        run.run_time = pending if pending is not None else round(base + clock() - t0, 6)
        pending = None
        sl = plan[run.phase]
        if run.run_time >= sl.end_s:  # the phase is over
            bar.close()
            if sl.length_s > 0:
                validate(phase)
            run.log({"type": "phase", "phase": phase.name, "phase_steps": run.phase_step,
                     "step": run.step})
            if run.phase + 1 == len(job.phases):
                run.finished = True
                run.checkpoint(phase, opt, replay=False)
                break
            run.phase, run.phase_step = run.phase + 1, 0
            phase = job.phases[run.phase]
            start_phase(phase, False)
            run.checkpoint(phase, opt, replay=False)
            continue
        if stop_after_min > 0 and run.run_time - leg_start >= stop_after_min * 60:
            run.checkpoint(phase, opt, replay=True)
            stopped = True
            break
        if slot(run.run_time, val_s) > run.val_slot:
            run.val_slot = slot(run.run_time, val_s)
            validate(phase)
        if slot(run.run_time, ckpt_s) > run.ckpt_slot:
            run.ckpt_slot = slot(run.run_time, ckpt_s)
            run.checkpoint(phase, opt, replay=True)
        factor = lr_factor(sl.progress(run.run_time), cfg.optim.warmup_frac,
                           cfg.optim.final_lr_frac)
        for group, scale in zip(opt.param_groups, scales):
            group["lr"] = cfg.optim.lr * scale * factor
        batch = batch_to(next(batches), env.device)
        loss, parts = phase.step(batch, step_generator(cfg.seed, phase.index, run.phase_step))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"phase {phase.name}: non-finite loss at step "
                                     f"{run.step + 1}: {parts}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip > 0:
            nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]],
                                     cfg.optim.grad_clip)
        opt.step()
        run.step, run.phase_step = run.step + 1, run.phase_step + 1
        ema = {k: v if k not in ema else 0.9 * ema[k] + 0.1 * v for k, v in parts.items()}
        if run.step % cfg.log_every == 0:
            run.log({"type": "step", "phase": phase.name, "step": run.step,
                     "lr": opt.param_groups[0]["lr"], **parts})
        left = max(plan[-1].end_s - run.run_time, 0)
        bar.set_postfix({**{k: f"{v:.4g}" for k, v in ema.items()},
                         "lr": f"{opt.param_groups[0]['lr']:.2g}",
                         "run left": f"{int(left // 60)}:{int(left % 60):02d}"}, refresh=False)
        bar.update(max(0, round(run.run_time - sl.start_s) - bar.n))
    if stopped:
        bar.close()
        print(f"vvhand train: stopped after {stop_after_min:g} min at "
              f"{run.run_time / 60:.1f} min of the run; continue with --resume",
              file=sys.stderr)
    return PhasedResult(out, run.step, run.finished, run.run_time, run.last_val, run.best)
