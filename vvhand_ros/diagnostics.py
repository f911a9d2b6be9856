"""What /diagnostics says about the node, without ROS imports: rates, delay, drops, level.

``RateDelayMonitor`` records each input frame's arrival and each output's publication time
with its header stamp; over the last ``window_s`` it gives the measured input and output
rates [Hz] and the delay of the outputs from their header.stamp (the camera's capture
time, not our arrival time) [s]. :func:`assess` turns that, the expected rate and the
declared bounds into a level (OK / WARN / ERROR, diagnostic_msgs' 0 / 1 / 2) and a message.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

OK, WARN, ERROR = 0, 1, 2


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
        self._inputs: deque[float] = deque()
        self._outputs: deque[tuple[float, float]] = deque()  # (published at, delay)
        self._start: float | None = None
        self._lock = threading.Lock()

    def _trim(self, now_s: float) -> None:
        for q, key in ((self._inputs, lambda x: x), (self._outputs, lambda x: x[0])):
            while q and key(q[0]) < now_s - self.window_s:
                q.popleft()

    def input(self, now_s: float) -> None:
        """A depth frame arrived at ``now_s``."""
        with self._lock:
            self._start = now_s if self._start is None else self._start
            self._inputs.append(now_s)
            self._trim(now_s)

    def output(self, now_s: float, stamp_s: float) -> None:
        """A result for the frame stamped ``stamp_s`` was published at ``now_s``."""
        with self._lock:
            self._start = now_s if self._start is None else self._start
            self._outputs.append((now_s, now_s - stamp_s))
            self._trim(now_s)

    def summary(self, now_s: float) -> dict[str, float]:
        """input_rate_hz, output_rate_hz, delay_p50_s, delay_max_s (NaN without outputs)."""
        with self._lock:
            self._trim(now_s)
            n_in, n_out = len(self._inputs), len(self._outputs)
            delays = np.array([d for _, d in self._outputs], dtype=np.float64)
            start = self._start
        span = self.window_s if start is None else min(self.window_s, max(now_s - start, 1e-3))
        return {
            "input_rate_hz": n_in / span,
            "output_rate_hz": n_out / span,
            "delay_p50_s": float(np.median(delays)) if delays.size else float("nan"),
            "delay_max_s": float(delays.max()) if delays.size else float("nan"),
        }


def assess(summary: dict[str, float], bounds: DiagnosticBounds,
           new_problems: dict[str, int]) -> tuple[int, str]:
    """(level, message) from a summary, the bounds and the drops counted since last time.

    new_problems: reason -> frames lost to it since the previous report (rejected, failed,
    unpaired, tf_unavailable); any of them makes the level at least WARN.
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
    lost = {k: v for k, v in new_problems.items() if v > 0}
    if lost:
        level = max(level, WARN)
        notes.append("dropped " + ", ".join(f"{v} {k}" for k, v in sorted(lost.items())))
    return level, "; ".join(notes) if notes else "ok"


__all__ = ["ERROR", "OK", "WARN", "DiagnosticBounds", "RateDelayMonitor", "assess"]
