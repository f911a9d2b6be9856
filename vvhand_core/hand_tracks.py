"""The published hands' tracks: one :class:`~vvhand_core.smoothing.HandTrack` per hand.

The node publishes every hand of ``run_hands`` (:mod:`vvhand_core.hands`). Each hand is
followed by the key the pipeline gives it, its localiser ``track_id`` (None on the
one-hand path, where there is one hand at most), and gets:

* its own :class:`~vvhand_core.smoothing.HandTrack`: a published track id (ids of all
  hands come from one counter, so two hands never share one; a hand that jumps or comes
  back after a gap gets a new id, as with one hand) and its own One Euro filter;
* a **slot**: the lowest number (0, 1, ...) no other live hand holds, given when the hand
  is first published and kept while it is published in consecutive frames. TF frame
  names use it (``hand_<slot>_palm``): a bounded set of names that stay with a hand when
  the hands cross or the list order changes; with one hand the slot is always 0.

A hand missing from a frame ends its track and frees its slot (as the one hand's track
ends on a frame without a hand).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from vvhand_core.smoothing import HandTrack, SmoothingConfig, TrackUpdate


@dataclass
class _Live:
    track: HandTrack
    slot: int


class OutputTracks:
    """Tracks, filters and slots of the published hands (module doc)."""

    def __init__(self, config: SmoothingConfig | None = None) -> None:
        self.config = config or SmoothingConfig()
        HandTrack(self.config)  # validates
        self._ids = itertools.count(1)
        self._live: dict[object, _Live] = {}

    def configure(self, config: SmoothingConfig) -> None:
        """New filter parameters (validated: ValueError); filters restart, tracks survive."""
        HandTrack(config)
        self.config = config
        for live in self._live.values():
            live.track.configure(config)

    def lost(self) -> None:
        """No hand this frame: every track ends."""
        self._live = {}

    def update(self, t_s: float, hands: list[tuple[object, np.ndarray]]
               ) -> list[tuple[TrackUpdate, int]]:
        """One frame's hands, (key, joints (J, 3) mm) each -> (TrackUpdate, slot) each.

        Keys must be unique within a frame (ValueError otherwise).
        """
        keys = [k for k, _ in hands]
        if len(set(keys)) != len(keys):
            raise ValueError(f"hand keys must be unique within a frame, got {keys}")
        self._live = {k: v for k, v in self._live.items() if k in keys}
        out = []
        for key, joints in hands:
            live = self._live.get(key)
            if live is None:
                taken = {v.slot for v in self._live.values()}
                slot = next(s for s in itertools.count() if s not in taken)
                live = self._live[key] = _Live(HandTrack(self.config, self._ids), slot)
            out.append((live.track.update(t_s, joints), live.slot))
        return out


__all__ = ["OutputTracks"]
