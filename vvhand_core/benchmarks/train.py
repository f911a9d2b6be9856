"""Training throughput: view-samples/s and frames/s per phase, today's default vs the recipe.

Runs the trainers' own steps (data loader, forward, backward, Adam) for ``--seconds``
each, after two warm-up steps: stage 1 and stage 2 of today's default
(config/train_default_stage1.yaml / _stage2.yaml; stage 2 distils from random stage-1
networks) and the three phases of the CPU recipe (config/train_cpu.yaml, its frame cache
limited to ``--frames`` frames), plus the teacher phase with A2J still training at 0.1x
(the alternative to a frozen A2J). A view-sample is one view through A2J in a training
step; frames/s counts the frames of the steps (each step's frames are distinct). Prints
a table and appends it to docs/results.md (or $VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from vvhand_core.benchmarks.results import append_section, markdown_table
from vvhand_core.jointspace import depth_scale

REPO = Path(__file__).resolve().parents[2]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench train`."""
    parser.add_argument("--seconds", type=float, default=90.0, help="timed seconds per case")
    parser.add_argument("--old", type=Path, default=REPO / "config" /
                        "train_default_stage1.yaml", help="today's default stage-1 config")
    parser.add_argument("--old-stage2", type=Path, default=REPO / "config" /
                        "train_default_stage2.yaml", help="today's default stage-2 config")
    parser.add_argument("--new", type=Path, default=REPO / "config" / "train_cpu.yaml",
                        help="the phased recipe's config")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override of the recipe's config")
    parser.add_argument("--set-old", dest="old_overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override of both default configs")
    parser.add_argument("--frames", type=int, default=3000,
                        help="training frames of the recipe's cache for the benchmark")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--no-write", action="store_true", help="print only")


def _time(step, batches, seconds: float) -> tuple[int, float]:
    """Steps made in ``seconds`` (after two warm-up steps) and the seconds they took."""
    for _ in range(2):
        step(next(batches))
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step(next(batches))
        n += 1
    return n, time.perf_counter() - t0


def _epoch_job_step(job, env):
    """One training step of a stage-1/2 TrainingJob (as loop.run_training makes it)."""
    from vvhand_core.train.samples import batch_to

    params = [p for p in job.trainable.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    job.set_train_mode()

    def step(batch):
        loss, _ = job.train_step(job.trainable, batch_to(batch, env.device), gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _loop(loader):
    while True:
        yield from loader


def old_cases(args, env, seconds: float) -> list[tuple[str, int, float, int, int]]:
    """(case, steps, seconds, frames/step, views/step) of today's default stages."""
    from vvhand_core.checkpoint import save_checkpoint
    from vvhand_core.models import build_models
    from vvhand_core.train import stage1, stage2
    from vvhand_core.train.configio import load_config
    from vvhand_core.train.loop import train_loader

    rows = []
    cfg1 = load_config("stage1", args.old, args.old_overrides)
    job = stage1.build_job(cfg1, env)
    loader, _ = train_loader(job.train_samples, cfg1.optim.batch_size, env, 0,
                             cfg1.data.num_workers)
    n, dt = _time(_epoch_job_step(job, env), _loop(loader), seconds)
    m = cfg1.model.num_candidates
    rows.append(("default stage 1 (A2J + teacher)", n, dt, cfg1.optim.batch_size,
                 cfg1.optim.batch_size * m))
    with tempfile.TemporaryDirectory() as tmp:
        a2j, student, teacher = build_models(cfg1.model, job.skeleton)
        ckpt = save_checkpoint(Path(tmp) / "s1.pt", a2j, student, teacher, job.skeleton,
                               cfg1.model, {"stage": "stage1"})
        cfg2 = load_config("stage2", args.old_stage2,
                           [*args.old_overrides, f"teacher_checkpoint={ckpt}"])
        job2 = stage2.build_job(cfg2, env)
        loader, _ = train_loader(job2.train_samples, cfg2.optim.batch_size, env, 0,
                                 cfg2.data.num_workers)
        n, dt = _time(_epoch_job_step(job2, env), _loop(loader), seconds)
    rows.append(("default stage 2 (student)", n, dt, cfg2.optim.batch_size,
                 cfg2.optim.batch_size * m))
    return rows


def new_cases(args, env, seconds: float) -> tuple[list, list[str]]:
    """Rows of the recipe's phases and notes (cache build, teacher confidences)."""
    from vvhand_core.train.configio import load_config
    from vvhand_core.train.phased import make_optimizer, phase_loader, step_generator
    from vvhand_core.train.phases import build_phased_job
    from vvhand_core.train.samples import batch_to

    notes, rows = [], []
    sets = [*args.overrides, f"data.train_frames={args.frames}",
            f"phases.student.frames={min(args.frames, 100)}"]
    cfg = load_config("phased", args.new, sets)
    t0 = time.perf_counter()
    job = build_phased_job(cfg, env)
    notes.append(f"recipe job + frame cache ready in {time.perf_counter() - t0:.0f} s "
                 f"({args.frames} frames; an existing cache is reused, not rebuilt)")
    frozen_lr = load_config("phased", args.new, [*sets, "phases.teacher.a2j_lr_scale=0.1"])
    cases = [(job, p) for p in job.phases]
    cases.insert(2, (build_phased_job(frozen_lr, env), None))
    for case_job, phase in cases:
        phase = phase or case_job.phases[1]
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            phase.prepare(Path(tmp))
            if phase.name == "student":
                dt = time.perf_counter() - t0
                notes.append(f"student phase: teacher confidences of {phase.num_frames} "
                             f"frames x {cfg.model.num_candidates} views in {dt:.0f} s "
                             f"({phase.num_frames / dt:.1f} frames/s), once per run")
            opt, scales = make_optimizer(case_job, phase)
            for g, s in zip(opt.param_groups, scales):
                g["lr"] = 1e-4 * s
            phase.set_mode()
            counter = iter(range(10**9))

            def step(batch, phase=phase, opt=opt, counter=counter):
                gen = step_generator(0, phase.index, next(counter))
                loss, _ = phase.step(batch_to(batch, env.device), gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            n, dt = _time(step, phase_loader(case_job, phase, 0), seconds)
        name = f"recipe {phase.name}"
        if case_job is not job:
            name += " (A2J trained at 0.1x lr)"
        elif phase.name == "teacher":
            name += " (A2J frozen)"
        rows.append((name, n, dt, phase.batch_size, phase.batch_size * phase.views_per_frame))
    return rows, notes


def depth_gradient_note(crop: int = 176, cube: float = 250.0, err_mm: float = 20.0) -> str:
    """Gradient per mm of the A2J loss at a 20 mm error: depth (old, new units) vs u, v."""
    def depth(units: str) -> float:
        f = depth_scale(units, crop)
        d = err_mm / (cube / 2) * f
        return min(d, 1.0) * f / (cube / 2)  # smooth-L1 (switch 1) slope, per mm
    uv = 0.5 * crop / cube  # 0.5 * slope 1 per px, px per mm
    return (f"Depth scaling (A2J loss gradient per mm of error at {err_mm:g} mm, crop {crop} "
            f"px, cube {cube:g} mm): u, v {uv:.3f}; depth in normalised units (before) "
            f"{depth('normalised'):.5f} ({uv / depth('normalised'):.0f}x weaker than u, v); "
            f"depth in pixel units (after) {depth('pixels'):.3f}.")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table and append it to results.md."""
    from vvhand_core.train.dist import DistEnv

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    env = DistEnv(device=torch.device("cpu"))
    rows = old_cases(args, env, args.seconds)
    new_rows, notes = new_cases(args, env, args.seconds)
    rows += new_rows
    table, base = [], rows[0]
    base_fps, base_vps = base[1] * base[3] / base[2], base[1] * base[4] / base[2]
    for name, n, dt, frames, views in rows:
        fps, vps = n * frames / dt, n * views / dt
        table.append([name, n, f"{dt / max(n, 1):.2f}", f"{fps:.1f}", f"{vps:.1f}",
                      f"{fps * 60:.0f}", f"{fps / base_fps:.1f}x", f"{vps / base_vps:.1f}x"])
    header = ["case", "steps", "s/step", "frames/s", "view-samples/s", "frames/min",
              "frames vs default s1", "views vs default s1"]
    body = markdown_table(header, table) + "\n\n" + "\n".join(f"- {n}" for n in
                                                              [*notes, depth_gradient_note()])
    print(body)
    if not args.no_write:
        cmd = f"nice -n 10 vvhand bench train --seconds {args.seconds:g}"
        path = append_section("Training throughput per phase (CPU, torch "
                              f"{torch.get_num_threads()} threads)", cmd, body)
        print(f"appended to {path}")
    return 0
