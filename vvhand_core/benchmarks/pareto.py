"""Candidate models side by side: size and width against test error and CPU speed (issue 12).

`vvhand bench pareto --models LABEL=CHECKPOINT,...`: for each trained candidate, its A2J
crop size, A2J and student widths and parameter count; student-N mean 3D joint error on
frames 0..F-1 of both synthetic test splits (:mod:`.splits`) with the oracle and the
localised centre (as `vvhand bench model`); and its student-N frames/s on this CPU, timed
frame by frame interleaved over the candidates on the new-scenes frames (localised, torch,
--threads threads), so that every candidate sees the same machine load. A candidate is
Pareto-optimal when no other is both faster and more accurate (new scenes, localised).
Prints the table and appends it to docs/results.md (or $VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from vvhand_core.benchmarks.model import score_split
from vvhand_core.benchmarks.results import append_section, markdown_table
from vvhand_core.benchmarks.splits import SPLITS, split_frames, student_pipeline

HEADER = ["candidate", "crop px", "A2J width", "student width", "parameters (M)",
          *[f"{name} {centre} mm" for name, _ in SPLITS for centre in ("oracle", "localised")],
          "frames/s", "Pareto"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench pareto`."""
    parser.add_argument("--models", required=True,
                        help="comma-separated LABEL=CHECKPOINT (e.g. 'leg1=training/...pt')")
    parser.add_argument("--frames", type=int, default=100,
                        help="frames per split (0: time only, no accuracy)")
    parser.add_argument("--timed-frames", type=int, default=30,
                        help="new-scenes frames timed per candidate (interleaved)")
    parser.add_argument("--num-views", type=int, default=3, help="N views (student-N)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--no-write", action="store_true", help="print only")


def parse_models(text: str) -> list[tuple[str, str]]:
    """'a=x.pt,b=y.pt' -> [('a', 'x.pt'), ('b', 'y.pt')]; ValueError names a bad entry."""
    out = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise ValueError(f"--models entries are LABEL=CHECKPOINT, got {item!r}")
        if not Path(path).is_file():
            raise ValueError(f"--models {label}: no file {path}")
        out.append((label, path))
    if not out:
        raise ValueError("--models names no candidate")
    return out


def pareto_flags(errors: list[float], fps: list[float]) -> list[bool]:
    """True where no other candidate is at least as good on both and better on one."""
    flags = []
    for i, (e, f) in enumerate(zip(errors, fps)):
        dominated = any(e2 <= e and f2 >= f and (e2 < e or f2 > f)
                        for j, (e2, f2) in enumerate(zip(errors, fps)) if j != i)
        flags.append(not dominated)
    return flags


def timed_fps(pipes: list, frames: list) -> list[float]:
    """Frames/s of each pipeline, timed frame by frame in turn (one warm-up frame each)."""
    for p in pipes:
        p.run(frames[0].depth_mm, frames[0].intrinsics)
    spent = [0.0] * len(pipes)
    for f in frames:
        for k, p in enumerate(pipes):
            t0 = time.perf_counter()
            p.run(f.depth_mm, f.intrinsics)
            spent[k] += time.perf_counter() - t0
    return [len(frames) / s for s in spent]


def run(args: argparse.Namespace) -> int:
    """Score and time every candidate, print the table, append it to docs/results.md."""
    try:
        models = parse_models(args.models)
    except ValueError as exc:
        print(f"vvhand bench pareto: {exc}")
        return 2
    torch.set_num_threads(args.threads)
    pipes = [student_pipeline(path, args.num_views) for _, path in models]
    errors: list[list[float]] = [[] for _ in models]
    new_scenes = split_frames(SPLITS[-1][1], max(args.frames, args.timed_frames))
    for name, synth in SPLITS:
        if args.frames <= 0:
            for err in errors:
                err += [float("nan"), float("nan")]
            continue
        frames = (new_scenes[:args.frames] if synth is SPLITS[-1][1]  # made once, above
                  else split_frames(synth, args.frames, name))
        for k, pipe in enumerate(pipes):
            for oracle in (True, False):
                e = score_split(pipe, frames, oracle).errors_mm
                errors[k].append(float(np.nanmean(e)) if np.isfinite(e).any() else float("nan"))
    fps = timed_fps(pipes, new_scenes[:args.timed_frames])
    flags = (pareto_flags([e[-1] for e in errors], fps) if args.frames > 0
             else [False] * len(models))
    rows = []
    for (label, _), pipe, err, f, best in zip(models, pipes, errors, fps, flags):
        a2j = pipe.a2j.config
        params = sum(p.numel() for n in (pipe.a2j, pipe.student) for p in n.parameters())
        rows.append([label, a2j.crop_size, a2j.width, pipe.student.config.width,
                     f"{params / 1e6:.2f}", *[f"{e:.2f}" if e == e else "-" for e in err],
                     f"{f:.1f}",
                     "yes" if best else ""])
    table = markdown_table(HEADER, rows)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    body = (f"student-{args.num_views}, confidence fusion, {args.frames} frames per split, "
            f"localiser without tracking; frames/s: {args.timed_frames} new-scenes frames per "
            f"candidate, interleaved, torch {args.threads} threads on this CPU (load average "
            f"at the end {load}). Candidates: "
            + "; ".join(f"{label} `{path}`" for label, path in models) + f"\n\n{table}\n")
    print(body)
    if not args.no_write:
        cmd = (f"vvhand bench pareto --models {args.models} --frames {args.frames} "
               f"--timed-frames {args.timed_frames} --threads {args.threads}")
        print(f"appended to {append_section('Candidate models (Pareto)', cmd, body)}")
    return 0
