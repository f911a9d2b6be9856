"""Picture grid of synthetic samples: depth with the projected ground-truth skeleton.

    python -m vvhand_core.data.synthetic.preview --out docs/synthetic_samples.png

Each panel shows the region around the hand of one frame (depth colour-mapped, near =
bright), the skeleton's bones in the joint colours, and joints hidden by other parts of
the hand as hollow markers.
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


def draw_frame(ax, frame: DepthFrame, margin_px: int = 40) -> None:
    """Draw one frame (hand region, depth, skeleton) into a matplotlib Axes."""
    depth = frame.depth_mm.astype(np.float32)
    uv = project_np(frame.joints_mm, frame.intrinsics)
    h, w = depth.shape
    u0 = int(max(0, np.floor(uv[:, 0].min()) - margin_px))
    u1 = int(min(w, np.ceil(uv[:, 0].max()) + margin_px))
    v0 = int(max(0, np.floor(uv[:, 1].min()) - margin_px))
    v1 = int(min(h, np.ceil(uv[:, 1].max()) + margin_px))
    crop = depth[v0:v1, u0:u1]
    z = frame.joints_mm[:, 2]
    lo, hi = float(z.min()) - 60.0, float(z.max()) + 150.0
    shown = np.where(crop > 0, np.clip((hi - crop) / (hi - lo), 0.0, 1.0), np.nan)
    ax.imshow(
        shown, cmap="magma", vmin=0.0, vmax=1.0, extent=(u0 - 0.5, u1 - 0.5, v1 - 0.5, v0 - 0.5)
    )
    ax.set_facecolor("black")
    skel = frame.skeleton
    for p, c in skel.bones():
        ax.plot(uv[[p, c], 0], uv[[p, c], 1], color=skel.colors[c], linewidth=1.6)
    visible = frame.meta.get("visible", [True] * skel.num_joints)
    for j in range(skel.num_joints):
        face = skel.colors[j] if visible[j] else "none"
        ax.plot(uv[j, 0], uv[j, 1], "o", markersize=3.5, markerfacecolor=face,
                markeredgecolor=skel.colors[j], markeredgewidth=1.0)  # fmt: skip
    ax.set_xlim(u0 - 0.5, u1 - 0.5)
    ax.set_ylim(v1 - 0.5, v0 - 0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"#{frame.meta.get('frame_id', '')}  z={np.mean(z):.0f} mm", fontsize=8)


def save_grid(frames: Sequence[DepthFrame], path: str | Path, cols: int = 4) -> Path:
    """Write frames as a grid of panels (matplotlib Agg) to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = (len(frames) + cols - 1) // cols
    fig = Figure(figsize=(3.0 * cols, 3.0 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols)).reshape(-1)
    for ax, frame in zip(axes, frames):
        draw_frame(ax, frame)
    for ax in axes[len(frames) :]:
        ax.axis("off")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def main(argv: list[str] | None = None) -> int:
    """Render ``--count`` frames of seed ``--seed`` into a picture grid."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/synthetic_samples.png", help="PNG to write")
    parser.add_argument("--count", type=int, default=16, help="number of frames")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed")
    args = parser.parse_args(argv)
    gen = SyntheticHandGenerator(SynthConfig(seed=args.seed))
    t0 = time.perf_counter()
    frames = [gen.frame(i) for i in range(args.count)]
    per_frame = (time.perf_counter() - t0) / max(args.count, 1)
    path = save_grid(frames, args.out)
    print(f"wrote {path} ({args.count} frames, {1000 * per_frame:.0f} ms/frame)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
