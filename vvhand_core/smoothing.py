"""Steady joints: a One Euro filter over the joints, and the hand track it belongs to.

One Euro filter (Casiez, Roussel, Vogel, CHI 2012), for a signal x sampled at times t with
Te = t_i - t_(i-1):

    alpha(fc) = 1 / (1 + tau / Te),  tau = 1 / (2 pi fc)
    dx_i      = (x_i - xh_(i-1)) / Te           derivative of the signal
    dxh_i     = dxh_(i-1) + alpha(d_cutoff) (dx_i - dxh_(i-1))
    fc_i      = min_cutoff + beta |dxh_i|       cutoff grows with speed
    xh_i      = xh_(i-1) + alpha(fc_i) (x_i - xh_(i-1))

Slow motion gets a low cutoff (little jitter), fast motion a high one (little lag). Here x
is a (J, 3) array in mm, dxh each joint's filtered velocity (J, 3) and |dxh| its norm
(mm/s), so the three coordinates of a joint share one cutoff and the filter does not
depend on how the camera is turned; for motion along one axis it is the paper's filter.
Why not the PyPI package ``OneEuroFilter`` (0.2.1, the authors' reference code): it
filters one scalar per object and has no reset; the formulas are the ten lines below,
vectorised over joints and tested against them (test/test_smoothing.py).

:class:`HandTrack` keeps one hand's track id and filter: the filter restarts, and the
track id changes, when the hand was lost (an invalid frame), when it jumps (the joints'
mean moved more than ``jump_mm`` since the last frame), when more than ``max_gap_s``
passed, or when time went backwards (a replayed bag restarting).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from vvhand_core.deployed import DEPLOYED


def smoothing_factor(te_s: float, cutoff_hz: np.ndarray | float) -> np.ndarray | float:
    """The smoothing factor alpha = 1 / (1 + tau / Te), tau = 1 / (2 pi fc)."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz, dtype=np.float64))
    return 1.0 / (1.0 + tau / te_s)


class OneEuroFilter:
    """One Euro filter over (J, 3) joints (see the module doc); ``reset`` forgets the past."""

    def __init__(self, min_cutoff_hz: float = 1.0, beta: float = 0.02,
                 d_cutoff_hz: float = 1.0) -> None:
        if not (min_cutoff_hz > 0 and d_cutoff_hz > 0 and beta >= 0):
            raise ValueError(f"need min_cutoff_hz > 0, d_cutoff_hz > 0, beta >= 0; got "
                             f"{min_cutoff_hz}, {d_cutoff_hz}, {beta}")
        self.min_cutoff_hz, self.beta, self.d_cutoff_hz = min_cutoff_hz, beta, d_cutoff_hz
        self.reset()

    def reset(self) -> None:
        """The next sample passes unchanged and starts a new history."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, t_s: float, x: np.ndarray) -> np.ndarray:
        """Filtered copy of ``x`` (J, 3) at time ``t_s`` [s]; times must increase."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or x.shape != self._x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros(x.shape), float(t_s)
            return x.copy()
        te = float(t_s) - self._t
        if not te > 0:
            raise ValueError(f"time must increase: {t_s} after {self._t}")
        velocity = (x - self._x) / te  # (J, 3) mm/s
        self._dx = self._dx + smoothing_factor(te, self.d_cutoff_hz) * (velocity - self._dx)
        speed = np.linalg.norm(self._dx, axis=-1)  # (J,)
        a = smoothing_factor(te, self.min_cutoff_hz + self.beta * speed)
        self._x = self._x + a[..., None] * (x - self._x)
        self._t = float(t_s)
        return self._x.copy()


@dataclass
class SmoothingConfig:
    """Temporal filter and track parameters (the node's ``smoothing_*`` / ``track_*``)."""

    enabled: bool = True
    min_cutoff_hz: float = 1.0
    beta: float = 0.02
    d_cutoff_hz: float = 1.0
    jump_mm: float = DEPLOYED.track_jump_mm  # as the fit's (frame_config.FrameConfig)
    max_gap_s: float = 0.5


@dataclass
class TrackUpdate:
    """One frame's outcome: track id (0 = no hand), joints to publish, why it restarted."""

    track_id: int
    joints_mm: np.ndarray | None
    restarted: str = ""  # "", "new", "jump", "gap", "time" (went backwards), "nonfinite"


class HandTrack:
    """Track id and One Euro filter of the one hand the pipeline reports per frame."""

    def __init__(self, config: SmoothingConfig | None = None,
                 ids: Iterator[int] | None = None) -> None:
        """A track without a hand yet.

        ``ids``: where new track ids come from (default 1, 2, ...; the tracks of several
        hands share one source so that their ids never collide).
        """
        self.config = config or SmoothingConfig()
        self._filter = self._make_filter()
        self._ids = ids if ids is not None else itertools.count(1)
        self.track_id = 0
        self._last_t: float | None = None
        self._last_mean: np.ndarray | None = None

    def _make_filter(self) -> OneEuroFilter:
        c = self.config
        return OneEuroFilter(c.min_cutoff_hz, c.beta, c.d_cutoff_hz)

    def configure(self, config: SmoothingConfig) -> None:
        """New parameters (validated); the filter restarts, the track survives."""
        self.config = config
        self._filter = self._make_filter()

    def lost(self) -> TrackUpdate:
        """No hand this frame: the track ends."""
        self.track_id, self._last_t, self._last_mean = 0, None, None
        self._filter.reset()
        return TrackUpdate(0, None)

    def update(self, t_s: float, joints_mm: np.ndarray) -> TrackUpdate:
        """A hand at time ``t_s`` [s]: its track id and (filtered) joints (J, 3) mm."""
        joints = np.asarray(joints_mm, dtype=np.float64)
        if not np.isfinite(joints).all():  # never let NaN into the filter's memory
            self._filter.reset()
            self._last_t = None  # the next finite hand starts a new track
            return TrackUpdate(self.track_id, joints.astype(np.float32), "nonfinite")
        mean = joints.mean(axis=0)
        reason = ""
        if self.track_id == 0 or self._last_t is None:
            reason = "new"
        elif not t_s > self._last_t:
            reason = "time"
        elif t_s - self._last_t > self.config.max_gap_s:
            reason = "gap"
        elif np.linalg.norm(mean - self._last_mean) > self.config.jump_mm:
            reason = "jump"
        if reason:
            self.track_id = next(self._ids)
            self._filter.reset()
        self._last_t, self._last_mean = float(t_s), mean
        out = self._filter(t_s, joints) if self.config.enabled else joints.copy()
        return TrackUpdate(self.track_id, out.astype(np.float32), reason)


__all__ = ["HandTrack", "OneEuroFilter", "SmoothingConfig", "TrackUpdate", "smoothing_factor"]
