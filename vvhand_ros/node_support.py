"""The node's plumbing without ROS imports: newest-frame mailbox, counters, throttled log."""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np


class LatestSlot:
    """A one-item mailbox: ``put`` replaces what was not taken yet (and says so)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item = None
        self._closed = False

    def put(self, item) -> bool:
        """Store ``item``; True when it replaced an item nobody took (a dropped frame)."""
        with self._cond:
            replaced = self._item is not None
            self._item = item
            self._cond.notify()
            return replaced

    def take(self, timeout_s: float):
        """The newest item, or None after ``timeout_s`` or once closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout_s)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake up and stop any waiting ``take``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


COUNTERS = ("frames_in", "paired", "processed", "published", "dropped", "unpaired", "no_hand",
            "rejected", "failed", "tf_unavailable")


MAX_REASONS = 32  # distinct reasons counted per problem; the rest are counted as "other"
OTHER_REASON = "other"
_PARENTHESISED = re.compile(r"\([^()]*\)")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
# a number standing alone or in a size like 640x480 (not the 16 of 16UC1), nan and inf
_NUMBER = re.compile(r"(?<![A-WYZa-wyz_\d.])[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
                     r"(?![A-WYZa-wyz_\d.])|\b(?:nan|inf)\b", re.IGNORECASE)


def reason_label(text: str, max_len: int = 80) -> str:
    """The stable part of an error's text, to count rejections by: what, not the values.

    Drops parenthesised details and quoted names, keeps the text before the first ``;``,
    ``:`` or ``,``, writes numbers as ``N``: ``unsupported depth encoding 'rgb8'; expected
    ...`` -> ``unsupported depth encoding``, ``depth image is 8x8 but camera_info describes
    4x4`` -> ``depth image is NxN but camera_info describes NxN``.
    """
    text = _PARENTHESISED.sub("", str(text))
    text = _QUOTED.sub("", text)
    text = re.split(r"[;:,]", text, maxsplit=1)[0]
    text = " ".join(_NUMBER.sub("N", text).split())
    return text[:max_len] or "unknown"


class ReasonCounter(Counter):
    """A Counter of reasons that stays small.

    Past ``max_reasons`` distinct reasons, new ones are counted as ``other``.
    """

    def __init__(self, max_reasons: int = MAX_REASONS) -> None:
        super().__init__()
        self.max_reasons = max_reasons

    def add(self, reason: str) -> None:
        """One more of ``reason`` (or of ``other`` once the table is full)."""
        if reason not in self and len(self) >= self.max_reasons:
            reason = OTHER_REASON
        self[reason] += 1


@dataclass
class NodeStats:
    """Counters reported in the log and on /diagnostics.

    ``unpaired`` depth frames found no camera_info of their stamp; ``unpaired_reasons``
    counts them by reason (vvhand_ros.pairing kinds), ``rejected_reasons`` the rejected ones
    (:func:`reason_label` of the error), ``failed_reasons`` the failed ones (exception type);
    both tables are bounded (MAX_REASONS, then ``other``). Frames lost, by reason: ``dropped``
    (superseded by a newer frame before the worker took it), ``unpaired``, ``rejected``
    (malformed input), ``failed`` (exception in the pipeline), ``tf_unavailable`` (no
    target_frame transform in time); ``no_hand`` frames are published with no hand.
    ``paired``: frames paired with their camera_info and handed to the worker's slot.
    """

    frames_in: int = 0
    paired: int = 0
    processed: int = 0
    published: int = 0
    dropped: int = 0
    unpaired: int = 0
    no_hand: int = 0
    rejected: int = 0
    failed: int = 0
    tf_unavailable: int = 0
    unpaired_reasons: Counter = field(default_factory=Counter)
    rejected_reasons: ReasonCounter = field(default_factory=ReasonCounter)
    failed_reasons: ReasonCounter = field(default_factory=ReasonCounter)
    latency_ms: deque = field(default_factory=lambda: deque(maxlen=300))

    def count_unpaired(self, kind: str) -> None:
        """One more unpaired frame of reason ``kind``."""
        self.unpaired += 1
        self.unpaired_reasons[kind] += 1

    def count_rejected(self, exc: BaseException) -> str:
        """One more frame rejected for ``exc`` (malformed input); returns its reason label."""
        reason = reason_label(str(exc))
        self.rejected += 1
        self.rejected_reasons.add(reason)
        return reason

    def count_failed(self, exc: BaseException) -> None:
        """One more frame failed with ``exc`` (an exception in the pipeline)."""
        self.failed += 1
        self.failed_reasons.add(type(exc).__name__)

    def as_dict(self) -> dict[str, float]:
        """Counters, reasons and latency percentiles (ms) over the recent frames.

        Reasons: ``unpaired.<kind>``, ``rejected.<reason>``, ``failed.<exception type>``.
        """
        lat = np.asarray(self.latency_ms, dtype=np.float64)
        out = {k: float(getattr(self, k)) for k in COUNTERS}
        for name in ("unpaired", "rejected", "failed"):
            reasons = getattr(self, f"{name}_reasons")
            out.update({f"{name}.{k}": float(v) for k, v in sorted(reasons.items())})
        out["latency_p50_ms"] = float(np.percentile(lat, 50)) if lat.size else float("nan")
        out["latency_p95_ms"] = float(np.percentile(lat, 95)) if lat.size else float("nan")
        return out


def problem_kind(exc: BaseException) -> str:
    """A throttling key for ``exc`` that no input can vary: its type and where it was raised.

    The text of an error holds the variable part (an encoding name, a size), so keying on
    it gives every distinct text its own line; the raise site (innermost traceback frame)
    is one per kind of problem. An explicit ``kind`` attribute wins when an error has one.
    """
    kind = getattr(exc, "kind", None)
    if isinstance(kind, str) and kind:
        return f"{type(exc).__name__}:{kind}"
    tb = exc.__traceback__
    if tb is None:
        return type(exc).__name__
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = os.path.basename(tb.tb_frame.f_code.co_filename)
    return f"{type(exc).__name__}@{where}:{tb.tb_lineno}"


class ThrottledReporter:
    """Log each kind of problem at most once per period, with how often it happened.

    At most ``max_kinds`` kinds are remembered (the least recently logged is forgotten
    first), so the table stays bounded whatever the input.
    """

    def __init__(self, logger, period_s: float = 5.0, max_kinds: int = 256) -> None:
        self._logger = logger
        self._period_s = period_s
        self._max_kinds = max_kinds
        self._last: OrderedDict[str, float] = OrderedDict()
        self._suppressed: dict[str, int] = {}

    def __len__(self) -> int:
        """Number of kinds remembered."""
        return len(self._last)

    def report(self, kind: str, text: str, level: str = "warning") -> None:
        """Log ``text`` unless ``kind`` was logged less than a period ago."""
        now = time.monotonic()
        if now - self._last.get(kind, -1e9) < self._period_s:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        n = self._suppressed.pop(kind, 0)
        suffix = f" (and {n} more like it in the last {self._period_s:.0f} s)" if n else ""
        self._last[kind] = now
        self._last.move_to_end(kind)
        while len(self._last) > self._max_kinds:
            old, _ = self._last.popitem(last=False)
            self._suppressed.pop(old, None)
        # rclpy binds one severity to each logging call site: one call per level
        if level == "error":
            self._logger.error(text + suffix)
        elif level == "info":
            self._logger.info(text + suffix)
        else:
            self._logger.warning(text + suffix)
