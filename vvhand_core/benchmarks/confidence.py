"""Per-joint confidence (views' agreement) against joint error on the synthetic test split.

Frames 0..F-1 of ``SynthConfig(seed=3)`` (the v1 test split), the shipped model, oracle
centre (mean of the ground-truth joints, so that localisation errors do not mix in), the
default pipeline (student, N = 3, confidence fusion). Each joint's confidence comes from
the spread of the N views around the fused joint (vvhand_core.confidence); joints are
split into equal-count confidence bins and each bin's error is reported. Prints the table
and appends it to docs/results.md (or $VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse

import numpy as np

from vvhand_core.assets import default_model_path
from vvhand_core.benchmarks.results import append_section, markdown_table
from vvhand_core.confidence import (
    DEFAULT_SCALE_MM,
    binned_error,
    rank_correlation,
    spread_to_confidence,
)
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench confidence`."""
    parser.add_argument("--frames", type=int, default=150, help="test frames (seed 3)")
    parser.add_argument("--num-views", type=int, default=3, help="N views fused")
    parser.add_argument("--bins", type=int, default=5, help="equal-count confidence bins")
    parser.add_argument("--scale-mm", type=float, default=DEFAULT_SCALE_MM,
                        help="confidence = exp(-spread / scale)")
    parser.add_argument("--model", default="", help="checkpoint; default: the shipped model")
    parser.add_argument("--no-write", action="store_true", help="print only")


def measure(pipeline: VirtualViewPipeline, frames: int, seed: int = 3):
    """(spread (F, J) mm, error (F, J) mm) on frames 0..F-1 with the oracle centre."""
    gen = SyntheticHandGenerator(SynthConfig(seed=seed))
    spreads, errors = [], []
    for i in range(frames):
        f = gen.frame(i)
        r = pipeline.run(f.depth_mm, f.intrinsics, centre_mm=f.joints_mm.mean(axis=0))
        if not r.valid:
            continue
        spreads.append(r.joint_spread_mm)
        errors.append(np.linalg.norm(r.joints_mm - f.joints_mm, axis=-1))
    return np.stack(spreads), np.stack(errors)


def run(args: argparse.Namespace) -> int:
    """Measure, print, append to docs/results.md."""
    cfg = PipelineConfig(num_views=args.num_views, device="cpu", renderer="torch")
    pipe = VirtualViewPipeline.from_checkpoint(args.model or default_model_path(), cfg)
    spread, err = measure(pipe, args.frames)
    conf = spread_to_confidence(spread, args.scale_mm)
    rows = [[f"{b['conf_lo']:.2f}-{b['conf_hi']:.2f}", b["count"], b["mean_mm"],
             b["median_mm"]] for b in binned_error(conf, err, args.bins)]
    table = markdown_table(["confidence bin", "joints", "mean error [mm]",
                            "median error [mm]"], rows)
    rho = rank_correlation(spread, err)
    body = (f"{len(err)} valid frames x {err.shape[1]} joints, student N = {args.num_views}, "
            f"oracle centre, confidence = exp(-spread / {args.scale_mm:g} mm); lowest "
            f"confidence first.\n\n{table}\n\nSpearman rank correlation of spread and error: "
            f"{rho:.2f}; mean error {err.mean():.1f} mm, median spread "
            f"{np.median(spread):.1f} mm.\n")
    print(body)
    if not args.no_write:
        cmd = (f"vvhand bench confidence --frames {args.frames} --num-views {args.num_views}"
               f" --bins {args.bins}")
        path = append_section("Per-joint confidence vs error (synthetic test split)", cmd,
                               body)
        print(f"appended to {path}")
    return 0
