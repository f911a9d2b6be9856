"""Time synthetic frame generation per scene version and per stage (one core).

Frames 0..N-1 of ``SynthConfig(scene_version=v, seed=S)`` with the defaults (v1: 640x480;
v2: a camera per frame, 320x240..1280x720), each timed whole (wall and CPU) and by stage
(CPU, from ``SyntheticHandGenerator.timings``): sample (pose, person, clutter, sensor
parameters), hand (+ arm) ray cast, body / background ray cast (torso, second hand,
objects, wall / table), sensor model. numpy runs single-threaded; torch is limited to one
thread. Prints the tables and appends them to docs/results.md (or $VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import numpy as np
import torch

from vvhand_core.benchmarks.results import append_section, markdown_table
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator

STAGES = {1: ("sample", "hand", "background", "sensor"),
          2: ("sample", "hand_arm", "body_background", "sensor")}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench synth`."""
    parser.add_argument("--frames", type=int, default=200, help="frames timed per version")
    parser.add_argument("--versions", type=int, nargs="+", default=[1, 2], choices=(1, 2))
    parser.add_argument("--seed", type=int, default=5, help="dataset seed")
    parser.add_argument("--no-write", action="store_true", help="print only")


def time_version(version: int, seed: int, frames: int) -> dict:
    """Per-frame wall / CPU ms, stage CPU ms totals and per-resolution CPU ms."""
    gen = SyntheticHandGenerator(SynthConfig(scene_version=version, seed=seed))
    for i in range(2):  # warm-up (imports, caches), frames outside the timed range
        gen.frame(frames + i)
    gen.timings = {}
    wall, cpu, pixels = [], [], []
    by_size: dict[tuple[int, int], list[float]] = defaultdict(list)
    for i in range(frames):
        t0, c0 = time.perf_counter(), time.process_time()
        f = gen.frame(i)
        c1, t1 = time.process_time(), time.perf_counter()
        wall.append(1000 * (t1 - t0))
        cpu.append(1000 * (c1 - c0))
        pixels.append(f.depth_mm.size)
        by_size[(f.intrinsics.width, f.intrinsics.height)].append(cpu[-1])
    stages = {k: 1000 * gen.timings.get(k, 0.0) / frames for k in STAGES[version]}
    return {"wall": wall, "cpu": cpu, "pixels": pixels, "stages": stages, "by_size": by_size}


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the tables and append them to results.md."""
    torch.set_num_threads(1)
    rows, size_rows = [], []
    for v in args.versions:
        r = time_version(v, args.seed, args.frames)
        st = r["stages"]
        rows.append([v, args.frames, int(np.mean(r["pixels"])), statistics.mean(r["wall"]),
                     statistics.mean(r["cpu"]), float(np.percentile(r["cpu"], 90)),
                     *(st[k] for k in STAGES[v])])  # fmt: skip
        if v == 2:
            for (w, h), ms in sorted(r["by_size"].items()):
                size_rows.append([f"{w}x{h}", len(ms), statistics.mean(ms)])
    header = ["version", "frames", "mean px", "mean wall ms", "mean CPU ms", "p90 CPU ms",
              "sample", "hand (+arm) ray cast", "body/background", "sensor"]  # fmt: skip
    table = markdown_table(header, rows)
    print(table)
    body = (f"Frames 0..{args.frames - 1} of seed {args.seed} per scene version, one core "
            f"(numpy single-threaded, torch threads {torch.get_num_threads()}); stage "
            "columns are mean CPU ms per frame (v1: hand = hand ray cast, background = "
            "wall/table; v2: hand + arm ray cast, body/background = torso, second hand, "
            f"objects, wall/table).\n\n{table}")  # fmt: skip
    if size_rows:
        sizes = markdown_table(["v2 resolution", "frames", "mean CPU ms"], size_rows)
        print(sizes)
        body += f"\n\n{sizes}"
    if not args.no_write:
        versions = " ".join(str(v) for v in args.versions)
        cmd = f"vvhand bench synth --frames {args.frames} --versions {versions} --seed {args.seed}"
        path = append_section("Synthetic frame generation speed", cmd, body)
        print(f"appended to {path}")
    return 0
