"""Picture grid of synthetic samples: depth with the projected ground-truth skeletons.

    python -m vvhand_core.data.synthetic.preview --out docs/synthetic_samples.png

The first rows show whole scene-version-3 frames (hands that hold and touch things, seen
from a third-person, egocentric or overhead camera: placement, grasp and object in each
title, every labelled hand drawn), then the region around the hand of some of them, then
whole scene-version-2 frames (a person showing a hand: side, sensor, camera and the parts
drawn in each title), then a row of version-1 frames for contrast. Depth is
colour-mapped (near = bright, black = no return), the skeleton's bones are drawn in the
joint colours, and joints hidden by other parts of the hand are hollow markers.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vvhand_core.camera import project_np
from vvhand_core.data.base import DepthFrame
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator


def draw_frame(ax, frame: DepthFrame, margin_px: int | None = 40) -> None:
    """Draw one frame (depth, skeleton) into a matplotlib Axes.

    ``margin_px``: show the hand's region with this margin; None: the whole frame, with
    the colour range spanning the scene.
    """
    depth = frame.depth_mm.astype(np.float32)
    hands = frame.meta.get("hands")
    if hands is None:
        hands = [{"joints_mm": frame.joints_mm, "visibility": [
            "visible" if v else "self" for v in frame.meta.get("visible", [True] * len(
                frame.joints_mm))]}]
    uv = project_np(frame.joints_mm, frame.intrinsics)
    h, w = depth.shape
    z = frame.joints_mm[:, 2]
    if margin_px is None:
        u0, u1, v0, v1 = 0, w, 0, h
        valid = depth[depth > 0]
        lo = float(z.min()) - 60.0
        hi = max(float(np.percentile(valid, 98)) if valid.size else 0.0, lo + 300.0)
    else:
        u0 = int(max(0, np.floor(uv[:, 0].min()) - margin_px))
        u1 = int(min(w, np.ceil(uv[:, 0].max()) + margin_px))
        v0 = int(max(0, np.floor(uv[:, 1].min()) - margin_px))
        v1 = int(min(h, np.ceil(uv[:, 1].max()) + margin_px))
        lo, hi = float(z.min()) - 60.0, float(z.max()) + 150.0
    crop = depth[v0:v1, u0:u1]
    shown = np.where(crop > 0, np.clip((hi - crop) / (hi - lo), 0.0, 1.0), np.nan)
    ax.imshow(
        shown, cmap="magma", vmin=0.0, vmax=1.0, extent=(u0 - 0.5, u1 - 0.5, v1 - 0.5, v0 - 0.5)
    )
    ax.set_facecolor("black")
    skel = frame.skeleton
    for hand in hands:
        huv = project_np(np.asarray(hand["joints_mm"], dtype=np.float64), frame.intrinsics)
        for p, c in skel.bones():
            ax.plot(huv[[p, c], 0], huv[[p, c], 1], color=skel.colors[c], linewidth=1.6)
        for j, code in enumerate(hand["visibility"]):
            face = skel.colors[j] if code == "visible" else "none"
            ax.plot(huv[j, 0], huv[j, 1], "s" if code == "object" else "o", markersize=3.5,
                    markerfacecolor=face, markeredgecolor=skel.colors[j],
                    markeredgewidth=1.0)  # fmt: skip
    ax.set_xlim(u0 - 0.5, u1 - 0.5)
    ax.set_ylim(v1 - 0.5, v0 - 0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    title = f"#{frame.meta.get('frame_id', '')}  z={np.mean(z):.0f} mm"
    if frame.meta.get("scene_version") == 2:
        m = frame.meta
        sensor = {"structured_light": "SL", "tof": "ToF"}.get(m["sensor"], m["sensor"])
        title = (f"v2 #{m['frame_id']} {m['side']} {sensor} {w}x{h} f={frame.intrinsics.fx:.0f}"
                 f"\n{', '.join(m['parts'])}  z={np.mean(z):.0f}")  # fmt: skip
        if margin_px is not None:
            title = f"v2 #{m['frame_id']} hand  z={np.mean(z):.0f} mm"
    elif frame.meta.get("scene_version") == 3:
        m = frame.meta
        obj = f" {m['object']}" if m["object"] else ""
        title = (f"v3 #{m['frame_id']} {m['placement']} {w}x{h}\n{m['side']} {m['grasp']}{obj}"
                 f", {m['num_hands']} hand{'s' if m['num_hands'] != 1 else ''}"
                 f"  z={np.mean(z):.0f}")  # fmt: skip
        if margin_px is not None:
            title = f"v3 #{m['frame_id']} {m['grasp']}{obj}  z={np.mean(z):.0f} mm"
    else:
        title = "v1 " + title
    ax.set_title(title, fontsize=7)


def save_grid(
    frames: Sequence[DepthFrame],
    path: str | Path,
    cols: int = 4,
    margins: Sequence[int | None] | None = None,
) -> Path:
    """Write frames as a grid of panels (matplotlib Agg) to ``path``.

    ``margins``: per frame, the hand-region margin (px) or None for the whole frame
    (default: hand regions with 40 px margins).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = (len(frames) + cols - 1) // cols
    fig = Figure(figsize=(3.0 * cols, 3.0 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    margins = list(margins) if margins is not None else [40] * len(frames)
    for ax, frame, margin in zip(axes, frames, margins):
        draw_frame(ax, frame, margin)
    for ax in axes[len(frames) :]:
        ax.axis("off")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def main(argv: list[str] | None = None) -> int:
    """Render v3, v2 (whole frames, then hand regions) and v1 frames into a grid."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/synthetic_samples.png", help="PNG to write")
    parser.add_argument("--v3-count", type=int, default=12, help="v3 frames shown whole")
    parser.add_argument("--v3-crops", type=int, default=4, help="of those, hand regions shown")
    parser.add_argument("--v3-seed", type=int, default=9, help="v3 seed")
    parser.add_argument("--count", type=int, default=4, help="v2 frames shown whole")
    parser.add_argument("--crops", type=int, default=0, help="of those, hand regions shown")
    parser.add_argument("--v1-count", type=int, default=4, help="v1 frames (hand regions)")
    parser.add_argument("--seed", type=int, default=5, help="v2 seed (5: the new-scenes split)")
    parser.add_argument("--v1-seed", type=int, default=0, help="v1 seed")
    args = parser.parse_args(argv)
    gen3 = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=args.v3_seed))
    t0 = time.perf_counter()
    new = [gen3.frame(i) for i in range(args.v3_count)]
    per_frame = (time.perf_counter() - t0) / max(args.v3_count, 1)
    gen = SyntheticHandGenerator(SynthConfig(scene_version=2, seed=args.seed))
    frames = [gen.frame(i) for i in range(args.count)]
    v1 = SyntheticHandGenerator(SynthConfig(seed=args.v1_seed))
    old = [v1.frame(i) for i in range(args.v1_count)]
    shown = new + new[: args.v3_crops] + frames + frames[: args.crops] + old
    margins = ([None] * len(new) + [40] * args.v3_crops + [None] * len(frames)
               + [40] * (args.crops + len(old)))  # fmt: skip
    path = save_grid(shown, args.out, margins=margins)
    print(f"wrote {path} ({args.v3_count} v3 frames, {1000 * per_frame:.0f} ms/frame)",
          file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
