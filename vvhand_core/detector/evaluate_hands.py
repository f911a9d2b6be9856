"""Scoring a multi-hand localiser (``locate_all``) on every labelled hand of a frame.

Labelled hands of a synthetic frame (:func:`frame_hands`):

* scene version 3: every entry of ``meta["hands"]`` (its ``center_mm``, the joint mean;
  its ``grasp`` and ``side``); a hand the meta leaves out because its centre lies outside
  the image, but which reaches into it (``detector.offimage.frame_offimage_hands``), is
  an unlabelled hand;
* versions 1 and 2: ``joints_mm`` is the only labelled hand. A v2 scene's
  ``meta["second_hand_center_mm"]`` is a second, unlabelled hand (a distractor): a
  candidate there is neither a found hand nor an extra one;
* a hand-free scene (``meta["hand_free"]``): none (its joints are bookkeeping only).

Per frame (:func:`score_frame`): a labelled hand is **found** when a candidate lies within
``FOUND_MM`` of its centre; one candidate finds one hand, matched greedily by distance
(closest pair first). A candidate that finds no hand is **extra** (a phantom) when it is
also farther than ``NEAR_MM`` from every hand of the scene, labelled or not (a hand
found 30-60 mm off is a poorly placed hand, not a phantom). Summaries
(:func:`summarise`): hands found (% of labelled hands), frames with an extra candidate
(% of frames with hands), hand-free frames with any candidate (%), and the localiser's
time per frame: CPU (``time.process_time``: one thread when the caller limits the
runtimes to one) and wall (``time.perf_counter``). Grouped by the frame's
``meta["placement"]`` and by each hand's grasp where the frames say them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from vvhand_core.data.base import DepthFrame
from vvhand_core.hand_scores import match_hands

FOUND_MM = 30.0  # a candidate this close to a labelled hand's centre finds it
NEAR_MM = 60.0  # a candidate this close to any hand of the scene is not a phantom


@dataclass(frozen=True)
class LabelledHand:
    """A labelled hand: centre (3,) camera mm (its joint mean), grasp and side if known."""

    centre_mm: np.ndarray
    grasp: str | None = None
    side: str | None = None


def frame_hands(frame: DepthFrame) -> tuple[list[LabelledHand], list[np.ndarray]]:
    """(labelled hands, centres (3,) mm of unlabelled hands) of a synthetic frame."""
    meta = frame.meta
    if meta.get("hand_free"):
        return [], []
    hands = meta.get("hands")
    if hands is not None:
        from vvhand_core.detector.offimage import frame_offimage_hands

        return [LabelledHand(np.asarray(h["center_mm"], np.float64), h.get("grasp"),
                             h.get("side")) for h in hands], frame_offimage_hands(frame)
    labelled = [LabelledHand(np.asarray(frame.joints_mm, np.float64).mean(axis=0), None,
                             meta.get("side"))]
    second = meta.get("second_hand_center_mm")
    return labelled, [] if second is None else [np.asarray(second, np.float64)]


def match_greedy(cands_mm: np.ndarray, hands_mm: np.ndarray, radius_mm: float
                 ) -> list[tuple[int, int]]:
    """(candidate, hand) index pairs within ``radius_mm``, closest pair first.

    Each candidate and each hand is used once (``vvhand_core.hand_scores.match_hands``,
    the one greedy matcher). ``cands_mm`` (N, 3), ``hands_mm`` (M, 3).
    """
    return match_hands(cands_mm, hands_mm, radius_mm)


@dataclass
class FrameOutcome:
    """One frame: which labelled hands were found, extra candidates, times."""

    found: list[bool]  # per labelled hand
    grasps: list[str | None]  # per labelled hand
    candidates: int
    extra: int
    hand_free: bool
    placement: str | None
    cpu_ms: float = 0.0
    wall_ms: float = 0.0


def score_frame(centres_mm: list[np.ndarray], frame: DepthFrame) -> FrameOutcome:
    """Outcome of the candidate centres (each (3,) mm) on a labelled frame."""
    labelled, unlabelled = frame_hands(frame)
    cands = np.asarray(centres_mm, np.float64).reshape(-1, 3)
    hands = np.array([h.centre_mm for h in labelled], np.float64).reshape(-1, 3)
    pairs = match_greedy(cands, hands, FOUND_MM)
    found = [False] * len(labelled)
    for _, j in pairs:
        found[j] = True
    matched = {i for i, _ in pairs}
    every = np.concatenate([hands, np.asarray(unlabelled, np.float64).reshape(-1, 3)])
    extra = 0
    for i, c in enumerate(cands):
        if i in matched:
            continue
        if len(every) == 0 or np.linalg.norm(every - c, axis=1).min() > NEAR_MM:
            extra += 1
    return FrameOutcome(found, [h.grasp for h in labelled], len(cands), extra,
                        bool(frame.meta.get("hand_free")), frame.meta.get("placement"))


def run_localisers(locates: dict[str, Callable], frames: Iterable[DepthFrame],
                   progress=None) -> dict[str, list[FrameOutcome]]:
    """Score localisers {name: ``locate_all(depth_mm, intrinsics) -> [HandCandidate]``}.

    Every frame goes to each localiser in turn, the order rotating from frame to frame
    (a changing machine load slows them alike, so their times compare).
    """
    names = list(locates)
    out: dict[str, list[FrameOutcome]] = {n: [] for n in names}
    for k, f in enumerate(frames):
        for name in names[k % len(names):] + names[:k % len(names)]:
            c0, w0 = time.process_time(), time.perf_counter()
            hands = locates[name](f.depth_mm, f.intrinsics)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            o = score_frame([h.centre_mm for h in hands], f)
            o.cpu_ms, o.wall_ms = 1000.0 * cpu, 1000.0 * wall
            out[name].append(o)
        if progress:
            progress(1)
    return out


@dataclass
class HandsScore:
    """Summary of frame outcomes (NaN where a part has no frames)."""

    frames: int  # frames with labelled hands
    hands: int
    found: float  # fraction of labelled hands
    extra_frames: float  # fraction of frames with hands that have an extra candidate
    free_frames: int  # hand-free frames
    free_reported: float  # fraction of hand-free frames with any candidate
    cpu_ms: float  # mean per frame (all frames)
    wall_ms: float

    def row(self) -> list[object]:
        """Table row (see :data:`HEADER`)."""
        return [self.hands, _pct(self.found), _pct(self.extra_frames), self.free_frames,
                _pct(self.free_reported), self.cpu_ms, self.wall_ms]


HEADER = ["labelled hands", "found within 30 mm", "frames with an extra candidate",
          "hand-free frames", "hand-free frames with a hand", "CPU ms/frame",
          "wall ms/frame"]


def _pct(x: float) -> str:
    return "-" if np.isnan(x) else f"{100 * x:.1f} %"


def _mean(values: list) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def summarise(outcomes: list[FrameOutcome]) -> HandsScore:
    """The summary of :data:`HEADER` over ``outcomes``."""
    with_hands = [o for o in outcomes if not o.hand_free]
    free = [o for o in outcomes if o.hand_free]
    found = [x for o in with_hands for x in o.found]
    return HandsScore(
        frames=len(with_hands), hands=len(found), found=_mean(found),
        extra_frames=_mean([o.extra > 0 for o in with_hands]), free_frames=len(free),
        free_reported=_mean([o.candidates > 0 for o in free]),
        cpu_ms=_mean([o.cpu_ms for o in outcomes]),
        wall_ms=_mean([o.wall_ms for o in outcomes]))


def by_placement(outcomes: list[FrameOutcome]) -> dict[str, HandsScore]:
    """:func:`summarise` per camera placement (frames without one: none)."""
    groups: dict[str, list[FrameOutcome]] = {}
    for o in outcomes:
        if o.placement is not None:
            groups.setdefault(o.placement, []).append(o)
    return {k: summarise(v) for k, v in sorted(groups.items())}


def by_grasp(outcomes: list[FrameOutcome]) -> dict[str, tuple[int, float]]:
    """{grasp: (labelled hands, fraction found)} over the hands whose grasp is known."""
    groups: dict[str, list[bool]] = {}
    for o in outcomes:
        for g, ok in zip(o.grasps, o.found, strict=True):
            if g is not None:
                groups.setdefault(g, []).append(ok)
    return {k: (len(v), float(np.mean(v))) for k, v in sorted(groups.items())}
