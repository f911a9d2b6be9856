"""`vvhand detector train|eval|export-onnx`: train the hand detector, score localisers.

train (``detector.train_command``): renders synthetic training scenes, trains the
detector (from scratch, or ``--finetune`` from trained weights) and writes the weights with
a record of the run and their ONNX export next to them (as export-onnx).
export-onnx: the two networks of detector weights (default: the packaged ones) as ONNX
files + a description with their sha256 next to the weights (``detector.shipped``), what
the localiser loads with onnxruntime, without torch.
eval (``detector.evaluate.evaluate_all``): the geometric localiser and the detector on the
synthetic test split (v1 scenes, seed 3) and the new-scenes split (v2, seed 5): within 30
mm, no hand, errors, CPU time per frame on one thread; a table appended to
docs/results.md (``--no-results``: print only). ``--runtime both`` (the default) times the
detector with torch and onnxruntime on the same frames, interleaved, and reports their
ratio.
"""

from __future__ import annotations

import argparse

from vvhand_core.benchmarks.results import append_section, markdown_table
from vvhand_core.detector.evaluate import HEADER, evaluate_all, runtime_ratios
from vvhand_core.detector.localiser import default_weights_path
from vvhand_core.detector.net import DetectorConfig
from vvhand_core.detector.refine import RefineConfig
from vvhand_core.detector.runtime import RUNTIMES
from vvhand_core.detector.shipped import write_exported
from vvhand_core.detector.train import DetectorTrainConfig
from vvhand_core.detector.train_command import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Train / eval sub-commands."""
    sub = parser.add_subparsers(dest="action", required=True)
    t = sub.add_parser("train", help="train the hand detector on synthetic scenes")
    t.add_argument("--v2-frames", type=int, default=6000, help="person scenes to render")
    t.add_argument("--v1-frames", type=int, default=1500, help="hand-only scenes to render")
    t.add_argument("--v3-frames", type=int, default=0,
                   help="scenes version 3 to render (held objects, egocentric and overhead "
                        "cameras, every hand labelled)")
    t.add_argument("--v3-free-frames", type=int, default=0,
                   help="scenes version 3 rendered without hands (negatives)")
    t.add_argument("--v3b-frames", type=int, default=0,
                   help="more scenes version 3, another seed (1004)")
    t.add_argument("--v3b-free-frames", type=int, default=0,
                   help="scenes version 3 of seed 1004 rendered without hands (negatives)")
    t.add_argument("--v3c-frames", type=int, default=0,
                   help="more scenes version 3, a third seed (1005)")
    t.add_argument("--v3c-free-frames", type=int, default=0,
                   help="scenes version 3 of seed 1005 rendered without hands (negatives)")
    t.add_argument("--v3d-frames", type=int, default=0,
                   help="more scenes version 3, a fourth seed (1006)")
    t.add_argument("--v3d-free-frames", type=int, default=0,
                   help="scenes version 3 of seed 1006 rendered without hands (negatives)")
    t.add_argument("--steps", type=int, default=DetectorTrainConfig.steps)
    t.add_argument("--batch-size", type=int, default=DetectorTrainConfig.batch_size)
    t.add_argument("--lr", type=float, default=DetectorTrainConfig.lr)
    t.add_argument("--init", default="",
                   help="start from these detector weights: keep their heat-map network "
                        "(and its record), train only the refiner")
    t.add_argument("--finetune", default="",
                   help="start both networks from these detector weights and train them "
                        "further (--steps, --lr, --refine-steps) on the sources given; "
                        "--steps 0 keeps its heat-map network as it is")
    t.add_argument("--refine-steps", type=int, default=1500,
                   help="steps of the refiner (patch -> centre offset; 0: none, or with "
                        "--finetune the start's refiner kept as it is)")
    t.add_argument("--source-weights", default="",
                   help="how often the heat-map network draws each source's frames, "
                        "relative, e.g. 'v1=3' (names: v2, v1, v3, v3-hand-free, v3b, "
                        "v3b-hand-free, v3c, v3c-hand-free, v3d, v3d-hand-free; default 1)")
    t.add_argument("--close-pair-weight", type=float, default=1.0,
                   help="how often the heat-map network draws frames with two hands "
                        "whose heat points (centres) lie within 40 canonical pixels, "
                        "relative to --source-weights (1: as often; "
                        "detector.data.close_pair_frames)")
    t.add_argument("--refine-source-weights", default="",
                   help="as --source-weights, for the refiner's frames")
    t.add_argument("--refiner-from", default="",
                   help="with --finetune: start the refiner from these detector weights' "
                        "refiner instead (e.g. one trained in a refiner-only run), then "
                        "train it --refine-steps further (0: keep it as it is)")
    t.add_argument("--refine-width", type=int, default=RefineConfig.width,
                   help="first-stage channels of a new refiner (not with --finetune)")
    t.add_argument("--refine-border", action="store_true",
                   help="give the refiner a fourth input channel, 1 inside the image and 0 "
                        "beyond its border (with --finetune: added to the start's refiner, "
                        "zero weights at first); needs the examples' image sizes, remade "
                        "and written to --examples once when the file lacks them")
    t.add_argument("--width", type=int, default=DetectorConfig.width)
    t.add_argument("--widen", type=int, default=0,
                   help="with --finetune: widen the start's heat-map network to this "
                        "first-stage width first (detector.net.widen: the same function, "
                        "more channels to train)")
    t.add_argument("--context-blocks", type=int, default=0,
                   help="a stride-16 context stage of this many blocks in the heat-map "
                        "network (0: none); with --finetune added to the start's network "
                        "(detector.net.deepen: the same function at first)")
    t.add_argument("--checkpoint-min", type=float, default=10.0,
                   help="every this many minutes write both networks as they are in "
                        "training to OUT with the suffix .checkpoint.pt, a start for "
                        "--finetune if the run is cut short (0: never)")
    t.add_argument("--workers", type=int, default=2, help="processes rendering frames")
    t.add_argument("--threads", type=int, default=2, help="torch threads for training")
    t.add_argument("--device", default="cpu",
                   help="torch device both networks train on: cpu, cuda, cuda:N or auto "
                        "(cuda when there is one; the crops are still cut on the CPU; "
                        "weights are written from the CPU)")
    t.add_argument("--out", default=str(default_weights_path()))
    t.add_argument("--examples", default="",
                   help="a .npz of rendered examples: loaded when it exists, else written "
                        "after rendering (reuse across training runs)")
    t.add_argument("--examples-from", default="",
                   help="with --examples (not yet written): a .npz of examples whose "
                        "sources are the first of this run's; only the others are rendered "
                        "(examples written before the off-image targets get them added)")
    t.add_argument("--eval-frames", type=int, default=200,
                   help="frames per test split scored after training (0: skip)")
    e = sub.add_parser("eval", help="score localisers on the test splits -> results.md")
    e.add_argument("--weights", default="", help="detector weights (default: packaged)")
    e.add_argument("--frames", type=int, default=200)
    e.add_argument("--runtime", default="both", choices=[*RUNTIMES, "both"],
                   help="where the detector's networks run; both: torch and onnxruntime "
                        "on the same frames, interleaved, with their time ratio")
    e.add_argument("--no-results", action="store_true", help="print only")
    x = sub.add_parser("export-onnx", help="write the detector's networks as ONNX files "
                                           "next to its weights (the packaged ones: "
                                           "regenerates the shipped files)")
    x.add_argument("--weights", default="", help="detector weights (default: packaged)")
    x.add_argument("--no-verify", action="store_true",
                   help="skip comparing onnxruntime with torch (needs onnxruntime)")


def _export(args: argparse.Namespace) -> int:
    meta = write_exported(args.weights or default_weights_path(), verify=not args.no_verify)
    for name, entry in meta["networks"].items():
        print(f"{name}: {entry['file']} ({entry['bytes']} bytes, sha256 {entry['sha256']})")
    for name, diff in meta.get("verification", {}).get("max_abs_diff_on_random_inputs",
                                                        {}).items():
        print(f"{name}: max |onnxruntime - torch| on random inputs {diff:.2e}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch."""
    if args.action == "train":
        return train(args)
    if args.action == "export-onnx":
        return _export(args)
    runtimes = ("torch", "onnxruntime") if args.runtime == "both" else (args.runtime,)
    rows = evaluate_all(args.weights, args.frames, runtimes)
    table = markdown_table(["split", "localiser", *HEADER], rows)
    ratios = runtime_ratios(rows)
    print("\n".join([table, *ratios]))
    if not args.no_results:
        body = (table + "\n\nWithin 30 mm: localised centre within 30 mm of the ground-truth "
                "joint mean (no-hand frames count as misses). ms/frame: the localiser alone, "
                "one thread (torch and onnxruntime), mean over the split's frames (v1 frames "
                "are 640x480; v2 frames 320x240 to 1280x720), the localisers of a split "
                "interleaved frame by frame. Tracking off.")
        if ratios:
            body += "\n\n" + "  \n".join(ratios)
        weights = args.weights or "packaged detector"
        append_section(f"Hand localisation ({weights})",
                       f"vvhand detector eval --frames {args.frames} --runtime {args.runtime}",
                       body)
    return 0
