"""`vvhand train stage1|stage2`: train A2J + teacher, then distil the student.

    vvhand train stage1 --config config/train_stage1.yaml [--set optim.lr=1e-3 ...]
        [--out DIR] [--resume]
    vvhand train stage2 --config config/train_stage2.yaml \
        --set teacher_checkpoint=out/train/stage1/best.pt

Multi-GPU / multi-process: launch the same command under torchrun, e.g.
``torchrun --nproc_per_node=2 -m vvhand_core.train.cli stage1 --config ...``.
The output folder gets last.pt, best.pt (lowest validation error), last_state.pt,
config.yaml and train_log.jsonl (see vvhand_core.train.loop).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vvhand_core.checkpoint import CheckpointError
from vvhand_core.data.base import DatasetError
from vvhand_core.train.config import STAGES, ConfigError, load_config

DEFAULT_OUT = "out/train"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vvhand train``."""
    parser.add_argument("stage", choices=sorted(STAGES),
                        help="stage1: A2J + teacher; stage2: student from a stage-1 checkpoint")
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


def run(args: argparse.Namespace) -> int:
    """Train one stage; 0 on success, 2 on a config / data / checkpoint problem."""
    from vvhand_core.train import stage1, stage2
    from vvhand_core.train.loop import run_training, setup_distributed, teardown_distributed

    try:
        cfg = load_config(args.stage, args.config, args.overrides)
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
