"""Pair each depth image with the camera_info of its stamp; no ROS imports.

message_filters (ExactTime / ApproximateTime) is not installable from PyPI, so the node and
`vvhand replay` share this small pairer instead. Stamps are integer nanoseconds.

- ``slop_ns == 0``: exact pairing; drivers stamp an image and its camera_info alike.
- ``slop_ns > 0``: an image pairs with the nearest camera_info within the slop (keep it
  below half the frame period, so that at most one camera_info qualifies).

Arrival order does not matter: an image waits for its camera_info (and a camera_info for
its image) in queues of ``queue_size``. An image is given up on, as :class:`Unpaired` with a
reason, once a newer camera_info shows that its own will not come (each topic arrives in
stamp order), when its queue overflows, or at ``flush`` (end of a bag).

Time that goes backwards (a bag that loops, a camera or clock reset) starts a new timeline:
a message stamped more than ``slop_ns`` before the newest one of its own topic drops every
camera_info and waiting image stamped after it (the waiting images as :class:`Unpaired`,
kind TIME_JUMP), so pairing resumes at once instead of waiting for the stamps to pass the
old ones. A single stray stamp far in the future is dropped the same way by the next
message of its topic.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, insort
from dataclasses import dataclass
from typing import Any

NO_INFO = "no_info"                 # no camera_info has been seen at all
NO_MATCH = "no_matching_info"       # camera_info exists, none with this image's stamp
TIME_JUMP = "time_went_backwards"   # waiting image of a timeline that stamps left behind


@dataclass
class Pair:
    """A depth image and the camera_info of the same (or nearest, within slop) stamp."""

    stamp_ns: int
    image: Any
    info: Any


@dataclass
class Unpaired:
    """A depth image given up on: ``kind`` is NO_INFO, NO_MATCH or TIME_JUMP, as below."""

    stamp_ns: int
    image: Any
    kind: str
    reason: str


def _later(stamp: int, newest: int | None) -> int:
    return stamp if newest is None else max(stamp, newest)


def _fmt(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


class StampPairer:
    """Exact or approximate (``slop_ns``) pairing of images with camera_info by stamp."""

    def __init__(self, slop_ns: int = 0, queue_size: int = 10) -> None:
        if slop_ns < 0 or queue_size < 1:
            raise ValueError(f"need slop_ns >= 0 and queue_size >= 1, got {slop_ns}, "
                             f"{queue_size}")
        self.slop_ns = int(slop_ns)
        self.queue_size = int(queue_size)
        self._infos: list[tuple[int, int, Any]] = []   # (stamp, seq, info), sorted
        self._images: list[tuple[int, int, Any]] = []  # waiting images, sorted
        self._seq = 0
        self._newest_image: int | None = None   # newest stamp of each topic's timeline
        self._newest_info: int | None = None
        self._lock = threading.Lock()

    def _backwards(self, stamp: int, newest: int | None) -> bool:
        return newest is not None and stamp < newest - self.slop_ns

    def _restart(self, stamp: int, topic: str, newest: int) -> list[Unpaired]:
        """Time went backwards on ``topic``: drop what is stamped after ``stamp`` (+ slop)."""
        limit = stamp + self.slop_ns
        self._infos = [e for e in self._infos if e[0] <= limit]
        out = [Unpaired(s, img, TIME_JUMP,
                        f"time went backwards on the {topic} ({_fmt(newest)} -> {_fmt(stamp)}): "
                        f"the depth image {_fmt(s)} belongs to the old timeline")
               for s, _, img in self._images if s > limit]
        self._images = [e for e in self._images if e[0] <= limit]
        # the other topic's newest stamp is of the old timeline too
        self._newest_image = self._newest_info = None
        return out

    def _nearest_info(self, stamp: int):
        stamps = [s for s, _, _ in self._infos]
        i = bisect_left(stamps, stamp)
        best = None
        for j in (i - 1, i):
            if 0 <= j < len(stamps) and abs(stamps[j] - stamp) <= self.slop_ns:
                if best is None or abs(stamps[j] - stamp) < abs(stamps[best] - stamp):
                    best = j
        return None if best is None else self._infos[best][2]

    def _gone(self, stamp: int, image) -> Unpaired:
        newest = self._infos[-1][0]
        what = "the same stamp" if self.slop_ns == 0 else f"a stamp within {self.slop_ns} ns"
        return Unpaired(stamp, image, NO_MATCH,
                        f"no camera_info with {what} as the depth image ({_fmt(stamp)}); "
                        f"newest camera_info is {_fmt(newest)}")

    def add_image(self, stamp_ns: int, image) -> list[Pair | Unpaired]:
        """Offer a depth image; returns what got paired or given up on (maybe nothing)."""
        with self._lock:
            self._seq += 1
            out: list[Pair | Unpaired] = []
            if self._backwards(stamp_ns, self._newest_image):
                out += self._restart(stamp_ns, "depth images", self._newest_image)
            self._newest_image = _later(stamp_ns, self._newest_image)
            info = self._nearest_info(stamp_ns)
            if info is not None:
                return out + [Pair(stamp_ns, image, info)]
            if self._infos and self._infos[-1][0] > stamp_ns + self.slop_ns:
                return out + [self._gone(stamp_ns, image)]
            insort(self._images, (stamp_ns, self._seq, image), key=lambda e: (e[0], e[1]))
            while len(self._images) > self.queue_size:
                s, _, img = self._images.pop(0)
                out.append(self._overflow(s, img))
            return out

    def _overflow(self, stamp: int, image) -> Unpaired:
        if not self._infos:
            return Unpaired(stamp, image, NO_INFO,
                            f"no camera_info received yet ({self.queue_size} images waiting)")
        return Unpaired(stamp, image, NO_MATCH,
                        f"no camera_info for the depth image {_fmt(stamp)} among the last "
                        f"{self.queue_size} images")

    def add_info(self, stamp_ns: int, info) -> list[Pair | Unpaired]:
        """Offer a camera_info; returns the waiting images it pairs or rules out."""
        with self._lock:
            self._seq += 1
            out: list[Pair | Unpaired] = []
            if self._backwards(stamp_ns, self._newest_info):
                out += self._restart(stamp_ns, "camera_info", self._newest_info)
            self._newest_info = _later(stamp_ns, self._newest_info)
            insort(self._infos, (stamp_ns, self._seq, info), key=lambda e: (e[0], e[1]))
            if len(self._infos) > self.queue_size:
                self._infos.pop(0)
            waiting: list[tuple[int, int, Any]] = []
            for entry in self._images:
                stamp, _, image = entry
                match = self._nearest_info(stamp)
                if match is not None:
                    out.append(Pair(stamp, image, match))
                elif stamp + self.slop_ns < stamp_ns:
                    out.append(self._gone(stamp, image))
                else:
                    waiting.append(entry)
            self._images = waiting
            return out

    def flush(self) -> list[Unpaired]:
        """Give up on every waiting image (end of a bag)."""
        with self._lock:
            out = []
            for stamp, _, image in self._images:
                out.append(self._gone(stamp, image) if self._infos else Unpaired(
                    stamp, image, NO_INFO, "no camera_info at all"))
            self._images = []
            return out

    def has_info(self) -> bool:
        """Whether any camera_info has been offered."""
        return bool(self._infos)

    def waiting(self) -> int:
        """Images waiting for their camera_info."""
        return len(self._images)
