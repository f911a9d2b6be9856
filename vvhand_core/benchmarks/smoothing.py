"""Joint jitter and lag without and with the One Euro filter, on replayed synthetic sequences.

Two sequences of the v1 test world (``SynthConfig(seed=3)``) at ``--fps``: a hand held
still (one pose rendered again each frame with fresh sensor noise and a fixed background)
and a moving hand (``generator.sample_sequence``). Each frame goes through the shipped
model with the oracle centre (the mean of the ground-truth joints; localisation jitter not
included), then through vvhand_core.smoothing.HandTrack exactly as the node runs it.
Jitter = per-joint std over time of (estimate - ground truth), norm over x, y, z, mean
over joints (motion itself is not jitter); frame-to-frame = RMS change of that error from
one frame to the next (the part a viewer sees shaking). Lag = the time shift that best aligns the
filtered joints with the unfiltered ones (moving hand, 1 ms steps). Prints the table and
appends it to docs/results.md (or $VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse

import numpy as np

from vvhand_core.assets import default_model_path
from vvhand_core.benchmarks.results import append_section, markdown_table
from vvhand_core.data.synthetic.generator import (
    SynthConfig,
    SyntheticHandGenerator,
    sample_sequence,
)
from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline
from vvhand_core.smoothing import HandTrack, SmoothingConfig

# (min_cutoff_hz, beta) pairs measured besides the unfiltered output; the first is the
# node's default
SETTINGS = ((1.0, 0.02), (0.5, 0.01), (2.0, 0.05))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench smoothing`."""
    parser.add_argument("--frames", type=int, default=90, help="frames per sequence")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the replay")
    parser.add_argument("--model", default="", help="checkpoint; default: the shipped model")
    parser.add_argument("--no-write", action="store_true", help="print only")


def still_frames(frames: int, seed: int = 3):
    """One hand pose rendered ``frames`` times with fresh sensor noise."""
    gen = SyntheticHandGenerator(SynthConfig(seed=seed))
    rng = np.random.default_rng([seed, 1401])
    state = gen.sample_state(rng)
    first = gen.render_state(state, rng)
    planes = np.asarray(first.meta["background"], dtype=np.float64).reshape(-1, 4)
    for i in range(frames):
        yield gen.render_state(state, np.random.default_rng([seed, 1402, i]), planes=planes)


def estimate(pipeline: VirtualViewPipeline, frames) -> tuple[np.ndarray, np.ndarray]:
    """(estimates (T, J, 3), ground truth (T, J, 3)) mm with the oracle centre."""
    est, gt = [], []
    for f in frames:
        r = pipeline.run(f.depth_mm, f.intrinsics, centre_mm=f.joints_mm.mean(axis=0))
        if not r.valid:
            raise RuntimeError("no hand in a benchmark frame")
        est.append(r.joints_mm)
        gt.append(f.joints_mm)
    return np.stack(est).astype(np.float64), np.stack(gt).astype(np.float64)


def smooth(est: np.ndarray, fps: float, min_cutoff: float, beta: float) -> np.ndarray:
    """The node's filter over a sequence (T, J, 3)."""
    track = HandTrack(SmoothingConfig(min_cutoff_hz=min_cutoff, beta=beta))
    return np.stack([track.update(i / fps, j).joints_mm for i, j in enumerate(est)])


def jitter_mm(est: np.ndarray, gt: np.ndarray) -> float:
    """Mean over joints of the std over time of the error vector (norm over x, y, z)."""
    return float(np.sqrt((est - gt).var(axis=0).sum(-1)).mean())


def step_jitter_mm(est: np.ndarray, gt: np.ndarray) -> float:
    """Mean over joints of the RMS frame-to-frame change of the error vector."""
    d = np.diff(est - gt, axis=0)
    return float(np.sqrt((d ** 2).sum(-1).mean(0)).mean())


def lag_ms(filtered: np.ndarray, raw: np.ndarray, fps: float, max_ms: float = 500.0) -> float:
    """Shift [ms] of ``raw`` (delayed, linearly interpolated) that best matches ``filtered``."""
    t = np.arange(len(raw)) / fps
    flat = raw.reshape(len(raw), -1)
    best, best_err = 0.0, np.inf
    skip = int(np.ceil(max_ms / 1000.0 * fps)) + 1
    for s_ms in np.arange(0.0, max_ms + 1.0, 1.0):
        shifted = np.stack([np.interp(t - s_ms / 1000.0, t, flat[:, k])
                            for k in range(flat.shape[1])], axis=1)
        err = np.abs(shifted[skip:] - filtered.reshape(len(raw), -1)[skip:]).mean()
        if err < best_err:
            best, best_err = float(s_ms), err
    return best


def run(args: argparse.Namespace) -> int:
    """Measure, print, append to docs/results.md."""
    cfg = PipelineConfig(device="cpu", renderer="torch")
    pipe = VirtualViewPipeline.from_checkpoint(args.model or default_model_path(), cfg)
    seqs = {"held still": estimate(pipe, still_frames(args.frames)),
            "moving": estimate(pipe, sample_sequence(SynthConfig(seed=3), args.frames))}
    rows = []
    for name, (est, gt) in seqs.items():
        speed = np.linalg.norm(np.diff(gt, axis=0), axis=-1).mean() * args.fps
        rows.append([name, "off", "", f"{speed:.0f}", jitter_mm(est, gt),
                     step_jitter_mm(est, gt), float(np.linalg.norm(est - gt, axis=-1).mean()),
                     "0"])
        for min_cutoff, beta in SETTINGS:
            out = smooth(est, args.fps, min_cutoff, beta)
            lag = lag_ms(out, est, args.fps) if name == "moving" else None
            rows.append([name, f"{min_cutoff:g} Hz", f"{beta:g}", f"{speed:.0f}",
                         jitter_mm(out, gt), step_jitter_mm(out, gt),
                         float(np.linalg.norm(out - gt, axis=-1).mean()),
                         "" if lag is None else f"{lag:.0f}"])
    table = markdown_table(["sequence", "min_cutoff", "beta", "joint speed [mm/s]",
                            "jitter [mm]", "frame-to-frame [mm]", "error [mm]", "lag [ms]"],
                           rows)
    body = (f"{args.frames} frames per sequence at {args.fps:g} fps, shipped model, oracle "
            f"centre; d_cutoff 1 Hz. Jitter = per-joint std over time of the error, mean over "
            f"joints; frame-to-frame = RMS change of the error between consecutive frames; lag = "
            f"delay of the filtered joints behind the unfiltered ones.\n\n"
            f"{table}\n")
    print(body)
    if not args.no_write:
        path = append_section("Joint jitter and lag with the One Euro filter",
                              f"vvhand bench smoothing --frames {args.frames} --fps {args.fps:g}",
                              body)
        print(f"appended to {path}")
    return 0
