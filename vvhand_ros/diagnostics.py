"""What /diagnostics says about the node, without ROS imports: rates, delay, drops, level.

``RateDelayMonitor`` records each input frame's arrival, each camera_info's arrival with
its stamp, and each output's publication time with its header stamp; over the last
``window_s`` it gives the measured input and output rates [Hz], the delay of the outputs
from their header.stamp (the camera's capture time, not our arrival time) [s], and how
many depth images never reached the node: a driver publishes one camera_info per image
(image_transport's CameraPublisher), and camera_info is small enough to arrive when a
large image is lost in transport, so camera_infos without their image are images lost
before the callback. :func:`assess` turns that, the expected rate and the declared bounds
into a level (OK / WARN / ERROR, diagnostic_msgs' 0 / 1 / 2) and a message.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

OK, WARN, ERROR = 0, 1, 2
# WARN when more than this fraction of the depth images (camera_infos without their image)
# was lost before the callback; measured once LOSS_MIN_INFOS camera_infos are in the window
LOSS_WARN_FRACTION = 0.2
LOSS_MIN_INFOS = 5
# WARN when more than this fraction of the depth frames paired since the previous report
# was dropped (superseded by a newer frame before the worker took it: processing is slower
# than the input); a frame now and then is the keep-newest policy working, not a problem
DROP_WARN_FRACTION = 0.2


@dataclass
class DiagnosticBounds:
    """Declared bounds (the node's diag_* parameters).

    expected_rate_hz: output rate the consumers need; 0 = not checked. The level is WARN
    below rate_warn_fraction x expected and ERROR below rate_error_fraction x expected, and
    WARN / ERROR when the median delay from header.stamp exceeds delay_warn_s / delay_error_s.
    """

    expected_rate_hz: float = 0.0
    rate_warn_fraction: float = 0.8
    rate_error_fraction: float = 0.5
    delay_warn_s: float = 0.5
    delay_error_s: float = 2.0


class RateDelayMonitor:
    """Input / output rates and output delay over a sliding window (times in seconds).

    Thread-safe: the node records inputs in its callbacks and outputs in its worker.
    """

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = float(window_s)
        self._inputs: deque[tuple[float, float]] = deque()  # (arrived at, stamp)
        self._infos: deque[tuple[float, float]] = deque()   # (arrived at, stamp)
        self._outputs: deque[tuple[float, float]] = deque()  # (published at, delay)
        self._start: float | None = None
        self._lock = threading.Lock()

    def _trim(self, now_s: float) -> None:
        for q in (self._inputs, self._infos, self._outputs):
            while q and q[0][0] < now_s - self.window_s:
                q.popleft()

    def _add(self, q: deque, now_s: float, value: float) -> None:
        with self._lock:
            self._start = now_s if self._start is None else self._start
            q.append((now_s, value))
            self._trim(now_s)

    def input(self, now_s: float, stamp_s: float = float("nan")) -> None:
        """A depth frame stamped ``stamp_s`` arrived at ``now_s``."""
        self._add(self._inputs, now_s, stamp_s)

    def info(self, now_s: float, stamp_s: float) -> None:
        """A camera_info stamped ``stamp_s`` arrived at ``now_s``."""
        self._add(self._infos, now_s, stamp_s)

    def output(self, now_s: float, stamp_s: float) -> None:
        """A result for the frame stamped ``stamp_s`` was published at ``now_s``."""
        self._add(self._outputs, now_s, now_s - stamp_s)

    def summary(self, now_s: float) -> dict[str, float]:
        """Rates, delays and input loss over the window (NaN where nothing tells).

        input_rate_hz / info_rate_hz / output_rate_hz: depth images, camera_infos, outputs
        per second of arrival; stamp_rate_hz: the camera's rate from the stamps (median
        interval of the camera_info stamps, else of the images'); input_loss_fraction: the
        fraction of camera_infos whose depth image did not arrive (NaN below
        LOSS_MIN_INFOS camera_infos); delay_p50_s, delay_max_s: outputs' delay from
        header.stamp.
        """
        with self._lock:
            self._trim(now_s)
            img_stamps = [s for _, s in self._inputs]
            info_stamps = [s for _, s in self._infos]
            delays = np.array([d for _, d in self._outputs], dtype=np.float64)
            start = self._start
        n_in, n_info, n_out = len(img_stamps), len(info_stamps), len(delays)
        span = self.window_s if start is None else min(self.window_s, max(now_s - start, 1e-3))
        loss = float("nan")
        if n_info >= LOSS_MIN_INFOS:  # one camera_info per image: they count the frames
            loss = max(0.0, 1.0 - n_in / n_info)
        return {
            "input_rate_hz": n_in / span,
            "info_rate_hz": n_info / span,
            "stamp_rate_hz": _stamp_rate(info_stamps if n_info >= 2 else img_stamps),
            "input_loss_fraction": loss,
            "output_rate_hz": n_out / span,
            "delay_p50_s": float(np.median(delays)) if delays.size else float("nan"),
            "delay_max_s": float(delays.max()) if delays.size else float("nan"),
        }


def _stamp_rate(stamps: list[float]) -> float:
    """1 / the median interval between distinct finite stamps [Hz]; NaN with fewer than 2."""
    s = np.unique(np.asarray([x for x in stamps if np.isfinite(x)], dtype=np.float64))
    d = np.diff(s)
    d = d[d > 0]
    return float(1.0 / np.median(d)) if d.size else float("nan")


def dropped_fraction(dropped: int, paired: int) -> float:
    """Fraction of the ``paired`` frames (handed to the worker) dropped; NaN without any."""
    return min(1.0, dropped / paired) if paired > 0 else float("nan")


def assess(summary: dict[str, float], bounds: DiagnosticBounds,
           new_problems: dict[str, int]) -> tuple[int, str]:
    """(level, message) from a summary, the bounds and the drops counted since last time.

    new_problems: reason -> frames lost to it since the previous report (rejected, failed,
    unpaired, tf_unavailable); any of them makes the level at least WARN. The summary's
    ``dropped_fraction`` (if present; frames superseded before processing since the
    previous report, of the frames paired then) above DROP_WARN_FRACTION does too.
    """
    level, notes = OK, []
    expected = bounds.expected_rate_hz
    rate = summary["output_rate_hz"]
    if expected > 0:
        if rate < bounds.rate_error_fraction * expected:
            level = ERROR
            notes.append(f"rate {rate:.1f} Hz < {bounds.rate_error_fraction:g} x expected "
                         f"{expected:g} Hz")
        elif rate < bounds.rate_warn_fraction * expected:
            level = max(level, WARN)
            notes.append(f"rate {rate:.1f} Hz < {bounds.rate_warn_fraction:g} x expected "
                         f"{expected:g} Hz")
    delay = summary["delay_p50_s"]
    if np.isfinite(delay):
        if delay > bounds.delay_error_s:
            level = ERROR
            notes.append(f"delay {delay:.2f} s > {bounds.delay_error_s:g} s")
        elif delay > bounds.delay_warn_s:
            level = max(level, WARN)
            notes.append(f"delay {delay:.2f} s > {bounds.delay_warn_s:g} s")
    loss = summary.get("input_loss_fraction", float("nan"))
    if np.isfinite(loss) and loss > LOSS_WARN_FRACTION:
        level = max(level, WARN)
        notes.append(f"{100 * loss:.0f}% of the depth images lost before the node (images "
                     f"{summary['input_rate_hz']:.1f} Hz, camera_info "
                     f"{summary['info_rate_hz']:.1f} Hz): see docs/ros.md, 'Large images'")
    dropped = summary.get("dropped_fraction", float("nan"))
    if np.isfinite(dropped) and dropped > DROP_WARN_FRACTION:
        level = max(level, WARN)
        notes.append(f"{100 * dropped:.0f}% of the depth frames dropped unprocessed "
                     "(superseded while the worker was busy: processing is slower than the "
                     "input)")
    lost = {k: v for k, v in new_problems.items() if v > 0}
    if lost:
        level = max(level, WARN)
        notes.append("dropped " + ", ".join(f"{v} {k}" for k, v in sorted(lost.items())))
    return level, "; ".join(notes) if notes else "ok"


__all__ = ["DROP_WARN_FRACTION", "ERROR", "LOSS_WARN_FRACTION", "OK", "WARN",
           "DiagnosticBounds", "RateDelayMonitor", "assess", "dropped_fraction"]
