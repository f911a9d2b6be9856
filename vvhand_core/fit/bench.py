"""Benchmark of the model fit: joints before / after, time per frame, residual vs error.

``run(frames, noise_mm=...)`` starts every frame from its ground truth plus noise
(:func:`noisy_joints`); ``run(frames, start_joints=..., confidences=...)`` from given
estimates; ``run(frames, results=...)`` fits a pipeline's results (:func:`pipeline_results`)
through the pipeline's own stage (``fit.stage.FitStage``: with the mirror pass, both
passes' sides when they differ). Errors: mean joint distance (mm) per frame to the
ground truth; time: CPU seconds of this process per frame (one thread: one core)
and wall-clock; Spearman: rank correlation of the fit's residual with its error.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence

import numpy as np

from vvhand_core.confidence import rank_correlation
from vvhand_core.data.base import DepthFrame
from vvhand_core.fit.fit import FitConfig, FitState, fit_hand
from vvhand_core.fit.stage import FitStage, warm_up


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
        config: FitConfig | None = None, seed: int = 0, sequence: bool = False,
        results: Sequence | None = None, sequence_starts: Sequence[int] = (0,)) -> dict:
    """Fit every frame; returns the table row (see module doc), per-frame arrays, the fits.

    Exactly one of ``noise_mm`` (ground truth + noise, drawn from ``seed``),
    ``start_joints`` (estimates, one (21, 3) per frame) and ``results`` (valid
    ``HandPoseResult``s, one per frame) is given. ``sequence``: frames are consecutive
    (the state is carried), a new sequence beginning at each index in ``sequence_starts``.
    """
    if sum(x is not None for x in (noise_mm, start_joints, results)) != 1:
        raise ValueError("give exactly one of noise_mm, start_joints and results")
    stage = FitStage(config or FitConfig()) if results is not None else None
    warm_up()  # kernels compiled (or loaded) before the first frame is timed
    rng = np.random.default_rng(seed)
    before, after, residual, cpu_ms, wall_ms, sides_ok = [], [], [], [], [], []
    terms: list[dict[str, float]] = []
    both: list[bool] = []
    fallback: list[str] = []
    fits = []
    state: FitState | None = None
    starts = set(sequence_starts)
    for i, f in enumerate(frames):
        if i in starts:
            state = None
            if stage is not None:
                stage.reset()
        gt = np.asarray(f.joints_mm, dtype=np.float64)
        c0, w0 = time.process_time(), time.perf_counter()
        if stage is not None:
            start, result = results[i].joints_mm, copy.copy(results[i])
            stage.apply(result, f.depth_mm, f.intrinsics, sequence)
            res = result.fit
        else:
            start = noisy_joints(gt, noise_mm, rng) if start_joints is None else start_joints[i]
            conf = None if confidences is None else confidences[i]
            res = fit_hand(f.depth_mm, f.intrinsics, start, conf, state if sequence else None,
                           config)
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


def pipeline_results(pipe, frames: Sequence[DepthFrame], oracle_centre: bool = True) -> list:
    """The pipeline's result per frame; None where it found no hand.

    ``oracle_centre``: the crop is centred on the ground truth's mean (else localised).
    """
    out = []
    for f in frames:
        centre = np.asarray(f.joints_mm, np.float64).mean(0) if oracle_centre else None
        r = pipe.run(f.depth_mm, f.intrinsics, centre_mm=centre)
        out.append(r if r.valid else None)
    return out


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


def hand_model_speed(poses: int = 200, seed: int = 0) -> dict[str, float]:
    """The two codes that pose the hand (docs/architecture.md, "The hand model"), compared.

    Over ``poses`` random articulations within the limits: us per pose of the generator's
    ``pose_hand`` and of the fit's ``hand_np.pose`` (with joint axes; best of 3 rounds,
    one thread), the largest joint difference (mm) and how many poses were bit-equal.
    """
    from vvhand_core.data.synthetic.hand_model import LIMITS_DEG, pose_hand
    from vvhand_core.fit.hand_np import ShapeArrays, pose
    from vvhand_core.fit.tables import PIVOT_MM

    rng = np.random.default_rng(seed)
    angles = rng.uniform(LIMITS_DEG[:, 0], LIMITS_DEG[:, 1], (poses, len(LIMITS_DEG)))
    shape, pivot, eye = ShapeArrays.from_shape(), np.asarray(PIVOT_MM), np.eye(3)
    gen = [pose_hand(a).joints for a in angles]
    fit = [pose(a, eye, pivot, 1.0, shape).joints for a in angles]
    out = {"max_difference_mm": float(max(np.abs(g - f).max() for g, f in zip(gen, fit))),
           "bit_equal": sum(np.array_equal(g, f) for g, f in zip(gen, fit)), "poses": poses}
    for name, fn in (("pose_hand_us", lambda a: pose_hand(a)),
                     ("hand_np_us", lambda a: pose(a, eye, pivot, 1.0, shape, axes=True))):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for a in angles:
                fn(a)
            best = min(best, (time.perf_counter() - t0) / poses * 1e6)
        out[name] = best
    return out
