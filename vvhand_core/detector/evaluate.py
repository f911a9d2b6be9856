"""Scoring a hand localiser on labelled frames: the numbers issue 10 asks for.

For each frame: the localised centre against the ground-truth joint mean (the oracle
centre), "no hand" when the localiser returns None, and the localiser's own CPU time.
Tracking is off (each frame on its own), as in the ablation. Several localisers are
scored on the same frames interleaved, so that their times compare under any load.
``evaluate_all`` scores the detector (per runtime) and the geometric localiser on the
fixed test splits ``TEST_SPLITS`` (`vvhand detector eval`, and after training).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from vvhand_core.data.base import DepthFrame
from vvhand_core.detector.localiser import DetectorLocaliser, DetectorLocaliserConfig
from vvhand_core.localise import HandLocaliser, LocaliseConfig, oracle_centre


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


# the fixed test splits: today's synthetic test split and the new person scenes
TEST_SPLITS = {"synthetic test (v1, seed 3)": {"seed": 3},
               "new scenes (v2, seed 5)": {"scene_version": 2, "seed": 5}}
def split_frames(synth: dict, n: int):
    """Frames 0..n-1 of the synthetic split ``synth`` (SynthConfig overrides), lazily."""
    from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator

    gen = SyntheticHandGenerator(SynthConfig.from_dict(synth))
    return (gen.frame(i) for i in range(n))


def localisers(weights: str, runtimes: tuple[str, ...] = ("auto",)) -> dict:
    """Name -> locate callable of every localiser compared (tracking off).

    One detector per runtime (``detector.runtime.RUNTIMES``), named by the one it runs,
    and the first runtime's also with ``hand_threshold=1`` (the nearest strong candidate
    wins however weak: the rule before confident hands were preferred).
    """
    out = {}
    for k, runtime in enumerate(runtimes):
        det = DetectorLocaliser(DetectorLocaliserConfig(weights=weights, use_tracking=False,
                                                        runtime=runtime))
        out[f"detector (learned, {det.runtime})"] = det.locate
        if k == 0:
            plain = DetectorLocaliser(DetectorLocaliserConfig(
                weights=weights, use_tracking=False, runtime=runtime, hand_threshold=1.0))
            out[f"detector, hand_threshold 1 (learned, {plain.runtime})"] = plain.locate
    out["geometric (nearest object)"] = HandLocaliser(LocaliseConfig(use_tracking=False)).locate
    return out


def evaluate_all(weights: str, frames: int, runtimes: tuple[str, ...] = ("auto",)
                 ) -> list[list[object]]:
    """Rows [split, localiser, *LocaliserScore.row()] on both test splits.

    The localisers of one split run on the same frames, interleaved (comparable times).
    """
    import torch

    torch.set_num_threads(1)
    rows = []
    for split, synth in TEST_SPLITS.items():
        cached = list(split_frames(synth, frames))
        with tqdm(total=len(cached), desc=split, leave=False) as bar:
            scores = score_localisers(localisers(weights, runtimes), cached, bar.update)
        rows += [[split, name, *s.row()] for name, s in scores.items()]
    return rows


def runtime_ratios(rows: list[list[object]]) -> list[str]:
    """Per split with both detector runtimes: their ms/frame and onnxruntime / torch."""
    lines = []
    for split in TEST_SPLITS:
        ms = {r[1]: r[-1] for r in rows if r[0] == split}
        t, o = ms.get("detector (learned, torch)"), ms.get("detector (learned, onnxruntime)")
        if t and o:
            lines.append(f"{split}: detector {t:.2f} ms/frame with torch, {o:.2f} with "
                         f"onnxruntime (onnxruntime / torch = {o / t:.2f})")
    return lines
