"""Pictures of the fit: the fitted hand model rendered and outlined over the observed depth.

:func:`fitted_geometry` places the generator's hand model (``pose_hand``) with a fit's
angles, side, scale and placement (the convention of :mod:`.hand_np`:
p_cam = R (s (m * p_hand - PIVOT_MM)) + t), :func:`model_depth` ray-casts it into a depth
image of the camera, and :func:`write_fit_sheet` draws one row per frame: the depth with
the network's skeleton, the depth with the fitted model's outline and skeleton, and the
fitted model's own depth render (ground truth as thin dashes where known).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_core.contact_sheet import Panel, draw_panel, save_sheet
from vvhand_core.data.synthetic.hand_model import (
    HandGeometry,
    HandShape,
    pose_hand,
    with_finger_lengths,
)
from vvhand_core.data.synthetic.raycast import splat_geometry
from vvhand_core.fit.fit import FitConfig, FitResult
from vvhand_core.fit.tables import PIVOT_MM
from vvhand_core.skeletons import HANDS2019_21


def fitted_geometry(fit: FitResult, config: FitConfig | None = None) -> HandGeometry:
    """The fitted hand's primitives in the camera frame (mm), as the fit modelled them.

    The fit's hand: ``config.hand_shape`` (None: the mean hand) with the fit's finger
    lengths and a forearm of ``config.forearm_mm``; mirrored for a left hand; scaled and
    placed by the fit.
    """
    cfg = config or FitConfig()
    shape = replace(with_finger_lengths(cfg.hand_shape or HandShape(), fit.finger_lengths),
                    forearm_length=cfg.forearm_mm)
    local = pose_hand(np.asarray(fit.angles_deg, np.float64), shape)
    if fit.side == "left":
        local = local.mirrored()
    local = local.transformed(np.eye(3), -np.asarray(PIVOT_MM, np.float64)).scaled(fit.scale)
    return local.transformed(np.asarray(fit.rotation), np.asarray(fit.translation_mm))


def model_depth(fit: FitResult, intrinsics: Intrinsics, config: FitConfig | None = None
                ) -> np.ndarray:
    """Depth image (H, W) mm of the fitted model alone (0 where it is not seen)."""
    depth = np.full((intrinsics.height, intrinsics.width), np.inf)
    labels = np.zeros(depth.shape, np.int32)
    splat_geometry(fitted_geometry(fit, config), intrinsics, depth, labels)
    depth[~np.isfinite(depth)] = 0.0
    return depth


@dataclass
class FitFrame:
    """One frame of a fit sheet: the depth, the network's joints, the fit, the ground truth."""

    depth_mm: np.ndarray
    intrinsics: Intrinsics
    network_mm: np.ndarray
    fit: FitResult
    gt_mm: np.ndarray | None = None
    label: str = ""


def write_fit_sheet(frames: list[FitFrame], path: str | Path, title: str = "",
                    config: FitConfig | None = None) -> Path:
    """One row per frame: network skeleton | fitted outline + skeleton | model render."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not frames:
        raise ValueError("a fit sheet needs at least one frame")
    fig, axes = plt.subplots(len(frames), 3, figsize=(7.0, 2.5 * len(frames)), squeeze=False)
    for row, f in zip(axes, frames):
        rendered = model_depth(f.fit, f.intrinsics, config)
        kept = " (network kept)" if f.fit.fallback else ""
        panels = (
            Panel(f.depth_mm, f.intrinsics, f.network_mm, f.gt_mm, f"{f.label} network"),
            Panel(f.depth_mm, f.intrinsics, f.fit.joints_mm, f.gt_mm,
                  f"fit{kept}, residual {f.fit.residual_mm:.1f} mm"),
            Panel(rendered, f.intrinsics, f.fit.joints_mm, f.gt_mm, "fitted model"),
        )
        for ax, panel in zip(row, panels):
            draw_panel(ax, panel, HANDS2019_21)
        # the fitted model's silhouette over the observed depth (middle panel)
        mask = (rendered > 0).astype(np.float64)
        if mask.any():
            xlim, ylim = row[1].get_xlim(), row[1].get_ylim()
            h, w = mask.shape
            row[1].contour(np.arange(w) + 0.5, np.arange(h) + 0.5, mask, levels=[0.5],
                           colors="tab:orange", linewidths=1.0)
            row[1].set_xlim(*xlim)
            row[1].set_ylim(*ylim)
    return save_sheet(fig, path, title)
