"""Time synthetic frame generation per scene version and per stage (one core).

Frames 0..N-1 of ``SynthConfig(scene_version=v, seed=S)`` with the defaults (v1: 640x480;
v2, v3: a camera per frame, 320x240..1280x720), each timed whole (wall and CPU) and by
stage (CPU, from ``SyntheticHandGenerator.timings``): sample (pose, person, grasps,
clutter, sensor parameters), hand (+ arm, held object) ray cast, body / background ray
cast (torso, second hand, objects, table, wall / floor), sensor model. Version 3 also
gets its scene statistics (:func:`v3_tables`): per placement and per grasp type, the
share of frames with two labelled hands, how close the touching fingers are to the held
object and whether any finger passes into it. numpy runs single-threaded; torch is
limited to one thread. Prints the tables and appends them to docs/results.md (or
$VVHAND_RESULTS).
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
          2: ("sample", "hand_arm", "body_background", "sensor"),
          3: ("sample", "hand_arm", "body_background", "sensor")}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench synth`."""
    parser.add_argument("--frames", type=int, default=200, help="frames timed per version")
    parser.add_argument("--versions", type=int, nargs="+", default=[1, 2, 3], choices=(1, 2, 3))
    parser.add_argument("--seed", type=int, default=5, help="dataset seed")
    parser.add_argument("--no-write", action="store_true", help="print only")


def time_version(version: int, seed: int, frames: int) -> dict:
    """Per-frame wall / CPU ms, stage CPU ms totals and per-resolution CPU ms."""
    gen = SyntheticHandGenerator(SynthConfig(scene_version=version, seed=seed))
    for i in range(2):  # warm-up (imports, caches), frames outside the timed range
        gen.frame(frames + i)
    gen.timings = {}
    wall, cpu, pixels, metas = [], [], [], []
    by_size: dict[tuple[int, int], list[float]] = defaultdict(list)
    for i in range(frames):
        t0, c0 = time.perf_counter(), time.process_time()
        f = gen.frame(i)
        c1, t1 = time.process_time(), time.perf_counter()
        wall.append(1000 * (t1 - t0))
        cpu.append(1000 * (c1 - c0))
        pixels.append(f.depth_mm.size)
        metas.append(f.meta)
        by_size[(f.intrinsics.width, f.intrinsics.height)].append(cpu[-1])
    stages = {k: 1000 * gen.timings.get(k, 0.0) / frames for k in STAGES[version]}
    return {"wall": wall, "cpu": cpu, "pixels": pixels, "stages": stages, "by_size": by_size,
            "metas": metas}


def v3_tables(metas: list[dict], cpu_ms: list[float]) -> tuple[str, str]:
    """Markdown tables of v3 frames: per placement, and per grasp type (all labelled hands).

    Contact columns: over the fingers that touch (gap < CONTACT_TOLERANCE_MM), the median
    and largest gap; "min gap" over every finger of every held grasp (< 0 would mean a
    finger inside its object); "fell back": held grasps drawn whose fingers could not be
    closed on the object, shown as an empty hand instead.
    """
    from vvhand_core.data.synthetic.grasps import CONTACT_TOLERANCE_MM, GRASP_TYPES, HELD
    from vvhand_core.data.synthetic.placements import PLACEMENTS

    place_rows = []
    for p in PLACEMENTS:
        idx = [i for i, m in enumerate(metas) if m["placement"] == p]
        if idx:
            place_rows.append([p, len(idx), statistics.mean(cpu_ms[i] for i in idx),
                               100.0 * np.mean([metas[i]["num_hands"] == 2 for i in idx]),
                               np.mean([np.linalg.norm(metas[i]["center_mm"]) for i in idx])])
    hands = [h for m in metas for h in m["hands"]]
    grasp_rows = []
    for g in GRASP_TYPES:
        hs = [h for h in hands if h["grasp"] == g]
        drawn = [h for h in hands if h["grasp_drawn"] == g]
        row = [g, len(hs), len(drawn) - len(hs) if g in HELD else 0]
        gaps = [x for h in hs for x in h["contact_gap_mm"] if x is not None]
        touch = [x for x in gaps if x < CONTACT_TOLERANCE_MM]
        hidden = [c == "object" for h in hs for c in h["visibility"]]
        row += ([f"{np.mean([len(h['touching']) for h in hs]):.1f}",
                 f"{np.median(touch):.2f}" if touch else "-",
                 f"{max(touch):.2f}" if touch else "-", f"{min(gaps):.2f}" if gaps else "-"]
                if g in HELD and hs else ["-", "-", "-", "-"])
        row.append(100.0 * np.mean(hidden) if hidden else 0.0)
        grasp_rows.append(row)
    places = markdown_table(["placement", "frames", "mean CPU ms", "two hands %",
                             "hand distance mm"], place_rows)  # fmt: skip
    grasps = markdown_table(["grasp", "hands", "fell back", "fingers touching",
                             "median gap mm", "max gap mm", "min gap mm",
                             "joints hidden by objects %"], grasp_rows)  # fmt: skip
    return places, grasps


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the tables and append them to results.md."""
    torch.set_num_threads(1)
    rows, size_rows, extra = [], [], ()
    for v in args.versions:
        r = time_version(v, args.seed, args.frames)
        st = r["stages"]
        rows.append([v, args.frames, int(np.mean(r["pixels"])), statistics.mean(r["wall"]),
                     statistics.mean(r["cpu"]), float(np.percentile(r["cpu"], 90)),
                     *(st[k] for k in STAGES[v])])  # fmt: skip
        if v in (2, 3):
            for (w, h), ms in sorted(r["by_size"].items()):
                size_rows.append([f"v{v} {w}x{h}", len(ms), statistics.mean(ms)])
        if v == 3:
            extra = v3_tables(r["metas"], r["cpu"])
    header = ["version", "frames", "mean px", "mean wall ms", "mean CPU ms", "p90 CPU ms",
              "sample", "hand (+arm) ray cast", "body/background", "sensor"]  # fmt: skip
    table = markdown_table(header, rows)
    print(table)
    body = (f"Frames 0..{args.frames - 1} of seed {args.seed} per scene version, one core "
            f"(numpy single-threaded, torch threads {torch.get_num_threads()}); stage "
            "columns are mean CPU ms per frame (v1: hand = hand ray cast, background = "
            "wall/table; v2: hand + arm ray cast, body/background = torso, second hand, "
            "objects, wall/table; v3: hands, arms and held objects ray cast, body/background "
            f"= torso, table, clutter, floor, wall).\n\n{table}")  # fmt: skip
    if size_rows:
        sizes = markdown_table(["resolution", "frames", "mean CPU ms"], size_rows)
        print(sizes)
        body += f"\n\n{sizes}"
    for t in extra:
        print(t)
        body += f"\n\n{t}"
    if not args.no_write:
        versions = " ".join(str(v) for v in args.versions)
        cmd = f"vvhand bench synth --frames {args.frames} --versions {versions} --seed {args.seed}"
        path = append_section("Synthetic frame generation speed", cmd, body)
        print(f"appended to {path}")
    return 0
