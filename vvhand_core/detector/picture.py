"""A picture of what the localiser finds: whole depth frames with their hands and answers.

One panel per frame: the depth image (grey, near = dark, 0.2-1.6 m), each labelled hand's
centre as a circle (green: found within 30 mm; red: missed, with the first letters of its
cause from :mod:`vvhand_core.detector.misses`), and each of ``locate_all``'s answers
(tracking off) as a cyan cross. Rows: frames whose hands are all found, frames with a
missed hand, hand-free scenes (an answer there is a phantom). Used by `vvhand bench
localiser --sheet` on the v3 split, so that the misses tables can be looked at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vvhand_core.camera import project_np
from vvhand_core.data.base import DepthFrame
from vvhand_core.detector.evaluate_hands import frame_hands
from vvhand_core.detector.misses import HandOutcome, diagnose_frame, untracked_answer

ROWS = ("all hands found", "a hand missed", "hand-free scene")
DEPTH_RANGE_MM = (200.0, 1600.0)


@dataclass
class SheetFrame:
    """One frame to draw: its labelled hands' outcomes and the answers (centres, mm)."""

    frame: DepthFrame
    outcomes: list[HandOutcome]
    answers_mm: list[np.ndarray] = field(default_factory=list)

    @property
    def row(self) -> str:
        """The :data:`ROWS` entry the frame belongs to."""
        labelled = [o for o in self.outcomes if o.labelled]
        if not labelled:
            return ROWS[2]
        return ROWS[0] if all(o.found for o in labelled) else ROWS[1]


def sheet_frame(det, frame: DepthFrame) -> SheetFrame:
    """``frame`` diagnosed by detector ``det`` (a DetectorLocaliser; tracking not used)."""
    raw, _, answer = untracked_answer(det, frame)
    return SheetFrame(frame, diagnose_frame(det, frame), [raw[i][1] for i in answer])


class SheetCollector:
    """Keeps the first ``per_row`` frames of each :data:`ROWS` entry it is shown."""

    def __init__(self, det, per_row: int = 4) -> None:
        """``det``: the DetectorLocaliser whose answers are drawn."""
        self.det, self.per_row = det, per_row
        self.rows: dict[str, list[SheetFrame]] = {r: [] for r in ROWS}

    def add(self, frame: DepthFrame) -> None:
        """Diagnose ``frame`` and keep it if its row is not full."""
        if all(len(items) >= self.per_row for items in self.rows.values()):
            return
        got = sheet_frame(self.det, frame)
        if len(self.rows[got.row]) < self.per_row:
            self.rows[got.row].append(got)

    def watch(self, frames):
        """``frames``, each added before it is yielded."""
        for f in frames:
            self.add(f)
            yield f


def _short(cause: str | None) -> str:
    return "" if cause is None else cause.replace("dropped: ", "")[:14]


def draw_frame(ax, item: SheetFrame) -> None:
    """One panel (module doc) into a matplotlib axis."""
    f = item.frame
    depth = np.asarray(f.depth_mm, np.float64)
    shown = np.where(depth > 0, np.clip(depth, *DEPTH_RANGE_MM), np.nan)
    ax.imshow(shown, cmap="gray", vmin=DEPTH_RANGE_MM[0], vmax=DEPTH_RANGE_MM[1],
              interpolation="nearest")
    labelled, _ = frame_hands(f)
    for hand, o in zip(labelled, item.outcomes):
        u, v = project_np(np.asarray(hand.centre_mm, np.float64)[None], f.intrinsics)[0]
        colour = "lime" if o.found else "red"
        ax.scatter([u], [v], s=160, facecolors="none", edgecolors=colour, linewidths=1.8)
        if not o.found:
            ax.text(u, v + 28, _short(o.cause), color="red", fontsize=6, ha="center")
    for c in item.answers_mm:
        u, v = project_np(np.asarray(c, np.float64)[None], f.intrinsics)[0]
        ax.scatter([u], [v], marker="+", s=90, c="cyan", linewidths=1.6)
    grasps = ", ".join(o.grasp for o in item.outcomes if o.labelled and o.grasp)
    ax.set_title(f"{(f.meta or {}).get('placement', '')} {grasps}".strip(), fontsize=7)
    ax.set_xlim(0, depth.shape[1])
    ax.set_ylim(depth.shape[0], 0)
    ax.set_xticks([])
    ax.set_yticks([])


def write_localiser_sheet(rows: dict[str, list[SheetFrame]], path: str | Path,
                          title: str = "") -> Path:
    """The sheet of :class:`SheetCollector` rows (empty rows left out); ValueError: none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vvhand_core.contact_sheet import save_sheet

    kept = [(name, items) for name, items in rows.items() if items]
    if not kept:
        raise ValueError("a localiser sheet needs at least one frame")
    per_row = max(len(items) for _, items in kept)
    fig, axes = plt.subplots(len(kept), per_row, figsize=(2.6 * per_row, 2.3 * len(kept)),
                             squeeze=False)
    for r, (name, items) in enumerate(kept):
        for c in range(per_row):
            ax = axes[r][c]
            if c >= len(items):
                ax.axis("off")
                continue
            draw_frame(ax, items[c])
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    return save_sheet(fig, path, title)
