"""`vvhand eval`: score prediction files in the community "u v d" format (NYU / ICVL / MSRA).

    vvhand eval --dataset nyu --gt nyu_test_gt.txt --pred ours.txt --pred a2j.txt \
        --plot compare.png

Prints, per prediction file, the mean 3D error (mm, 3 decimals), per-joint errors and
success rates; with several files also one comparison table; ``--plot`` writes the
two-panel figure (per-joint error bars, success curves). ``--json`` prints one JSON object
per prediction file instead (keys pred, mean_error_mm, per_joint_mm, success_rate, ...).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vvhand_core.evaluate import (
    comparison_table,
    dataset_convention,
    eval_datasets,
    evaluate_uvd_files,
    format_metrics,
    plot_comparison,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vvhand eval`."""
    parser.add_argument(
        "--dataset",
        required=True,
        choices=eval_datasets(),
        help="convention of the files (intrinsics and joint set)",
    )
    parser.add_argument("--gt", required=True, help="ground-truth file, one line per frame")
    parser.add_argument(
        "--pred",
        required=True,
        action="append",
        metavar="FILE",
        help="prediction file (repeat to compare several)",
    )
    parser.add_argument("--plot", metavar="PNG", help="write the two-panel comparison plot")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per prediction file"
    )


def run(args: argparse.Namespace) -> int:
    """Evaluate; exit status 0, or 2 with a message naming the bad file."""
    if args.plot:
        folder = Path(args.plot).parent
        if not folder.is_dir():  # checked first: no work is done for a plot that cannot be
            print(f"vvhand eval: --plot {args.plot}: directory {folder} does not exist",
                  file=sys.stderr)
            return 2
    try:
        results = evaluate_uvd_files(args.gt, args.pred, args.dataset)
    except ValueError as exc:
        print(f"vvhand eval: {exc}", file=sys.stderr)
        return 2
    if args.json:
        for r in results:
            print(r.to_json())
    else:
        for r in results:
            print(format_metrics(r))
            print()
        if len(results) > 1:
            print(comparison_table(results))
    if args.plot:
        _, skeleton = dataset_convention(args.dataset)
        path = plot_comparison(results, skeleton, args.plot)
        print(f"plot written to {path}", file=sys.stderr)
    return 0
