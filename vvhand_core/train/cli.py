"""`vvhand train stage1|stage2|phased`: train the networks.

    vvhand train phased --config config/train_cpu.yaml [--set optim.time_budget_min=60]
        [--out DIR] [--resume] [--stop-after-min M]
    vvhand train stage1 --config config/train_stage1.yaml [--set optim.lr=1e-3 ...]
        [--out DIR] [--resume]
    vvhand train stage2 --config config/train_stage2.yaml \
        --set teacher_checkpoint=out/train/stage1/best.pt

phased: the CPU recipe (A2J alone, then the teacher, then the student, within a
wall-clock budget; see vvhand_core.train.phased): per-phase progress bars with the run
time left, a checkpoint at least every 10 minutes, legs (--stop-after-min, --resume).
stage1 / stage2: the paper's two stages, epoch by epoch. Multi-GPU / multi-process
(stage1 / stage2): launch the same command under torchrun, e.g.
``torchrun --nproc_per_node=2 -m vvhand_core.train.cli stage1 --config ...``.
The output folder gets last.pt, best.pt (lowest validation error), last_state.pt,
config.yaml and train_log.jsonl (see vvhand_core.train.loop / .phased).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vvhand_core.checkpoint import CheckpointError
from vvhand_core.data.base import DatasetError
from vvhand_core.train.config import ConfigError
from vvhand_core.train.configio import load_config, stages

DEFAULT_OUT = "out/train"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vvhand train``."""
    parser.add_argument("stage", choices=sorted(stages()),
                        help="phased: the CPU recipe (all three networks in one budget); "
                             "stage1: A2J + teacher; stage2: student from a stage-1 checkpoint")
    parser.add_argument("--config", type=Path, default=None,
                        help="YAML training config (defaults of the stage's dataclass if omitted)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a config value by its dotted key, e.g. optim.lr=1e-3 "
                             "(repeatable; values are YAML)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default {DEFAULT_OUT}/<stage>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the output folder's last.pt + last_state.pt")
    parser.add_argument("--stop-after-min", type=float, default=0.0, metavar="M",
                        help="phased only: end this invocation (a leg) after M minutes with "
                             "a checkpoint; continue later with --resume (0 = run to the end)")


def _run_phased(cfg, env, args, out: Path) -> int:
    from vvhand_core.train.phased import run_phased
    from vvhand_core.train.phases import build_phased_job

    if env.distributed:
        raise ConfigError("the phased recipe runs in one process (no torchrun)")
    result = run_phased(build_phased_job(cfg, env), env, out, resume=args.resume,
                        stop_after_min=args.stop_after_min)
    state = "finished" if result.finished else "stopped (continue with --resume)"
    print(f"vvhand train phased: {state} after {result.steps} steps, "
          f"{result.run_time_s / 60:.1f} min of run time; last validation mean error "
          f"{result.last_val_mean_error_mm:.2f} mm, best student "
          f"{result.best_val_mean_error_mm:.2f} mm; checkpoints in {result.out_dir}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Train one stage; 0 on success, 2 on a config / data / checkpoint problem."""
    from vvhand_core.train import stage1, stage2
    from vvhand_core.train.loop import run_training, setup_distributed, teardown_distributed

    try:
        cfg = load_config(args.stage, args.config, args.overrides)
        if args.stop_after_min and args.stage != "phased":
            raise ConfigError("--stop-after-min applies to the phased recipe only")
    except ConfigError as exc:
        print(f"vvhand train: {exc}", file=sys.stderr)
        return 2
    out = args.out if args.out is not None else Path(DEFAULT_OUT) / args.stage
    try:
        env = setup_distributed(cfg.device)
    except ValueError as exc:
        print(f"vvhand train: {exc}", file=sys.stderr)
        return 2
    try:
        if args.stage == "phased":
            return _run_phased(cfg, env, args, out)
        builder = stage1.build_job if args.stage == "stage1" else stage2.build_job
        job = builder(cfg, env)
        result = run_training(job, env, out, resume=args.resume)
    except (ConfigError, CheckpointError, DatasetError) as exc:
        print(f"vvhand train: {exc}", file=sys.stderr)
        return 2
    finally:
        teardown_distributed(env)
    if env.is_main:
        print(f"vvhand train {args.stage}: {result.steps} steps, {result.epochs} epochs, "
              f"best validation mean error {result.best_val_mean_error_mm:.2f} mm "
              f"(epoch {result.best_epoch}), {result.wall_time_s:.0f} s; "
              f"checkpoints in {result.out_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m vvhand_core.train.cli`` (e.g. under torchrun)."""
    parser = argparse.ArgumentParser(prog="vvhand train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
