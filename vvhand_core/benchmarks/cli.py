"""`vvhand bench render|pipeline|ros-input|...`: measurements written to docs/results.md.

ros-input, reliability, latency and hands live in vvhand_ros (imported only by name here;
reliability imports rclpy only when it runs).
"""

from __future__ import annotations

import argparse
import importlib

BENCHES = {
    "render": "vvhand_core.benchmarks.render",
    "pipeline": "vvhand_core.benchmarks.pipeline",
    "synth": "vvhand_core.benchmarks.synth",
    "train": "vvhand_core.benchmarks.train",
    "ros-input": "vvhand_ros.bench_input",
    "reliability": "vvhand_ros.bench_reliability",
    "confidence": "vvhand_core.benchmarks.confidence",
    "smoothing": "vvhand_core.benchmarks.smoothing",
    "model": "vvhand_core.benchmarks.model",
    "fit": "vvhand_core.benchmarks.fit",
    "no-hand": "vvhand_core.benchmarks.no_hand",
    "latency": "vvhand_ros.bench_latency",
    "pareto": "vvhand_core.benchmarks.pareto",
    "localiser": "vvhand_core.benchmarks.localiser",
    "hands": "vvhand_ros.bench_hands",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one sub-parser per benchmark; each module adds its own options."""
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    for name, module_name in BENCHES.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(p)
        p.set_defaults(_bench_run=module.run)


def run(args: argparse.Namespace) -> int:
    """Run the chosen benchmark."""
    return int(args._bench_run(args) or 0)
