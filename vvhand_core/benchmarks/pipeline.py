"""Pipeline speed: frames/s and per-stage ms for uniform / teacher / student view selection.

Runs :class:`VirtualViewPipeline` end to end (localise, crop, student, render, A2J,
fusion) on synthetic depth frames with randomly initialised networks of the real
architecture (speed does not depend on the weights), for each backbone and mode, and
appends the table to docs/results.md. Modes are ``<selector>-<N>`` (``+mirror``: with
the mirror pass, ``+fit``: with the hand-model fit): uniform-25, teacher-3,
student-1/3/9/15 by default; the throughput ratio student-3 / uniform-25 is
reported per backbone. The ``--onnx-modes`` (student-3 by default) also run with the
pipeline's onnxruntime backend (the same networks exported to ONNX in memory) and with
the torch-free :class:`~vvhand_core.lite.pipeline.LitePipeline` on those sessions (backend
"lite": numpy renderer; what an onnxruntime-only install runs), interleaved with the others,
and the onnxruntime / torch throughput ratios are reported.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vvhand_core.benchmarks.results import append_section, markdown_table
from vvhand_core.camera import Intrinsics
from vvhand_core.checkpoint import load_checkpoint, resolve_device
from vvhand_core.deployed import DEPLOYED
from vvhand_core.fit import FitConfig
from vvhand_core.localise import HandLocaliser, LocaliseConfig
from vvhand_core.models import A2JConfig, ModelConfig, StudentConfig, TeacherConfig, build_models
from vvhand_core.pipeline import STAGES, PipelineConfig, VirtualViewPipeline
from vvhand_core.skeletons import get_skeleton
from vvhand_core.threads import blas_threads, limit_blas_threads

DEFAULT_MODES = "uniform-25,teacher-3,student-1,student-3,student-9,student-15"
NETWORK_STAGES = ("student", "a2j")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``vvhand bench pipeline``."""
    parser.add_argument("--backbones", default="resnet18,resnet50",
                        help="comma-separated A2J backbones (default: %(default)s)")
    parser.add_argument("--modes", default=DEFAULT_MODES,
                        help="comma-separated <selector>-<N>[+mirror][+fit] (+mirror: with the "
                             "mirror pass; +fit: with the hand-model fit; default: %(default)s)")
    parser.add_argument("--frames", type=int, default=5, help="timed frames per mode")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed rounds over all modes before timing")
    parser.add_argument("--width", type=float, default=1.0,
                        help="width multiplier of A2J and student (1.0 = the paper's networks)")
    parser.add_argument("--fusion", default="confidence", choices=("confidence", "average"))
    parser.add_argument("--onnx-modes", default="student-3",
                        help="modes also timed with the onnxruntime backend and the lite "
                             "pipeline; '' = none "
                             "(default: %(default)s; skipped when onnxruntime is missing)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--renderer", default="auto")
    parser.add_argument("--skeleton", default="hands2019_21")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: two threads on a 2-core machine "
                             "shared with other processes are several times slower at batch "
                             "1; 0: torch's default)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="numpy's BLAS threads (default 1: what the node runs, "
                             "vvhand_core.threads; 0: numpy's own default pool)")
    parser.add_argument("--model", default="",
                        help="time this checkpoint's networks instead of random ones of "
                             "--backbones / --width ('default' = the shipped model)")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; do not append to docs/results.md")


def synthetic_frames(count: int, seed: int = 0) -> tuple[list[np.ndarray], Intrinsics]:
    """``count`` uint16 depth frames (H, W) of a hand at 350-550 mm, and their intrinsics.

    Uses the synthetic hand generator (vvhand_core.data.synthetic, hand in front of a
    wall; frames where the localiser finds no hand are skipped) when it is present, else a
    crude analytic hand (palm, fingers, forearm) in front of a wall.
    """
    try:
        from vvhand_core.data.synthetic import SynthConfig, SyntheticHandGenerator
    except ImportError:
        pass
    else:
        gen = SyntheticHandGenerator(SynthConfig(seed=seed, background="wall"))
        localiser = HandLocaliser(LocaliseConfig(use_tracking=False))
        frames: list[np.ndarray] = []
        for i in range(20 * count):  # speed is measured on frames with a hand found
            f = gen.frame(i)
            depth = np.asarray(f.depth_mm)
            if localiser.locate(depth.astype(np.float32), f.intrinsics) is not None:
                frames.append(depth)
            if len(frames) == count:
                return frames, f.intrinsics
        raise RuntimeError("the localiser found no hand in the synthetic frames")
    from vvhand_core.render.scenes import compose, hand_like, pixel_rays, plane_depth

    intr = Intrinsics(475.0, 475.0, 320.0, 240.0, 640, 480)
    rays = pixel_rays((intr.fx, intr.fy, intr.cx, intr.cy), intr.height, intr.width)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        c = (rng.uniform(-60, 60), rng.uniform(-40, 40), rng.uniform(350, 550))
        hand = hand_like(rays, c)
        wall = plane_depth(rays, (0.0, 0.0, 1100.0), (0.0, 0.0, -1.0))
        out.append(np.round(compose(hand, wall).numpy()).astype(np.uint16))
    return out, intr


def model_file(model: str) -> str:
    """The checkpoint of ``--model`` ('default' = the shipped model)."""
    from vvhand_core.assets import default_model_path

    return str(default_model_path()) if model == "default" else model


def _parse_mode(mode: str) -> tuple[str, int, bool, bool]:
    """'student-3' -> ("student", 3, False, False): selector, N, mirror pass, hand-model fit.

    '+mirror' and / or '+fit' after N add the mirror pass and the fit (the node's:
    :func:`fit_config_of`).
    """
    base, *extras = [x.strip() for x in mode.strip().split("+")]
    selector, _, n = base.partition("-")
    if not n.isdigit() or set(extras) - {"mirror", "fit"} or len(set(extras)) < len(extras):
        raise ValueError(f"bad mode {mode!r}: expected <selector>-<N>[+mirror][+fit], e.g. "
                         "student-3, student-3+mirror or student-3+fit")
    return selector, int(n), "mirror" in extras, "fit" in extras


def bench_backbone(backbone: str, modes: list[str], frames: list[np.ndarray], intr: Intrinsics,
                   args: argparse.Namespace, onnx_modes: tuple[str, ...] = ()) -> list[dict]:
    """Time each mode (and each of ``onnx_modes`` with onnxruntime and the lite pipeline).

    One dict per run with backend, fps and the mean ms of every stage.
    """
    if args.model:
        loaded = load_checkpoint(model_file(args.model), "cpu")
        a2j, student, teacher, skeleton = (loaded.a2j, loaded.student, loaded.teacher,
                                           loaded.skeleton)
        cfg = loaded.model_config
    else:
        skeleton = get_skeleton(args.skeleton)
        j = skeleton.num_joints
        cfg = ModelConfig(a2j=A2JConfig(num_joints=j, backbone=backbone, width=args.width),
                          teacher=TeacherConfig(num_joints=j),
                          student=StudentConfig(num_views=25, width=args.width))
        torch.manual_seed(0)
        a2j, student, teacher = build_models(cfg, skeleton)
    pipe = VirtualViewPipeline(a2j, student, teacher, skeleton,
                               PipelineConfig(device=args.device, renderer=args.renderer,
                                              fusion=args.fusion, track=False),
                               cfg.num_candidates)
    runs = [(mode, "torch") for mode in modes] + [
        (m, b) for b in ("onnxruntime", "lite") for m in onnx_modes
        if b != "lite" or not _parse_mode(m)[2]]  # the lite pipeline has no mirror pass
    pipes = {"torch": pipe, "onnxruntime": pipe}
    if onnx_modes:
        pipes["lite"] = _lite_twin(pipe)
    parsed = {mode: _parse_mode(mode) for mode, _ in runs}
    stage_ms = {run: dict.fromkeys(STAGES, 0.0) for run in runs}
    wall = dict.fromkeys(runs, 0.0)
    valid = dict.fromkeys(runs, 0)
    # modes interleaved frame by frame, so that load from other processes on a shared
    # machine affects every mode alike; the first args.warmup rounds are not timed
    for i in range(args.warmup + args.frames):
        frame = frames[i % len(frames)]
        for run in runs:
            selector, n, mirror, fit = parsed[run[0]]
            changes = {"fit": fit_config_of(fit)}
            if run[1] != "lite":
                changes |= {"backend": run[1], "mirror": mirror}
            pipes[run[1]].configure(selector=selector, num_views=n, **changes)
            start = time.perf_counter()
            res = pipes[run[1]].run(frame, intr)
            elapsed = time.perf_counter() - start
            if i < args.warmup:
                continue
            wall[run] += elapsed
            valid[run] += res.valid
            for k in STAGES:
                stage_ms[run][k] += res.timings_ms[k]
    rows = []
    for mode, backend in runs:
        mean = {k: v / args.frames for k, v in stage_ms[mode, backend].items()}
        fps = args.frames / wall[mode, backend]
        rows.append({"backbone": backbone, "mode": mode, "backend": backend, "fps": fps,
                     "valid": valid[mode, backend], **mean})
        print(f"{backbone} {mode} ({backend}): {fps:.2f} frames/s, total "
              f"{mean['total']:.1f} ms/frame", file=sys.stderr)
    return rows


def _lite_twin(pipe: VirtualViewPipeline):
    """The LitePipeline on ``pipe``'s onnxruntime sessions (configuring the backend makes them)."""
    from vvhand_core.lite.config import LiteConfig
    from vvhand_core.lite.pipeline import LitePipeline

    pipe.configure(backend="onnxruntime")
    return LitePipeline(pipe.onnx, LiteConfig.from_pipeline_config(pipe.config,
                                                                   torch.get_num_threads()))


def fit_config_of(fit: bool) -> FitConfig | None:
    """The fit a '+fit' mode runs: the node's (``DEPLOYED.fit_config()``), else None."""
    return DEPLOYED.fit_config() if fit else None


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table, append it to docs/results.md."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.blas_threads > 0:
        limit_blas_threads(args.blas_threads)
    if args.frames < 1 or args.warmup < 0:
        print("--frames must be >= 1 and --warmup >= 0", file=sys.stderr)
        return 2
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    backbones = ([f"model {Path(model_file(args.model)).name}"] if args.model else
                 [b.strip() for b in args.backbones.split(",") if b.strip()])
    onnx_modes = tuple(m.strip() for m in args.onnx_modes.split(",") if m.strip())
    from vvhand_core.onnx_model import onnxruntime_available

    onnx_note = ""
    if onnx_modes and not onnxruntime_available():
        onnx_note = f"- onnxruntime is not installed: {', '.join(onnx_modes)} not timed with it"
        onnx_modes = ()
    frames, intr = synthetic_frames(max(1, min(args.frames + args.warmup, 8)))
    rows: list[dict] = []
    for backbone in backbones:
        rows += bench_backbone(backbone, modes, frames, intr, args, onnx_modes)
    header = ["backbone", "mode", "backend", "frames/s", *[f"{s} ms" for s in STAGES],
              "non-network %", "valid"]
    table_rows = []
    for r in rows:
        non_net = sum(r[s] for s in STAGES[:-1] if s not in NETWORK_STAGES)
        table_rows.append([r["backbone"], r["mode"], r["backend"], r["fps"],
                           *[r[s] for s in STAGES], 100.0 * non_net / r["total"],
                           f"{r['valid']}/{args.frames}"])
    lines = [markdown_table(header, table_rows), ""]
    for backbone in backbones:
        fps = {r["mode"]: r["fps"] for r in rows
               if r["backbone"] == backbone and r["backend"] == "torch"}
        if "student-3" in fps and "uniform-25" in fps:
            lines.append(f"- {backbone}: throughput student-3 / uniform-25 = "
                         f"{fps['student-3'] / fps['uniform-25']:.2f}x")
        for backend in ("onnxruntime", "lite"):
            for r in rows:
                if r["backbone"] == backbone and r["backend"] == backend and r["mode"] in fps:
                    lines.append(f"- {backbone} {r['mode']}: {backend} {r['fps']:.2f} "
                                 f"frames/s, torch {fps[r['mode']]:.2f} frames/s ({backend} / "
                                 f"torch = {r['fps'] / fps[r['mode']]:.2f}x)")
    if onnx_note:
        lines.append(onnx_note)
    device = resolve_device(args.device)
    lines.append(f"- device {device}, A2J/student width x{args.width}, fusion {args.fusion}, "
                 f"{args.frames} timed frames per mode after {args.warmup} warm-up round(s), "
                 f"modes interleaved frame by frame, torch threads {torch.get_num_threads()}, "
                 + (f"the networks of {model_file(args.model)}, " if args.model else
                    "random weights, ")
                 + "synthetic 640x480 frames, localisation without tracking; "
                 "per-stage ms are means per frame; onnxruntime threads = torch threads, "
                 f"numpy BLAS threads {blas_threads()}")
    if hasattr(os, "getloadavg"):
        lines.append("- load average (1/5/15 min) at the end: "
                     + " / ".join(f"{x:.2f}" for x in os.getloadavg())
                     + " (other processes share this machine's cores)")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        command = (f"vvhand bench pipeline --backbones {','.join(backbones)} "
                   f"--modes {','.join(modes)} --frames {args.frames} --warmup {args.warmup} "
                   f"--width {args.width} --fusion {args.fusion} --device {args.device} "
                   f"--renderer {args.renderer} --skeleton {args.skeleton} "
                   f"--onnx-modes '{args.onnx_modes}'"
                   + (f" --model {args.model}" if args.model else "")
                   + (f" --threads {args.threads}" if args.threads else "")
                   + f" --blas-threads {args.blas_threads}")
        path = append_section("Pipeline speed", command, body)
        print(f"appended to {path}", file=sys.stderr)
    return 0
