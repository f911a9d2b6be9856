"""`vvhand detector train|eval|export-onnx`: train the hand detector, score localisers.

train: renders synthetic training scenes (seeds distinct from every test split: v1, v2,
v3 with its hands held and placed, and v3 scenes without hands as negatives), trains the
detector on random crops (from scratch, or ``--finetune`` from trained weights) and writes
the weights with a record of the run (sources, steps, wall time, loss curve, and the
scores of ``eval`` on both test splits), and their ONNX export next to them (as
export-onnx).
export-onnx: the two networks of detector weights (default: the packaged ones) as ONNX
files + a description with their sha256 next to the weights (``detector.shipped``), what
the localiser loads with onnxruntime, without torch.
eval: the geometric localiser and the detector on the synthetic test split (v1 scenes,
seed 3) and the new-scenes split (v2, seed 5): within 30 mm, no hand, errors, CPU time
per frame on one thread; a table appended to docs/results.md (``--no-results``: print
only). ``--runtime both`` (the default) times the detector with torch and onnxruntime on
the same frames, interleaved, and reports their ratio.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vvhand_core.benchmarks.results import append_section, markdown_table
from vvhand_core.detector.data import (
    build_examples,
    concat_examples,
    frame_sizes,
    load_examples,
    load_examples_prefix,
    save_examples,
)
from vvhand_core.detector.evaluate import HEADER, score_localisers
from vvhand_core.detector.localiser import (
    DetectorLocaliser,
    DetectorLocaliserConfig,
    default_weights_path,
    load_detector,
    save_detector,
)
from vvhand_core.detector.net import DetectorConfig, widen
from vvhand_core.detector.refine import RefineConfig, RefineNet, add_border_input, train_refiner
from vvhand_core.detector.runtime import RUNTIMES
from vvhand_core.detector.shipped import write_exported
from vvhand_core.detector.train import DetectorTrainConfig, config_dict, train_detector
from vvhand_core.localise import HandLocaliser, LocaliseConfig

# the fixed test splits: today's synthetic test split and the new person scenes
TEST_SPLITS = {"synthetic test (v1, seed 3)": {"seed": 3},
               "new scenes (v2, seed 5)": {"scene_version": 2, "seed": 5}}
TRAIN_SOURCES = {"v2": {"scene_version": 2, "seed": 1002}, "v1": {"seed": 1001},
                 "v3": {"scene_version": 3, "seed": 1003},
                 "v3 hand-free": {"scene_version": 3, "seed": 1003, "hand_free": True},
                 "v3b": {"scene_version": 3, "seed": 1004},
                 "v3b hand-free": {"scene_version": 3, "seed": 1004, "hand_free": True},
                 "v3c": {"scene_version": 3, "seed": 1005},
                 "v3c hand-free": {"scene_version": 3, "seed": 1005, "hand_free": True}}


def split_frames(synth: dict, n: int):
    """Frames 0..n-1 of the synthetic split ``synth`` (SynthConfig overrides), lazily."""
    from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator

    gen = SyntheticHandGenerator(SynthConfig.from_dict(synth))
    return (gen.frame(i) for i in range(n))


def localisers(weights: str, runtimes: tuple[str, ...] = ("auto",)) -> dict:
    """Name -> locate callable of every localiser compared (tracking off).

    One detector per runtime (``detector.runtime.RUNTIMES``), named by the one it runs,
    and the first runtime's also with ``hand_threshold=1`` (the nearest strong candidate
    wins however weak: the rule before confident hands were preferred).
    """
    out = {}
    for k, runtime in enumerate(runtimes):
        det = DetectorLocaliser(DetectorLocaliserConfig(weights=weights, use_tracking=False,
                                                        runtime=runtime))
        out[f"detector (learned, {det.runtime})"] = det.locate
        if k == 0:
            plain = DetectorLocaliser(DetectorLocaliserConfig(
                weights=weights, use_tracking=False, runtime=runtime, hand_threshold=1.0))
            out[f"detector, hand_threshold 1 (learned, {plain.runtime})"] = plain.locate
    out["geometric (nearest object)"] = HandLocaliser(LocaliseConfig(use_tracking=False)).locate
    return out


def evaluate_all(weights: str, frames: int, runtimes: tuple[str, ...] = ("auto",)
                 ) -> list[list[object]]:
    """Rows [split, localiser, *LocaliserScore.row()] on both test splits.

    The localisers of one split run on the same frames, interleaved (comparable times).
    """
    torch.set_num_threads(1)
    rows = []
    for split, synth in TEST_SPLITS.items():
        cached = list(split_frames(synth, frames))
        with tqdm(total=len(cached), desc=split, leave=False) as bar:
            scores = score_localisers(localisers(weights, runtimes), cached, bar.update)
        rows += [[split, name, *s.row()] for name, s in scores.items()]
    return rows


def runtime_ratios(rows: list[list[object]]) -> list[str]:
    """Per split with both detector runtimes: their ms/frame and onnxruntime / torch."""
    lines = []
    for split in TEST_SPLITS:
        ms = {r[1]: r[-1] for r in rows if r[0] == split}
        t, o = ms.get("detector (learned, torch)"), ms.get("detector (learned, onnxruntime)")
        if t and o:
            lines.append(f"{split}: detector {t:.2f} ms/frame with torch, {o:.2f} with "
                         f"onnxruntime (onnxruntime / torch = {o / t:.2f})")
    return lines


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
                        "v3b-hand-free, v3c, v3c-hand-free; default 1)")
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
    t.add_argument("--workers", type=int, default=2, help="processes rendering frames")
    t.add_argument("--threads", type=int, default=2, help="torch threads for training")
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


def _examples(args: argparse.Namespace, net_cfg: DetectorConfig):
    """The training examples: rendered now, or loaded from ``--examples`` when it exists."""
    sources = [(TRAIN_SOURCES["v2"], args.v2_frames), (TRAIN_SOURCES["v1"], args.v1_frames),
               (TRAIN_SOURCES["v3"], args.v3_frames),
               (TRAIN_SOURCES["v3 hand-free"], args.v3_free_frames),
               (TRAIN_SOURCES["v3b"], getattr(args, "v3b_frames", 0)),
               (TRAIN_SOURCES["v3b hand-free"], getattr(args, "v3b_free_frames", 0)),
               (TRAIN_SOURCES["v3c"], getattr(args, "v3c_frames", 0)),
               (TRAIN_SOURCES["v3c hand-free"], getattr(args, "v3c_free_frames", 0))]
    sources = [(s, n) for s, n in sources if n > 0]
    cache = Path(args.examples) if args.examples else None
    if cache is not None and cache.is_file():
        return load_examples(cache, sources, net_cfg), sources
    base, done = None, 0
    if getattr(args, "examples_from", ""):
        base, done = load_examples_prefix(args.examples_from, sources, net_cfg)
    if done < len(sources):
        with tqdm(total=sum(n for _, n in sources[done:]), desc="render scenes",
                  unit="frame") as bar:
            ex = build_examples(sources[done:], net_cfg, workers=args.workers,
                                progress=bar.update)
        ex = ex if base is None else concat_examples(base, ex)
    else:  # every source is the cached file's (its targets brought up to date)
        ex = base
    if cache is not None:
        save_examples(cache, ex, sources, net_cfg)
    return ex, sources


def _start_refiner(args: argparse.Namespace, start, ex, sources, net_cfg: DetectorConfig):
    """The refiner to train and the time its training starts.

    ``start`` or a new one, with the border channel when asked; fills ``ex.sizes`` when
    the border channel needs them (and writes them to ``--examples``).
    """
    if start is not None and args.refine_width != start.config.width:
        raise SystemExit(f"--refine-width {args.refine_width}: the refiner of --finetune is "
                         f"{start.config.width} wide (widening it is not implemented)")
    refiner = start or RefineNet(args.refine_width, border=args.refine_border)
    if args.refine_border and not refiner.config.border:
        refiner = add_border_input(refiner)
    if refiner.config.border and ex.sizes is None:
        with tqdm(total=len(ex.depth), desc="image sizes", unit="frame") as bar:
            ex.sizes = frame_sizes(sources, net_cfg, progress=bar.update)
        if args.examples:
            save_examples(args.examples, ex, sources, net_cfg)
    return refiner, time.perf_counter()


def source_weights(text: str, sources: list[tuple[dict, int]]) -> np.ndarray | None:
    """Per-frame weights (N,) from "name=w,..." over the sources' frames (None: uniform).

    Names are ``TRAIN_SOURCES``' ("v3 hand-free" also as "v3-hand-free"); SystemExit on an
    unknown name or a bad number.
    """
    if not text.strip():
        return None
    given = {}
    for item in (x.strip() for x in text.split(",") if x.strip()):
        name, _, value = item.partition("=")
        name = name.strip().replace("-hand", " hand")
        try:
            given[name] = float(value)
        except ValueError:
            raise SystemExit(f"--source-weights: {item!r} is not name=number") from None
        if name not in TRAIN_SOURCES or given[name] < 0:
            raise SystemExit(f"--source-weights: {item!r}: names are {', '.join(TRAIN_SOURCES)}"
                             " and weights >= 0")
    names = {json.dumps(v, sort_keys=True): k for k, v in TRAIN_SOURCES.items()}
    return np.concatenate([np.full(n, given.get(names[json.dumps(s, sort_keys=True)], 1.0))
                           for s, n in sources])


def _train_heat(args: argparse.Namespace, ex, net_cfg: DetectorConfig, start=None,
                weights: np.ndarray | None = None):
    """Train the heat-map network (a new one, or ``start`` further); it and its record."""
    cfg = DetectorTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr)
    t0 = time.perf_counter()
    with tqdm(total=cfg.steps, desc="train detector", unit="step") as bar:
        def tick(step, parts):
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(heat=f"{parts['heat']:.3f}", dz=f"{parts['dz']:.3f}")
        net, hist = train_detector(ex, net_cfg, cfg, progress=tick, net=start,
                                   frame_weights=weights)
    curve = [{k: round(h[k], 4) for k in ("step", "loss", "heat", "dz", "s")}
             for h in hist[:: max(1, len(hist) // 40)]]
    return net, {"train": config_dict(cfg), "train_s": round(time.perf_counter() - t0, 1),
                 "loss_curve": curve}


def _save(out: str, net, meta: dict, refiner) -> Path:
    """Write the weights and their ONNX export (the localiser loads that with onnxruntime)."""
    path = save_detector(out, net, meta, refiner)
    write_exported(path, verify=False)
    return path


def _export(args: argparse.Namespace) -> int:
    meta = write_exported(args.weights or default_weights_path(), verify=not args.no_verify)
    for name, entry in meta["networks"].items():
        print(f"{name}: {entry['file']} ({entry['bytes']} bytes, sha256 {entry['sha256']})")
    for name, diff in meta.get("verification", {}).get("max_abs_diff_on_random_inputs",
                                                        {}).items():
        print(f"{name}: max |onnxruntime - torch| on random inputs {diff:.2e}")
    return 0


def _train(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.init and args.finetune:
        raise SystemExit("--init and --finetune exclude each other")
    start = start_refiner = None
    if args.init:  # keep a trained heat-map network (and its record), train the refiner
        net, _, record = load_detector(args.init)
        net_cfg = net.config
        heat = {"from": args.init, "record": record}
    elif args.finetune:  # both networks start from trained weights
        start, start_refiner, record = load_detector(args.finetune)
        net_cfg = start.config
    else:
        net_cfg = DetectorConfig(width=args.width)
    if args.refiner_from:
        if not args.finetune:
            raise SystemExit("--refiner-from needs --finetune")
        _, start_refiner, refiner_record = load_detector(args.refiner_from)
        if start_refiner is None:
            raise SystemExit(f"--refiner-from {args.refiner_from}: these weights have no "
                             "refiner")
    ex, sources = _examples(args, net_cfg)
    if start is not None and args.widen:  # after the examples: they do not depend on width
        start = widen(start, args.widen)
        net_cfg = start.config
    meta = {"sources": [{"synth": s, "frames": n} for s, n in sources],
            "canonical_size": list(ex.depth.shape[1:]), "threads": args.threads,
            "examples_s": round(time.perf_counter() - t0, 1)}
    if args.finetune:
        meta["finetune"] = {"from": args.finetune, "record": record}
        if args.widen:
            meta["finetune"]["widened_to"] = args.widen
    for name in ("source_weights", "refine_source_weights"):
        if getattr(args, name):
            meta[name] = getattr(args, name)
    if args.finetune and args.steps == 0:  # the start's heat-map network kept as it is
        net, heat = start, {"steps": 0, "kept_from": args.finetune}
    elif not args.init:
        net, heat = _train_heat(args, ex, net_cfg, start,
                                source_weights(args.source_weights, sources))
    meta["heat_net"] = heat
    refiner = start_refiner  # kept as it is unless trained below (--finetune only)
    if refiner is not None and args.refine_steps == 0:
        meta["refiner"] = {"steps": 0, "kept_from": args.refiner_from or args.finetune}
    if args.refiner_from:
        meta["refiner_from"] = {"from": args.refiner_from, "record": refiner_record}
    if args.refine_steps > 0:
        refiner, t1 = _start_refiner(args, start_refiner, ex, sources, net_cfg)
        with tqdm(total=args.refine_steps, desc="train refiner", unit="step") as bar:
            losses = train_refiner(
                refiner, ex, net_cfg, args.refine_steps, progress=lambda s, loss: bar.update(1),
                frame_weights=source_weights(args.refine_source_weights, sources))
        every = max(1, len(losses) // 40)
        meta["refiner"] = {"steps": args.refine_steps, "config": refiner.config.to_dict(),
                           "train_s": round(time.perf_counter() - t1, 1),
                           "loss_curve": [round(x, 4) for x in losses[::every]]}
    out = _save(args.out, net, meta, refiner)
    print(f"wrote {out} ({time.perf_counter() - t0:.0f} s)")
    if args.eval_frames > 0:
        rows = evaluate_all(str(out), args.eval_frames)
        print(markdown_table(["split", "localiser", *HEADER], rows))
        meta["eval"] = [[str(x) if not isinstance(x, float) else round(x, 2) for x in r]
                        for r in rows]
        _save(out, net, meta, refiner)
    Path(out).with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch."""
    if args.action == "train":
        return _train(args)
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
