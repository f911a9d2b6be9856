"""Every hand in a frame: candidates, merging duplicates, and one track per hand.

numpy only (no torch, no ROS): both localisers (``localise.HandLocaliser`` and
``detector.localiser.DetectorLocaliser``) return their ``locate_all`` answers through
this module, and the torch-free pipeline imports it.

* :class:`HandCandidate`: one hand: centre (3,) camera mm, score in [0, 1], track id
  (None without tracking).
* :func:`merge_duplicates`: detections of one hand (two heat-map peaks on one palm, or
  the palm and the fingers) closer than ``radius_mm`` (3D distance) become one, the best
  scoring kept.
* :class:`HandTracks`: one prior per hand. Each frame the candidates are matched to the
  live tracks greedily by distance: of every (track, candidate) pair closer than
  ``radius_mm`` whose candidate scores at least ``track_threshold`` (weaker evidence than
  a new hand needs), the closest pair is matched first, then the closest of the rest,
  and so on (one candidate per track, one track per candidate). A candidate that matches
  no track starts a new track when it is strong (the localiser's rule for a hand seen
  without a prior). A track unmatched for more than ``max_misses`` frames in a row ends;
  until then its last centre stays its prior (it is not reported in the frames it is
  missed). At most ``max_hands`` hands are reported: matched tracks first (by score),
  then new hands by score; hands cut by that limit start no track.

Order of every list returned (:func:`ordered`): score descending; equal scores nearer
first (smaller depth z).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MERGE_RADIUS_MM = 60.0  # two detections closer than this are one hand


@dataclass(frozen=True)
class HandCandidate:
    """One hand found in a frame.

    ``centre_mm`` (3,) float64 camera mm; ``score`` in [0, 1] (the detector's heat-map
    peak; the geometric localiser's rank score); ``track_id``: the hand's track (unique
    within one localiser's life, never reused after ``reset``), None without tracking.
    """

    centre_mm: np.ndarray
    score: float
    track_id: int | None = None


Found = tuple[float, np.ndarray]  # (score, centre (3,) mm): a raw detection


def ordered(hands: Sequence[HandCandidate]) -> list[HandCandidate]:
    """Score descending; equal scores nearer (smaller z) first."""
    return sorted(hands, key=lambda h: (-h.score, float(h.centre_mm[2])))


def merge_duplicates(found: Sequence[Found], radius_mm: float = MERGE_RADIUS_MM
                     ) -> list[int]:
    """Indices into ``found`` of the detections kept, best first.

    Visited by score descending (equal scores nearer first): a detection closer than
    ``radius_mm`` (3D) to one already kept is a duplicate of it and dropped.
    """
    order = sorted(range(len(found)), key=lambda k: (-found[k][0], float(found[k][1][2])))
    kept: list[int] = []
    for k in order:
        c = found[k][1]
        if all(np.linalg.norm(c - found[j][1]) >= radius_mm for j in kept):
            kept.append(k)
    return kept


def select_new(found: Sequence[Found], strong: Sequence[bool], max_hands: int) -> list[int]:
    """Indices of the strong detections, best first (ties nearer first), at most max_hands."""
    ids = [k for k in range(len(found)) if strong[k]]
    ids.sort(key=lambda k: (-found[k][0], float(found[k][1][2])))
    return ids[:max_hands]


@dataclass
class Track:
    """One hand followed over frames: its id, last centre (the prior) and missed frames."""

    track_id: int
    centre_mm: np.ndarray
    misses: int = 0


@dataclass
class HandTracks:
    """The live tracks of one stream and the matching rule of the module docstring."""

    radius_mm: float = 120.0
    track_threshold: float = 0.1
    max_misses: int = 2
    max_hands: int = 2
    tracks: list[Track] = field(default_factory=list)
    next_id: int = 0

    def __post_init__(self) -> None:
        """Validate."""
        if self.radius_mm <= 0 or self.max_misses < 0 or self.max_hands < 1:
            raise ValueError("radius_mm > 0, max_misses >= 0 and max_hands >= 1 are required")

    def reset(self) -> None:
        """End every track (ids are not reused)."""
        self.tracks = []

    def match(self, found: Sequence[Found]) -> dict[int, int]:
        """{candidate index: track index}: greedy by distance (module docstring)."""
        pairs = []
        for t, track in enumerate(self.tracks):
            for k, (score, c) in enumerate(found):
                d = float(np.linalg.norm(c - track.centre_mm))
                if d <= self.radius_mm and score >= self.track_threshold:
                    pairs.append((d, t, k))
        pairs.sort(key=lambda p: p[0])
        by_cand: dict[int, int] = {}
        used: set[int] = set()
        for _, t, k in pairs:
            if k not in by_cand and t not in used:
                by_cand[k] = t
                used.add(t)
        return by_cand

    def update(self, found: Sequence[Found], strong: Sequence[bool]) -> list[HandCandidate]:
        """The hands of a frame from its detections; the tracks move on.

        ``found``: deduplicated detections (score, centre (3,) mm); ``strong[k]``: whether
        detection k may start a hand without a track. Returns :func:`ordered` hands with
        their track ids.
        """
        matched = self.match(found)
        cont = sorted(matched, key=lambda k: (-found[k][0], float(found[k][1][2])))
        cont = cont[:self.max_hands]
        fresh = [k for k in select_new(found, strong, len(found)) if k not in matched]
        fresh = fresh[:self.max_hands - len(cont)]
        hands, seen = [], set()
        for k in cont:
            track = self.tracks[matched[k]]
            track.centre_mm, track.misses = found[k][1], 0
            seen.add(track.track_id)
            hands.append(HandCandidate(found[k][1], float(found[k][0]), track.track_id))
        alive = []
        for track in self.tracks:
            if track.track_id not in seen:
                track.misses += 1
            if track.misses <= self.max_misses:
                alive.append(track)
        for k in fresh:
            alive.append(Track(self.next_id, found[k][1]))
            hands.append(HandCandidate(found[k][1], float(found[k][0]), self.next_id))
            self.next_id += 1
        self.tracks = alive
        return ordered(hands)
