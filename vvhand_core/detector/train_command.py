"""`vvhand detector train`: render training scenes, train the detector, write its weights.

Renders synthetic training scenes (``TRAIN_SOURCES``: seeds distinct from every test
split; v1, v2, v3 with its hands held and placed, and v3 scenes without hands as
negatives) or loads them from ``--examples``, trains the heat-map network on random crops
(from scratch, or ``--finetune`` from trained weights, optionally widened or given a
context stage) and the refiner, and writes the weights with a record of the run (sources,
steps, wall time, loss curve, and the scores of ``vvhand detector eval`` on the test
splits) and their ONNX export next to them. Options: ``detector.cli.add_arguments``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vvhand_core.benchmarks.results import markdown_table
from vvhand_core.checkpoint import resolve_device
from vvhand_core.detector.data import (
    build_examples,
    close_pair_frames,
    concat_examples,
    frame_sizes,
)
from vvhand_core.detector.evaluate import HEADER, evaluate_all
from vvhand_core.detector.examples_file import (
    load_examples,
    load_examples_prefix,
    save_examples,
)
from vvhand_core.detector.localiser import load_detector, save_detector
from vvhand_core.detector.net import DetectorConfig, deepen, widen
from vvhand_core.detector.refine import RefineNet, add_border_input, train_refiner
from vvhand_core.detector.shipped import write_exported
from vvhand_core.detector.train import DetectorTrainConfig, config_dict, train_detector

TRAIN_SOURCES = {"v2": {"scene_version": 2, "seed": 1002}, "v1": {"seed": 1001},
                 "v3": {"scene_version": 3, "seed": 1003},
                 "v3 hand-free": {"scene_version": 3, "seed": 1003, "hand_free": True},
                 "v3b": {"scene_version": 3, "seed": 1004},
                 "v3b hand-free": {"scene_version": 3, "seed": 1004, "hand_free": True},
                 "v3c": {"scene_version": 3, "seed": 1005},
                 "v3c hand-free": {"scene_version": 3, "seed": 1005, "hand_free": True},
                 "v3d": {"scene_version": 3, "seed": 1006},
                 "v3d hand-free": {"scene_version": 3, "seed": 1006, "hand_free": True}}


def training_examples(args: argparse.Namespace, net_cfg: DetectorConfig):
    """The training examples: rendered now, or loaded from ``--examples`` when it exists."""
    sources = [(TRAIN_SOURCES["v2"], args.v2_frames), (TRAIN_SOURCES["v1"], args.v1_frames),
               (TRAIN_SOURCES["v3"], args.v3_frames),
               (TRAIN_SOURCES["v3 hand-free"], args.v3_free_frames),
               (TRAIN_SOURCES["v3b"], getattr(args, "v3b_frames", 0)),
               (TRAIN_SOURCES["v3b hand-free"], getattr(args, "v3b_free_frames", 0)),
               (TRAIN_SOURCES["v3c"], getattr(args, "v3c_frames", 0)),
               (TRAIN_SOURCES["v3c hand-free"], getattr(args, "v3c_free_frames", 0)),
               (TRAIN_SOURCES["v3d"], getattr(args, "v3d_frames", 0)),
               (TRAIN_SOURCES["v3d hand-free"], getattr(args, "v3d_free_frames", 0))]
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


def heat_weights(args: argparse.Namespace, ex, sources: list[tuple[dict, int]]
                 ) -> np.ndarray | None:
    """The heat-map network's frame weights (N,); None: uniform.

    ``--source-weights``, times ``--close-pair-weight`` for frames with two hands close in
    the image (``data.close_pair_frames``). SystemExit for a negative factor.
    """
    weights = source_weights(args.source_weights, sources)
    factor = getattr(args, "close_pair_weight", 1.0)
    if factor == 1.0:
        return weights
    if factor < 0:
        raise SystemExit(f"--close-pair-weight {factor:g}: must be >= 0")
    base = np.ones(len(ex.hands)) if weights is None else weights
    return base * np.where(close_pair_frames(ex.hands), factor, 1.0)


class Checkpoints:
    """The networks in training written to ``--out`` with the suffix ``.checkpoint.pt``.

    Every ``--checkpoint-min`` minutes (0: never): the heat-map network and the refiner
    as they are, ``meta`` with ``checkpoint``: {"phase", "step", "of"}; ``--finetune``
    reads the file (a run cut short goes on from it).
    """

    def __init__(self, args: argparse.Namespace, meta: dict) -> None:
        self.path = Path(args.out).with_suffix(".checkpoint.pt")
        self.every_s = 60.0 * args.checkpoint_min
        self.meta = meta
        self.last = time.perf_counter()

    def due(self) -> bool:
        """Whether the next write is due (never when checkpoints are off)."""
        return self.every_s > 0 and time.perf_counter() - self.last >= self.every_s

    def write(self, net, refiner, phase: str, step: int, of: int) -> None:
        """Write both networks now (``refiner`` may be None)."""
        save_detector(self.path, net, {**self.meta, "checkpoint": {"phase": phase,
                                                                   "step": step, "of": of}},
                      refiner)
        self.last = time.perf_counter()
        tqdm.write(f"checkpoint: {self.path} ({phase} step {step} of {of})")


def _train_heat(args: argparse.Namespace, ex, net_cfg: DetectorConfig, start=None,
                weights: np.ndarray | None = None, checkpoint=None):
    """Train the heat-map network (a new one, or ``start`` further); it and its record.

    ``checkpoint``: optional callable(net, step), called after every step (it decides when
    to write: :meth:`Checkpoints.due`).
    """
    cfg = DetectorTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                              device=args.device)
    t0 = time.perf_counter()
    with tqdm(total=cfg.steps, desc="train detector", unit="step") as bar:
        def tick(step, parts):
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(heat=f"{parts['heat']:.3f}", dz=f"{parts['dz']:.3f}")
        net, hist = train_detector(ex, net_cfg, cfg, progress=tick, net=start,
                                   frame_weights=weights, checkpoint=checkpoint,
                                   checkpoint_s=0.0)
    curve = [{k: round(h[k], 4) for k in ("step", "loss", "heat", "dz", "s")}
             for h in hist[:: max(1, len(hist) // 40)]]
    return net, {"train": config_dict(cfg), "train_s": round(time.perf_counter() - t0, 1),
                 "loss_curve": curve}


def check_device(device: str) -> str:
    """The torch device name to train on; SystemExit naming ``--device`` if unusable here.

    ``checkpoint.resolve_device``'s rule ("auto": cuda when there is one, else cpu);
    checked before any work.
    """
    try:
        dev = resolve_device(device)
    except ValueError as exc:
        raise SystemExit(f"--device {device!r}: {exc}") from None
    if dev.type not in ("cpu", "cuda"):
        raise SystemExit(f"--device {device}: only cpu and cuda are supported")
    return str(dev)


def save_with_export(out: str, net, meta: dict, refiner) -> Path:
    """Write the weights and their ONNX export (the localiser loads that with onnxruntime)."""
    path = save_detector(out, net, meta, refiner)
    write_exported(path, verify=False)
    return path


def train(args: argparse.Namespace) -> int:
    """`vvhand detector train` (module docstring); 0 on success, SystemExit on bad options."""
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    args.device = check_device(args.device)
    if args.init and args.finetune:
        raise SystemExit("--init and --finetune exclude each other")
    if args.init and args.context_blocks:
        raise SystemExit("--context-blocks changes the heat-map network, which --init keeps")
    start = start_refiner = None
    if args.init:  # keep a trained heat-map network (and its record), train the refiner
        net, _, record = load_detector(args.init)
        net_cfg = net.config
        heat = {"from": args.init, "record": record}
    elif args.finetune:  # both networks start from trained weights
        start, start_refiner, record = load_detector(args.finetune)
        net_cfg = start.config
    else:
        net_cfg = DetectorConfig(width=args.width, context_blocks=args.context_blocks)
    if args.refiner_from:
        if not args.finetune:
            raise SystemExit("--refiner-from needs --finetune")
        _, start_refiner, refiner_record = load_detector(args.refiner_from)
        if start_refiner is None:
            raise SystemExit(f"--refiner-from {args.refiner_from}: these weights have no "
                             "refiner")
    ex, sources = training_examples(args, net_cfg)
    if start is not None and args.widen:  # after the examples: they do not depend on width
        start = widen(start, args.widen)
        net_cfg = start.config
    if start is not None and args.context_blocks:
        if start.config.context_blocks:
            raise SystemExit(f"--context-blocks: {args.finetune} already has a context stage "
                             f"({start.config.context_blocks} blocks)")
        start = deepen(start, args.context_blocks)
        net_cfg = start.config
    meta = {"sources": [{"synth": s, "frames": n} for s, n in sources],
            "canonical_size": list(ex.depth.shape[1:]), "threads": args.threads,
            "device": args.device,
            "examples_s": round(time.perf_counter() - t0, 1)}
    if args.finetune:
        meta["finetune"] = {"from": args.finetune, "record": record}
        if args.widen:
            meta["finetune"]["widened_to"] = args.widen
        if args.context_blocks:
            meta["finetune"]["context_blocks_added"] = args.context_blocks
    if getattr(args, "close_pair_weight", 1.0) != 1.0:
        meta["close_pair_weight"] = args.close_pair_weight
    for name in ("source_weights", "refine_source_weights"):
        if getattr(args, name):
            meta[name] = getattr(args, name)
    checkpoints = Checkpoints(args, meta)
    if args.finetune and args.steps == 0:  # the start's heat-map network kept as it is
        net, heat = start, {"steps": 0, "kept_from": args.finetune}
    elif not args.init:
        def heat_checkpoint(heat_net, step: int) -> None:
            if checkpoints.due():
                checkpoints.write(heat_net, start_refiner, "heat_net", step, args.steps)
        net, heat = _train_heat(args, ex, net_cfg, start, heat_weights(args, ex, sources),
                                heat_checkpoint)
    meta["heat_net"] = heat
    refiner = start_refiner  # kept as it is unless trained below (--finetune only)
    if refiner is not None and args.refine_steps == 0:
        meta["refiner"] = {"steps": 0, "kept_from": args.refiner_from or args.finetune}
    if args.refiner_from:
        meta["refiner_from"] = {"from": args.refiner_from, "record": refiner_record}
    if args.refine_steps > 0:
        refiner, t1 = _start_refiner(args, start_refiner, ex, sources, net_cfg)
        with tqdm(total=args.refine_steps, desc="train refiner", unit="step") as bar:
            def tick(step: int, loss: float) -> None:
                bar.update(1)
                if checkpoints.due():
                    checkpoints.write(net, refiner, "refiner", step, args.refine_steps)
            losses = train_refiner(
                refiner, ex, net_cfg, args.refine_steps, progress=tick,
                frame_weights=source_weights(args.refine_source_weights, sources),
                device=args.device)
        every = max(1, len(losses) // 40)
        meta["refiner"] = {"steps": args.refine_steps, "config": refiner.config.to_dict(),
                           "train_s": round(time.perf_counter() - t1, 1),
                           "loss_curve": [round(x, 4) for x in losses[::every]]}
    out = save_with_export(args.out, net, meta, refiner)
    print(f"wrote {out} ({time.perf_counter() - t0:.0f} s)")
    if args.eval_frames > 0:
        rows = evaluate_all(str(out), args.eval_frames)
        print(markdown_table(["split", "localiser", *HEADER], rows))
        meta["eval"] = [[str(x) if not isinstance(x, float) else round(x, 2) for x in r]
                        for r in rows]
        save_with_export(out, net, meta, refiner)
    Path(out).with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return 0
