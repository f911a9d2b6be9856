"""Latency a robot feels: depth frames at camera rate through hand_pose_node (loopback).

`vvhand bench latency`: a person-scene bag with ground truth (`vvhand synth-bag --scenes
2`) at --fps frames/s is published onto a hand_pose_node child process at its own timing
(`vvhand replay --mode live --rate 1`), once per backend. The node keeps only the newest
frame (docs/ros.md, "Behaviour under load"), so at a rate above what it can process it
drops frames rather than queue them. Per backend: frames answered and dropped, output
rate, end-to-end latency (publish -> HandPose received) p50 / p95 / max, the node's own
processing time p50 / p95 and the accuracy of the answered frames. A backend entry may add
the node's optional stages: ``onnxruntime+mirror+fit`` (parameters mirror, fit).
``--scenes 3``: stills of the v3 test scenes with two labelled hands (seed 9, `vvhand
synth-bag --scenes 3 --two-hands`) instead, and the hands reported of those labelled;
``--max-hands``: the node's max_hands (default 2, its default). Appends a table to
docs/results.md (or $VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

HEADER = ["backend", "frames in", "answered", "dropped", "output frames/s", "end-to-end p50 ms",
          "p95 ms", "max ms", "processing p50 ms", "p95 ms", "answered with a hand",
          "mean error mm (those)", "hands reported / labelled"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench latency`."""
    parser.add_argument("--fps", type=float, default=30.0, help="input frame rate")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the input")
    parser.add_argument("--backends", default="torch,onnxruntime",
                        help="comma-separated node backends, each optionally with +mirror "
                             "and / or +fit (e.g. onnxruntime+mirror+fit)")
    parser.add_argument("--model", default="", help="checkpoint; default: the shipped model")
    parser.add_argument("--seed", type=int, default=7, help="seed of the bag's motion")
    parser.add_argument("--scenes", type=int, choices=(2, 3), default=2,
                        help="2: person scenes (one hand moving); 3: v3 stills with two "
                             "labelled hands (seed 9)")
    parser.add_argument("--max-hands", type=int, default=2, help="the node's max_hands")
    parser.add_argument("--num-threads", type=int, default=0,
                        help="the node's num_threads (1: its networks on one core; 0: its "
                             "default, one per core)")
    parser.add_argument("--bag", type=Path, default=None,
                        help="replay this bag (written by `vvhand synth-bag` with the same "
                             "--scenes and --fps) instead of writing one")
    parser.add_argument("--dds", choices=("large-images", "default"), default="large-images",
                        help="large-images: the Fast DDS profile of docs/ros.md ('Large "
                             "images': 640x480 frames through shared memory) for the "
                             "publisher and the node; default: Fast DDS's defaults (UDP "
                             "fragments); a set FASTDDS_DEFAULT_PROFILES_FILE wins over both")
    parser.add_argument("--no-write", action="store_true", help="print only")


def parse_variant(entry: str) -> tuple[str, bool, bool]:
    """'onnxruntime+mirror+fit' -> ("onnxruntime", mirror, fit); ValueError otherwise."""
    backend, *stages = [x.strip() for x in entry.split("+")]
    unknown = set(stages) - {"mirror", "fit"}
    if not backend or unknown:
        raise ValueError(f"bad --backends entry {entry!r}: <backend>[+mirror][+fit]")
    return backend, "mirror" in stages, "fit" in stages


def row(backend: str, report) -> list[object]:
    """One table row from a live replay report."""
    lat = report.latency_ms
    e2e = [r.end_to_end_ms for r in report.records if r.answered]
    acc = report.accuracy or {}
    return [backend, report.frames, report.answered, report.dropped, report.fps,
            lat["end_to_end_p50"], lat["end_to_end_p95"], float(np.nanmax(e2e)) if e2e
            else float("nan"), lat["processing_p50"], lat["processing_p95"],
            acc.get("frames_scored", 0), acc.get("mean_error_mm", float("nan")),
            _hands(report)]


def _hands(report) -> str:
    """"matched / labelled" of every hand (replay's ``hands``), "-" without them."""
    s = report.hands.get("all")
    return f"{s['matched']} / {s['labelled']}" if s else "-"


def run(args: argparse.Namespace) -> int:
    """Write the bag, replay it live once per backend, print and append the table."""
    from vvhand_core.benchmarks.results import append_section, markdown_table
    from vvhand_ros.bag import read_ground_truth
    from vvhand_ros.reliability_harness import dds_environment
    from vvhand_ros.replay import ReplayConfig, run_replay
    from vvhand_ros.synth_bag import write_synthetic_bag

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    frames = max(1, int(round(args.fps * args.seconds)))
    rows = []
    with tempfile.TemporaryDirectory(prefix="vvhand_latency_") as tmp, \
            dds_environment(args.dds) as dds:
        bag = args.bag or Path(tmp) / "bag"
        if args.bag is not None:
            frames = len(read_ground_truth(bag))
        elif args.scenes == 3:
            write_synthetic_bag(bag, frames, seed=9, fps=args.fps, scene_version=3,
                                two_hands=True, progress=False)
        else:
            write_synthetic_bag(bag, frames, seed=args.seed, fps=args.fps, scene_version=2)
        for entry in [b.strip() for b in args.backends.split(",") if b.strip()]:
            backend, mirror, fit = parse_variant(entry)
            cfg = ReplayConfig(bag=bag, mode="live", model=args.model, backend=backend,
                               mirror=mirror, fit=fit, rate=1.0, out_dir=Path(tmp) / entry,
                               max_hands=args.max_hands, num_threads=args.num_threads)
            report, _, _ = run_replay(cfg, progress=False)
            rows.append(row(entry, report))
    table = markdown_table(HEADER, rows)
    scenes = ("640x480, person scenes" if args.scenes == 2 else
              "v3 stills with two labelled hands, seed 9, each frame its sampled camera")
    body = (f"{frames} depth frames ({scenes}) at {args.fps:g} frames/s into "
            f"hand_pose_node (student-3, max_hands {args.max_hands}, num_threads "
            f"{args.num_threads}, default parameters but "
            "smoothing off, reliable QoS "
            f"on loopback, DDS: {dds}); the node answers the newest frame and drops the "
            "rest. Output frames/s: answers per second from the first frame sent to the "
            "last answer (start-up and model load not counted).\n\n"
            f"{table}\n")
    print(body)
    if not args.no_write:
        cmd = (f"vvhand bench latency --fps {args.fps:g} --seconds {args.seconds:g} "
               f"--backends {args.backends} --dds {args.dds} --scenes {args.scenes} "
               f"--max-hands {args.max_hands} --num-threads {args.num_threads}"
               + (f" --bag {args.bag}" if args.bag else "")
               + (f" --model {args.model}" if args.model else ""))
        print(f"appended to {append_section('Node latency at camera rate', cmd, body)}")
    return 0
