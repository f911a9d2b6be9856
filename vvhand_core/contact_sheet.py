"""A contact sheet: predicted skeletons over the depth crops of the worst, median and best frames.

One glance says whether a model's skeletons look like hands: each panel is the depth image
around the hand (a square of ``window_mm`` at the hand's depth, depth clipped to
+-``depth_range_mm`` around it), the predicted skeleton drawn bone by bone in the
skeleton's colours and, when known, the ground truth as thin black dashes; the title holds
the frame's label and its mean joint error. Rows: the worst, the median and the best frames
by error (or, without ground truth, the frames in order). Used by `vvhand replay`, the demo
and `vvhand bench model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vvhand_core.camera import Intrinsics, project_np
from vvhand_core.skeletons import Skeleton


@dataclass
class Panel:
    """One frame to draw. Joints (J, 3) in mm in the camera frame of ``depth_mm``."""

    depth_mm: np.ndarray
    intrinsics: Intrinsics
    pred_mm: np.ndarray
    gt_mm: np.ndarray | None = None
    label: str = ""

    @property
    def error_mm(self) -> float:
        """Mean 3D joint error (NaN without ground truth)."""
        if self.gt_mm is None:
            return float("nan")
        return float(np.linalg.norm(self.pred_mm - self.gt_mm, axis=-1).mean())


def pick_worst_median_best(errors_mm: np.ndarray, per_row: int) -> list[list[int]]:
    """Indices of the ``per_row`` worst, median and best finite errors (rows in that order).

    Fewer frames than 3 * per_row: each frame appears once, worst first.
    """
    e = np.asarray(errors_mm, dtype=np.float64)
    order = [int(i) for i in np.argsort(-e) if np.isfinite(e[i])]
    if len(order) <= 3 * per_row:
        return [order[k:k + per_row] for k in range(0, len(order), per_row)]
    mid = len(order) // 2 - per_row // 2
    return [order[:per_row], order[mid:mid + per_row], order[-per_row:]]


def _crop_box(panel: Panel, window_mm: float) -> tuple[np.ndarray, float, float]:
    """(centre (3,) mm, u0, v0 of the square) and the square's side in pixels."""
    ref = panel.gt_mm if panel.gt_mm is not None else panel.pred_mm
    centre = np.asarray(ref, dtype=np.float64).mean(axis=0)
    side_px = panel.intrinsics.fx * window_mm / max(centre[2], 1.0)
    uv = project_np(centre[None], panel.intrinsics)[0]
    return centre, uv, side_px


def draw_panel(ax, panel: Panel, skeleton: Skeleton, window_mm: float = 300.0,
               depth_range_mm: float = 200.0) -> None:
    """Draw one panel into a matplotlib axis."""
    centre, uv, side = _crop_box(panel, window_mm)
    h, w = panel.depth_mm.shape
    u0, v0 = int(round(uv[0] - side / 2)), int(round(uv[1] - side / 2))
    u1, v1 = u0 + int(round(side)), v0 + int(round(side))
    crop = np.full((max(v1 - v0, 1), max(u1 - u0, 1)), np.nan)
    su0, sv0, su1, sv1 = max(u0, 0), max(v0, 0), min(u1, w), min(v1, h)
    if su1 > su0 and sv1 > sv0:
        patch = panel.depth_mm[sv0:sv1, su0:su1].astype(np.float64)
        patch[(patch <= 0) | ~np.isfinite(patch)] = np.nan
        crop[sv0 - v0:sv1 - v0, su0 - u0:su1 - u0] = patch
    z = centre[2]
    ax.imshow(np.clip(crop, z - depth_range_mm, z + depth_range_mm), cmap="gray_r",
              vmin=z - depth_range_mm, vmax=z + depth_range_mm,
              extent=(u0, u1, v1, v0), interpolation="nearest")
    for joints, gt in ((panel.gt_mm, True), (panel.pred_mm, False)):
        if joints is None or not np.isfinite(joints).all():
            continue
        p = project_np(np.asarray(joints, dtype=np.float64), panel.intrinsics)
        for j, parent in enumerate(skeleton.parents):
            if parent < 0:
                continue
            xs, ys = (p[parent, 0], p[j, 0]), (p[parent, 1], p[j, 1])
            if gt:
                ax.plot(xs, ys, color="black", lw=0.8, ls="--", alpha=0.8)
            else:
                ax.plot(xs, ys, color=skeleton.colors[j], lw=2.0)
        if not gt:
            ax.scatter(p[:, 0], p[:, 1], s=6, c=[skeleton.colors[j] for j in range(len(p))])
    ax.set_xlim(u0, u1)
    ax.set_ylim(v1, v0)
    ax.set_xticks([])
    ax.set_yticks([])
    err = panel.error_mm
    ax.set_title(f"{panel.label}" + (f"\n{err:.1f} mm" if np.isfinite(err) else ""),
                 fontsize=7)


def write_contact_sheet(panels: list[Panel], skeleton: Skeleton, path: str | Path,
                        title: str = "", per_row: int = 4) -> Path:
    """Worst / median / best rows of ``panels`` by error (in order without ground truth)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not panels:
        raise ValueError("a contact sheet needs at least one frame")
    errors = np.array([p.error_mm for p in panels])
    if np.isfinite(errors).any():
        rows = pick_worst_median_best(errors, per_row)
        names = ["worst", "median", "best"] if len(rows) == 3 else [""] * len(rows)
    else:
        idx = list(range(min(len(panels), 3 * per_row)))
        rows = [idx[k:k + per_row] for k in range(0, len(idx), per_row)]
        names = [""] * len(rows)
    fig, axes = plt.subplots(len(rows), per_row, figsize=(2.2 * per_row, 2.5 * len(rows)),
                             squeeze=False)
    for r, (row, name) in enumerate(zip(rows, names)):
        for c in range(per_row):
            ax = axes[r][c]
            if c >= len(row):
                ax.axis("off")
                continue
            draw_panel(ax, panels[row[c]], skeleton)
            if c == 0 and name:
                ax.set_ylabel(name)
    return save_sheet(fig, path, title)


def write_pair_sheet(pairs: list[tuple[Panel, Panel]], skeleton: Skeleton, path: str | Path,
                     title: str = "", pairs_per_row: int = 2) -> Path:
    """Panels side by side, two answers for one hand each (e.g. without / with an option).

    ``pairs``: (left, right) panels of the same frame and hand, in the order drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not pairs:
        raise ValueError("a pair sheet needs at least one pair")
    rows = -(-len(pairs) // pairs_per_row)
    cols = 2 * pairs_per_row
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.5 * rows), squeeze=False)
    for k in range(rows * pairs_per_row):
        r, c = divmod(k, pairs_per_row)
        for side in range(2):
            ax = axes[r][2 * c + side]
            if k < len(pairs):
                draw_panel(ax, pairs[k][side], skeleton)
            else:
                ax.axis("off")
    return save_sheet(fig, path, title)


def save_sheet(fig, path: str | Path, title: str = "") -> Path:
    """Title, lay out, write (100 dpi, parent folders made) and close a sheet's figure."""
    import matplotlib.pyplot as plt

    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
