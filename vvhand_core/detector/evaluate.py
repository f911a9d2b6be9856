"""Scoring a hand localiser on labelled frames: the numbers issue 10 asks for.

For each frame: the localised centre against the ground-truth joint mean (the oracle
centre), "no hand" when the localiser returns None, and the localiser's own CPU time.
Tracking is off (each frame on its own), as in the ablation. Several localisers are
scored on the same frames interleaved, so that their times compare under any load.
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
    return score_localisers({"": locate}, frames, progress)[""]


def score_localisers(locates: dict, frames: Iterable[DepthFrame], progress=None
                     ) -> dict[str, LocaliserScore]:
    """Score several localisers {name: locate} on the same frames, interleaved.

    Every frame goes to each localiser in turn (the order rotating from frame to frame),
    so a changing machine load slows them alike and their times compare.
    """
    names = list(locates)
    errors: dict[str, list[float]] = {n: [] for n in names}
    times: dict[str, list[float]] = {n: [] for n in names}
    for k, f in enumerate(frames):
        gt = oracle_centre(np.asarray(f.joints_mm, np.float64))
        for name in names[k % len(names):] + names[:k % len(names)]:
            t0 = time.perf_counter()
            c = locates[name](f.depth_mm, f.intrinsics)
            times[name].append(time.perf_counter() - t0)
            errors[name].append(np.inf if c is None else float(np.linalg.norm(np.asarray(c) - gt)))
        if progress:
            progress(1)
    return {n: _summary(np.asarray(errors[n]), times[n]) for n in names}


def _summary(e: np.ndarray, times: list[float]) -> LocaliserScore:
    found = e[np.isfinite(e)]
    return LocaliserScore(
        frames=len(e), within_30mm=float((e <= 30.0).mean()),
        no_hand=float((~np.isfinite(e)).mean()),
        median_error_mm=float(np.median(found)) if found.size else float("nan"),
        p90_error_mm=float(np.percentile(found, 90)) if found.size else float("nan"),
        ms_per_frame=1000.0 * float(np.mean(times)), errors_mm=e)
