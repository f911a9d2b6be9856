"""`vvhand export-onnx [MODEL] OUT_DIR`: a checkpoint's networks as ONNX + their description.

MODEL defaults to the shipped default model. OUT_DIR receives student.onnx, a2j.onnx,
teacher.onnx and vvhand_onnx.json (vvhand_core.onnx_model); run it with the pipeline's
backend "onnxruntime" (``VirtualViewPipeline.from_checkpoint(OUT_DIR)``, the node's
``model_path:=OUT_DIR backend:=onnxruntime``).
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vvhand export-onnx``."""
    parser.add_argument("model", nargs="?", default="", metavar="MODEL",
                        help="vvhand checkpoint (.pt); default: the shipped default model")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="directory to write the models to")
    parser.add_argument("--no-check", action="store_true",
                        help="do not load the written models with onnxruntime and compare "
                             "them with torch on random inputs")


def run(args: argparse.Namespace) -> int:
    """Export, print what was written; 1 with one message for a bad checkpoint."""
    from vvhand_core.assets import default_model_path
    from vvhand_core.checkpoint import CheckpointError
    from vvhand_core.onnx_export import export_onnx

    model = args.model or str(default_model_path())
    try:
        meta = export_onnx(model, args.out_dir, check=not args.no_check)
    except (CheckpointError, ImportError, ValueError) as exc:
        print(f"vvhand export-onnx: {exc}", file=sys.stderr)
        return 1
    nets = ", ".join(f"{n['file']} {n['inputs']} -> {n['outputs']}"
                     for n in meta["networks"].values())
    print(f"wrote {args.out_dir}: {nets}; skeleton {meta['skeleton']['name']}, cube "
          f"{meta['cube_mm']:g} mm, crop {meta['crop_size']} px, {meta['num_candidates']} "
          "candidate views")
    if "verification" in meta:
        diffs = meta["verification"]["max_abs_diff_on_random_inputs"]
        print("max |onnxruntime - torch| on random inputs: "
              + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    return 0
