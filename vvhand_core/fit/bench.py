"""Benchmark of the model fit: joints before / after, time per frame, residual vs error.

``run(frames, noise_mm=...)`` starts every frame from its ground truth plus noise
(:func:`noisy_joints`); ``run(frames, start_joints=..., confidences=...)`` from estimates
(a network's, e.g. :func:`pipeline_estimates`). Errors: mean joint distance (mm) per frame
to the ground truth; time: CPU seconds of this process per frame (one thread: one core)
and wall-clock; Spearman: rank correlation of the fit's residual with its error.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from vvhand_core.confidence import rank_correlation, spread_to_confidence
from vvhand_core.data.base import DepthFrame
from vvhand_core.fit.fit import FitConfig, FitState, fit_hand


def noisy_joints(joints_mm: np.ndarray, noise_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Ground truth plus isotropic Gaussian noise per joint: RMS 3D displacement ``noise_mm``.

    (sigma per axis noise_mm / sqrt(3); the mean displacement is ~0.92 noise_mm.)
    """
    j = np.asarray(joints_mm, dtype=np.float64)
    return j + rng.normal(0.0, noise_mm / np.sqrt(3.0), j.shape)


def frame_error_mm(joints_mm: np.ndarray, gt_mm: np.ndarray) -> float:
    """Mean joint distance (mm)."""
    return float(np.linalg.norm(np.asarray(joints_mm) - np.asarray(gt_mm), axis=1).mean())


def run(frames: Sequence[DepthFrame], noise_mm: float | None = None,
        start_joints: Sequence[np.ndarray] | None = None,
        confidences: Sequence[np.ndarray | None] | None = None,
        config: FitConfig | None = None, seed: int = 0, sequence: bool = False) -> dict:
    """Fit every frame; returns the table row (see module doc), per-frame arrays, the fits.

    Exactly one of ``noise_mm`` (ground truth + noise, drawn from ``seed``) and
    ``start_joints`` (estimates, one (21, 3) per frame) is given. ``sequence``: frames
    are consecutive (the state is carried).
    """
    if (noise_mm is None) == (start_joints is None):
        raise ValueError("give exactly one of noise_mm and start_joints")
    rng = np.random.default_rng(seed)
    before, after, residual, cpu_ms, wall_ms, sides_ok = [], [], [], [], [], []
    terms: list[dict[str, float]] = []
    both: list[bool] = []
    fallback: list[str] = []
    fits = []
    state: FitState | None = None
    for i, f in enumerate(frames):
        gt = np.asarray(f.joints_mm, dtype=np.float64)
        start = noisy_joints(gt, noise_mm, rng) if start_joints is None else start_joints[i]
        conf = None if confidences is None else confidences[i]
        c0, w0 = time.process_time(), time.perf_counter()
        res = fit_hand(f.depth_mm, f.intrinsics, start, conf, state if sequence else None, config)
        cpu_ms.append((time.process_time() - c0) * 1e3)
        wall_ms.append((time.perf_counter() - w0) * 1e3)
        state = res.state
        fits.append(res)
        before.append(frame_error_mm(start, gt))
        after.append(frame_error_mm(res.joints_mm, gt))
        residual.append(res.residual_mm)
        terms.append(res.residual_terms | {"cost": res.cost})
        sides_ok.append(res.side == f.meta.get("side", "right"))
        both.append(len(res.sides_fitted) > 1)
        fallback.append(res.fallback)
    b, a = np.array(before), np.array(after)
    return {
        "frames": len(b),
        "before_mean_mm": float(b.mean()), "before_median_mm": float(np.median(b)),
        "after_mean_mm": float(a.mean()), "after_median_mm": float(np.median(a)),
        "cpu_ms_per_frame": float(np.mean(cpu_ms)), "wall_ms_per_frame": float(np.mean(wall_ms)),
        "spearman_residual_error": rank_correlation(np.array(residual), a) if len(a) > 2
        else float("nan"),
        "side_correct": float(np.mean(sides_ok)),
        "both_sides": float(np.mean(both)),
        "fallback": float(np.mean([bool(x) for x in fallback])),
        "fits": fits,
        "per_frame": {"before_mm": b, "after_mm": a, "residual_mm": np.array(residual),
                      "cpu_ms": np.array(cpu_ms), "fallback": np.array(fallback)}
        | {k: np.array([t.get(k, np.nan) for t in terms]) for k in set().union(*terms)},
    }  # fmt: skip


def pipeline_estimates(pipe, frames: Sequence[DepthFrame], oracle_centre: bool = True
                       ) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
    """A pipeline's joints and per-joint confidences (from the views' spread) per frame.

    ``oracle_centre``: the crop is centred on the ground truth's mean (else the pipeline
    localises). Frames where the pipeline found no hand give None joints.
    """
    joints, confs = [], []
    for f in frames:
        centre = np.asarray(f.joints_mm, np.float64).mean(0) if oracle_centre else None
        r = pipe.run(f.depth_mm, f.intrinsics, centre_mm=centre)
        joints.append(np.asarray(r.joints_mm, dtype=np.float64) if r.valid else None)
        spread = r.joint_spread_mm
        confs.append(None if spread is None or not np.isfinite(spread).all()
                     else spread_to_confidence(spread))  # fmt: skip
    return joints, confs


COLUMNS = ("frames", "before_mean_mm", "before_median_mm", "after_mean_mm", "after_median_mm",
           "cpu_ms_per_frame", "wall_ms_per_frame", "spearman_residual_error", "side_correct",
           "both_sides", "fallback")


def format_table(rows: dict[str, dict]) -> str:
    """A markdown table: one row per named result of :func:`run`."""
    head = "| start | " + " | ".join(COLUMNS) + " |"
    sep = "|" + "---|" * (len(COLUMNS) + 1)
    lines = [head, sep]
    for name, r in rows.items():
        cells = [str(r[c]) if isinstance(r[c], int) else f"{r[c]:.2f}" for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
