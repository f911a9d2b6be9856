"""Scoring a hand localiser on labelled frames: the numbers issue 10 asks for.

For each frame: the localised centre against the ground-truth joint mean (the oracle
centre), "no hand" when the localiser returns None, and the localiser's own CPU time.
Tracking is off (each frame on its own), as in the ablation.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from vvhand_core.data.base import DepthFrame
from vvhand_core.localise import oracle_centre


@dataclass
class LocaliserScore:
    """Summary over a split (errors in mm, times in ms per frame)."""

    frames: int
    within_30mm: float  # fraction of all frames (no-hand frames count as misses)
    no_hand: float  # fraction of all frames
    median_error_mm: float  # over frames with a centre
    p90_error_mm: float
    ms_per_frame: float  # mean localiser time
    errors_mm: np.ndarray  # (frames,) inf where no hand

    def row(self) -> list[object]:
        """Table row: frames, within 30 mm %, no hand %, median, p90, ms/frame."""
        return [self.frames, f"{100 * self.within_30mm:.1f} %", f"{100 * self.no_hand:.1f} %",
                self.median_error_mm, self.p90_error_mm, self.ms_per_frame]


HEADER = ["frames", "within 30 mm", "no hand", "median error mm", "p90 error mm", "ms/frame"]


def score_localiser(locate, frames: Iterable[DepthFrame], progress=None) -> LocaliserScore:
    """Run ``locate(depth_mm, intrinsics) -> centre or None`` over labelled frames."""
    errors, times = [], []
    for f in frames:
        t0 = time.perf_counter()
        c = locate(f.depth_mm, f.intrinsics)
        times.append(time.perf_counter() - t0)
        gt = oracle_centre(np.asarray(f.joints_mm, np.float64))
        errors.append(np.inf if c is None else float(np.linalg.norm(np.asarray(c) - gt)))
        if progress:
            progress(1)
    e = np.asarray(errors)
    found = e[np.isfinite(e)]
    return LocaliserScore(
        frames=len(e), within_30mm=float((e <= 30.0).mean()),
        no_hand=float((~np.isfinite(e)).mean()),
        median_error_mm=float(np.median(found)) if found.size else float("nan"),
        p90_error_mm=float(np.percentile(found, 90)) if found.size else float("nan"),
        ms_per_frame=1000.0 * float(np.mean(times)), errors_mm=e)
