"""Every hand of a frame: what both pipelines' ``run_hands`` share (numpy only, no torch).

``run_hands(depth_mm, intrinsics)`` (:class:`~vvhand_core.pipeline.VirtualViewPipeline`,
:class:`~vvhand_core.lite.pipeline.LitePipeline`) returns a :class:`HandsResult`:

* ``max_hands == 1``: exactly ``run``'s answer (the localiser's one-hand rule, ``locate``:
  the nearest confident hand), wrapped: ``hands`` holds it when valid.
* ``max_hands >= 2``: the localiser's ``locate_all`` gives up to ``max_hands`` candidates
  with their track ids, and its one-hand rule (``locate``) the hand ``run`` would crop
  (:func:`locate_hands`): the candidate of that hand (within the localiser's merge
  radius) is cropped at ``locate``'s centre, so the hand a one-hand node follows is
  estimated exactly as by ``run`` (``locate_all`` keeps the best scoring of close
  detections, which can lie off a tracked hand's centre; ``locate`` the one
  nearest its prior). That hand also keeps its track id while ``locate`` follows it
  (:class:`LocatedHand`: when ``locate_all`` starts a new track for it, the new id is
  swapped with the old), so its fit sequence and published track continue as with one
  hand.
  All are cropped and estimated in ONE batch through the networks (one forward per
  network for the frame), then :func:`finish_hands`:

  1. a candidate whose crop holds no depth is no hand;
  2. **overlap rule** (hands touching, or two candidates on one hand): visited with the
     followed hand first, then in the localiser's order (score descending), a hand whose
     fused joints lie within :data:`DUPLICATE_MM` (mean joint distance) of a hand already
     kept, or whose crop centre lies within :data:`DUPLICATE_CENTRE_MM` of one of its
     joints (a second detector peak on its fingers or wrist), is the same hand seen twice
     and is not reported (its localiser track lives on, so it returns with its id once the
     hands part; a kept hand without a track id takes the repeat's, so the hand that
     ``locate`` follows at a centre ``locate_all`` did not give keeps its id and fit
     sequence). Two hands that touch but are estimated apart are both reported; nothing
     is merged or averaged across hands;
  3. the hand-model fit (``config.fit``) runs per hand in the hand's own sequence (one
     fit state per track id: ``fit.stage.FitStage.apply_hands``); a hand the fit rejects
     (phantom: residual above the limit) is not reported and its localiser track ends
     (and ``locate``'s prior, when it was that hand: as ``run`` forgets it);
  4. **side rule**: two reported hands never share a side. When they claim the same one,
     the one with the weaker evidence (P(right) nearer 0.5: the fit's side evidence of
     its sequence when fitted, else the network's ``right_probability``) becomes
     "unknown" (two people's right hands in a handover are possible: no side is forced);
  5. **order**: nearest first (smallest centre depth z), equal depths by track id. The
     order is for reading only; a hand's identity is its ``track_id``.

Hands not reported are kept in ``HandsResult.dropped`` with the reason in their
``message``. ``HandsResult.primary``, for single-hand consumers: the hand ``locate``
follows when it is reported (what ``run`` returns), else the first hand, or when there is
none the invalid result saying why.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from vvhand_core.detector.tracks import HandCandidate
from vvhand_core.hand_pose_result import HandPoseResult

DUPLICATE_MM = 40.0  # two estimates closer than this (mean joint distance) are one hand
DUPLICATE_CENTRE_MM = 30.0  # a crop centre this near a kept hand's joint is that hand again
MAX_HANDS_LIMIT = 8  # the largest max_hands accepted


@dataclass
class HandsResult:
    """One frame's hands (module doc). ``timings_ms``: the frame's, per stage."""

    hands: list[HandPoseResult]
    primary: HandPoseResult
    dropped: list[HandPoseResult] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        """Whether at least one hand is reported."""
        return bool(self.hands)

    @property
    def message(self) -> str:
        """Why no hand is reported ("" when there is one)."""
        return "" if self.hands else self.primary.message

    @classmethod
    def of_one(cls, result: HandPoseResult) -> HandsResult:
        """The one-hand answer (``run``'s result) as a HandsResult."""
        return cls([result] if result.valid else [], result,
                   [] if result.valid else [result], dict(result.timings_ms))


def check_max_hands(value: object) -> None:
    """ValueError unless ``value`` is an integer in 1..MAX_HANDS_LIMIT."""
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or not 1 <= value <= MAX_HANDS_LIMIT):
        raise ValueError(f"max_hands must be an integer in 1..{MAX_HANDS_LIMIT}, got {value!r}")


class LocatedHand:
    """The hand ``locate`` follows: its last centre and published track id.

    ``alias`` is a permutation of ``locate_all``'s track ids (raw id -> published id; ids
    not in it publish as themselves): when ``locate`` still follows its hand (within the
    localiser's track radius) and ``locate_all`` gives it a NEW track, the two ids are
    swapped, so that the followed hand keeps its id and no two hands ever publish the same
    one. A track that existed before is never renamed (when ``locate``'s prior moves to
    another, already tracked hand, that hand keeps its own id).
    """

    def __init__(self) -> None:
        self.alias: dict[int, int] = {}
        self.lost()

    def reset(self) -> None:
        """Forget everything (a new stream)."""
        self.alias = {}
        self.lost()
        self.newest_raw = -1

    def lost(self) -> None:
        """``locate`` no longer follows a hand."""
        self.centre_mm: np.ndarray | None = None
        self.track_id: int | None = None
        self.newest_raw = getattr(self, "newest_raw", -1)  # ids above it: new tracks

    def published(self, raw_id: int | None) -> int | None:
        """The published id of ``locate_all``'s track ``raw_id``."""
        return None if raw_id is None else self.alias.get(raw_id, raw_id)

    def raw_ids(self, track_id: int | None) -> set[int]:
        """The ``locate_all`` id published as ``track_id`` (a set: empty for None)."""
        if track_id is None:
            return set()
        return {next((r for r, p in self.alias.items() if p == track_id), track_id)}

    def keep(self, raw_id: int, track_id: int) -> None:
        """Publish ``raw_id`` as ``track_id``, swapping with the raw id that had it."""
        (holder,) = self.raw_ids(track_id)
        old = self.published(raw_id)
        self.alias[raw_id], self.alias[holder] = track_id, old
        self.alias = {r: p for r, p in self.alias.items() if r != p}


def locate_hands(localiser, depth_mm: np.ndarray, intrinsics, located: LocatedHand
                 ) -> list[HandCandidate]:
    """The frame's hands (module doc): ``locate_all``'s, the one ``locate`` picks at its centre.

    Track ids as published (:class:`LocatedHand`). A hand ``locate`` finds but
    ``locate_all`` does not is added without a track id.
    """
    with _detect_once(localiser, depth_mm):
        raw = list(localiser.locate_all(depth_mm, intrinsics))
        centre = localiser.locate(depth_mm, intrinsics)
    if centre is None:
        located.lost()
        return [replace(h, track_id=located.published(h.track_id)) for h in raw]
    centre = np.asarray(centre, np.float64)
    dist = [float(np.linalg.norm(h.centre_mm - centre)) for h in raw]
    near = [k for k, d in enumerate(dist) if d < localiser.cfg.merge_radius_mm]
    if near:
        k = min(near, key=dist.__getitem__)
    else:
        k, raw = 0, [HandCandidate(centre, 1.0), *raw]
    followed = (located.centre_mm is not None and located.track_id is not None
                and np.linalg.norm(centre - located.centre_mm) <= localiser.cfg.track_radius_mm)
    raw_k = raw[k].track_id
    if (followed and raw_k is not None and raw_k > located.newest_raw
            and located.published(raw_k) != located.track_id):
        located.keep(raw_k, located.track_id)  # locate_all gave the followed hand a new track
    located.newest_raw = max([located.newest_raw, *(h.track_id for h in raw
                                                    if h.track_id is not None)])
    hands = [replace(h, track_id=located.published(h.track_id)) for h in raw]
    hands[k] = replace(hands[k], centre_mm=centre)
    located.centre_mm, located.track_id = centre, hands[k].track_id
    return hands


@contextmanager
def _detect_once(localiser, depth_mm: np.ndarray):
    """Within: the learned detector's network runs once for ``depth_mm``.

    ``locate_all`` and ``locate`` each ask for its detections (the network is most of the
    localiser's time). ``candidates(depth, intr, threshold)`` returns every peak scoring
    >= threshold, best first (at most ``max_peaks``), so a call at a higher threshold is
    the lower one's answer filtered by score. Localisers without ``candidates``
    (geometric) are untouched.
    """
    detect = getattr(localiser, "candidates", None)
    if detect is None:
        yield
        return
    cache: dict[str, object] = {}

    def candidates(depth, intr, threshold):
        if depth is not depth_mm:
            return detect(depth, intr, threshold)
        if "found" not in cache or threshold < cache["low"]:
            cache["low"], cache["found"] = threshold, detect(depth, intr, threshold)
        return [(s, c) for s, c in cache["found"] if s >= threshold]

    localiser.candidates = candidates  # an instance attribute shadows the method
    try:
        yield
    finally:
        del localiser.candidates


def end_track(localiser, track_id: int | None, centre_mm: np.ndarray | None = None,
              located: LocatedHand | None = None) -> None:
    """End one hand's ``locate_all`` track (published ``track_id``) in ``localiser``.

    The other hands' tracks live on. ``locate``'s prior is forgotten too when it is that
    hand's ``centre_mm`` (and ``located`` loses it).
    """
    tracks = getattr(localiser, "tracks", None)
    ends = located.raw_ids(track_id) if located is not None else (
        set() if track_id is None else {track_id})
    if tracks is not None and ends:
        tracks.tracks = [t for t in tracks.tracks if t.track_id not in ends]
    prior = getattr(localiser, "prior", None)
    if prior is not None and centre_mm is not None and np.allclose(prior, centre_mm,
                                                                   atol=1e-3):
        localiser.prior = None
        if located is not None:
            located.lost()


def duplicate_pairs(results: list[HandPoseResult], limit_mm: float = DUPLICATE_MM,
                    centre_mm: float = DUPLICATE_CENTRE_MM) -> list[tuple[int, int]]:
    """(repeat, kept) index pairs of the overlap rule (step 2), repeats in order.

    Each valid result that repeats an earlier kept one comes with the first kept result it
    repeats. A repeat: joints within ``limit_mm`` (mean joint distance) of a kept hand's, or a crop
    centre within ``centre_mm`` of one of its joints.
    """
    kept: list[tuple[int, np.ndarray]] = []
    out = []
    for i, r in enumerate(results):
        if not r.valid:
            continue
        joints = np.asarray(r.joints_mm, np.float64)
        centre = np.asarray(r.centre_mm, np.float64)
        same = next((j for j, k in kept if np.linalg.norm(joints - k, axis=1).mean() < limit_mm
                     or np.linalg.norm(k - centre, axis=1).min() < centre_mm), None)
        if same is not None:
            out.append((i, same))
        else:
            kept.append((i, joints))
    return out


def _pass_track_id(repeat: HandPoseResult, kept: HandPoseResult,
                   located: LocatedHand | None) -> None:
    """A repeat's track id passes to the kept estimate of the same hand when that has none.

    (``locate`` followed the hand at a centre ``locate_all`` did not give, while
    ``locate_all``'s track of the hand went on with another peak: the hand keeps its id,
    and so its fit sequence, and ``located`` follows it by that id.)
    """
    if repeat.track_id is None or kept.track_id is not None:
        return
    kept.track_id = repeat.track_id
    if located is not None and _is_at(kept, located.centre_mm):
        located.track_id = kept.track_id


def _is_at(result: HandPoseResult, centre_mm: np.ndarray | None) -> bool:
    return centre_mm is not None and bool(np.allclose(result.centre_mm, centre_mm, atol=1e-3))


def order_hands(hands: list[HandPoseResult]) -> list[HandPoseResult]:
    """Nearest first (centre z), equal depths by track id (None last)."""
    return sorted(hands, key=lambda r: (float(r.centre_mm[2]),
                                        r.track_id is None, r.track_id or 0))


def finish_hands(results: list[HandPoseResult], track_ids: list[int | None], fit,
                 depth_mm: np.ndarray, intrinsics, sequence: bool, invalid,
                 localiser, located: LocatedHand | None = None
                 ) -> tuple[list[HandPoseResult], list[HandPoseResult]]:
    """Steps 1-4 of the module doc on one frame's estimates -> (hands, dropped).

    ``results``: one per candidate, in the localiser's order; ``track_ids`` theirs;
    ``fit``: the pipeline's FitStage or None; ``depth_mm`` (H, W); ``invalid(message,
    centre)`` makes a no-hand result; ``localiser``: whose track a rejected hand ends
    (``located``: the aliases of :func:`locate_hands`).
    """
    for r, tid in zip(results, track_ids, strict=True):
        r.track_id = tid
    lead = None if located is None else located.centre_mm
    dropped = [r for r in results if not r.valid]
    live = sorted((r for r in results if r.valid), key=lambda r: not _is_at(r, lead))
    for i, j in duplicate_pairs(live)[::-1]:
        _pass_track_id(live[i], live[j], located)
        r = live.pop(i)
        shown = invalid(f"not reported: the same hand as another estimate (joints within "
                        f"{DUPLICATE_MM:g} mm, or its centre within {DUPLICATE_CENTRE_MM:g} "
                        "mm of a joint)", r.centre_mm)
        shown.track_id = r.track_id
        dropped.append(shown)
    if fit is not None:
        if live:
            for i in fit.apply_hands(live, depth_mm, intrinsics, sequence, invalid)[::-1]:
                end_track(localiser, live[i].track_id, live[i].centre_mm, located)
                dropped.append(live.pop(i))
        else:
            fit.apply_hands([], depth_mm, intrinsics, sequence, invalid)
    one_side_each(live)
    return order_hands(live), dropped


def side_strength(result: HandPoseResult) -> float:
    """|P(right) - 0.5| of a hand: its fit's sequence evidence when fitted, else the net's."""
    fit = getattr(result, "fit", None)
    if fit is not None and not fit.fell_back and fit.state is not None:
        p = 1.0 / (1.0 + np.exp(-float(fit.state.side_evidence)))
    else:
        p = float(result.right_probability)
    return abs(p - 0.5)


def one_side_each(hands: list[HandPoseResult]) -> None:
    """Step 4 of the module doc, in place: of hands claiming one side, the strongest keeps it.

    Ties: the earlier (better scoring) candidate keeps it.
    """
    for side in ("left", "right"):
        claim = [h for h in hands if h.side == side]
        strongest = max(claim, key=side_strength, default=None)  # first of equals kept
        for h in claim:
            if h is not strongest:
                h.side = "unknown"


def hands_result(hands: list[HandPoseResult], dropped: list[HandPoseResult],
                 invalid, timings_ms: dict[str, float], located: LocatedHand | None = None
                 ) -> HandsResult:
    """The frame's HandsResult; every result gets the frame's timings.

    ``primary``: the hand ``locate`` follows (cropped at ``located.centre_mm``) when it is
    reported, else the first hand, else why there is none.
    """
    for r in (*hands, *dropped):
        r.timings_ms = dict(timings_ms)
    lead = None if located is None else located.centre_mm
    followed = [r for r in hands if _is_at(r, lead)]
    primary = (followed[0] if followed else hands[0] if hands else
               dropped[0] if dropped else invalid("no hand in range"))
    if not primary.timings_ms:
        primary.timings_ms = dict(timings_ms)
    return HandsResult(hands, primary, dropped, dict(timings_ms))


__all__ = ["DUPLICATE_MM", "HandsResult", "LocatedHand", "MAX_HANDS_LIMIT", "check_max_hands",
           "duplicate_pairs", "end_track", "finish_hands", "hands_result", "locate_hands",
           "one_side_each", "order_hands", "side_strength"]
