"""The `vvhand` command: one entry point, one module per sub-command.

Each sub-command lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their command runs, so
``vvhand --help`` stays fast and a broken optional dependency only affects the
command that needs it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). "bench" has its own sub-commands.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("vvhand_core.data.synthetic.cli", "write a synthetic hand dataset to a folder"),
    "eval": ("vvhand_core.evaluate_cli", "score predictions against ground truth (NYU/ICVL/MSRA)"),
    "eval-model": ("vvhand_core.eval_model", "run a model on a data set and score it"),
    "train": ("vvhand_core.train.cli", "train stage1 (A2J + teacher) or stage2 (student)"),
    "ablation": ("vvhand_core.ablation", "Tables 3/5 on the synthetic test split -> results.md"),
    "detector": ("vvhand_core.detector.cli", "train the hand detector; score localisers"),
    "bench": ("vvhand_core.benchmarks.cli", "renderer / pipeline speed into docs/results.md"),
    "export-onnx": ("vvhand_core.onnx_cli",
                    "write a model's networks as ONNX (run with backend onnxruntime)"),
    "replay": ("vvhand_ros.replay_cli", "evaluate the node or pipeline on a rosbag2 bag"),
    "synth-bag": ("vvhand_ros.synth_bag", "write a depth + info bag of a moving synthetic hand"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; sub-command modules add their own arguments lazily."""
    parser = argparse.ArgumentParser(
        prog="vvhand",
        description="3D hand pose from one depth image by virtual-view selection.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``vvhand COMMAND ...`` and return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name, rest = argv[0], argv[1:]
    module_name, help_text = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"vvhand {name}: cannot load {module_name}: {exc}", file=sys.stderr)
        return 2
    sub_parser = argparse.ArgumentParser(prog=f"vvhand {name}", description=help_text)
    module.add_arguments(sub_parser)
    args = sub_parser.parse_args(rest)
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
