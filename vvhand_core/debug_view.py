"""A picture of one frame for people: each hand's depth crop with its skeleton drawn.

What ``~/debug_image`` of the node shows (rqt_image_view), and usable on its own:

    debug_view(depth_mm, intrinsics, hands, skeleton) -> (H, W, 3) uint8 RGB

``hands`` are :class:`DebugHand` (camera-frame millimetres, the convention of
vvhand_core.camera). Each hand gets one square panel of ``panel_px`` pixels: the depth inside
the hand's crop (the square that ``cube_mm`` spans at the centre's depth), near points
bright and far ones dark, pixels outside the cube's depth range dim, invalid depth black;
the skeleton is drawn in the skeleton's colours and the panel is labelled with the hand's
side and track. Panels sit side by side in the order given. Without a hand the whole
depth image is shown (its valid depth from near to far), scaled to ``panel_px`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from vvhand_core.camera import Intrinsics, project_np
from vvhand_core.skeletons import Skeleton

OUT_OF_CUBE_GREY = 40


@dataclass(frozen=True)
class DebugHand:
    """One hand to draw: joints (J, 3) and centre (3,) in camera mm, its crop's cube (mm)."""

    joints_mm: np.ndarray
    centre_mm: np.ndarray
    cube_mm: float
    label: str = ""


def _grey(depth_mm: np.ndarray, near_mm: float, far_mm: float) -> np.ndarray:
    """Depth (h, w) mm -> uint8 (h, w): near 255 .. far 55, outside the range dim, 0 invalid."""
    d = np.nan_to_num(np.asarray(depth_mm, np.float64), nan=0.0)
    span = max(far_mm - near_mm, 1e-6)
    grey = 255.0 - 200.0 * np.clip((d - near_mm) / span, 0.0, 1.0)
    grey = np.where((d >= near_mm) & (d <= far_mm), grey, OUT_OF_CUBE_GREY)
    return np.where(d > 0, grey, 0).astype(np.uint8)


def crop_box(centre_mm: np.ndarray, cube_mm: float, intrinsics: Intrinsics
             ) -> tuple[int, int, int]:
    """(u0, v0, side_px) of the square image crop the cube spans at the centre's depth."""
    c = np.asarray(centre_mm, np.float64)
    u, v = project_np(c, intrinsics)
    half = max(1, int(round(0.5 * cube_mm * max(intrinsics.fx, intrinsics.fy) / c[2])))
    return int(round(u)) - half, int(round(v)) - half, 2 * half


def _window(depth_mm: np.ndarray, u0: int, v0: int, size: int) -> np.ndarray:
    """depth_mm[v0:v0+size, u0:u0+size], zero where the window leaves the image."""
    h, w = depth_mm.shape
    out = np.zeros((size, size), np.float64)
    us, vs = max(u0, 0), max(v0, 0)
    ue, ve = min(u0 + size, w), min(v0 + size, h)
    if ue > us and ve > vs:
        out[vs - v0:ve - v0, us - u0:ue - u0] = depth_mm[vs:ve, us:ue]
    return out


def _draw_skeleton(draw: ImageDraw.ImageDraw, uv: np.ndarray, skeleton: Skeleton,
                   width: int) -> None:
    def rgb(j):
        return tuple(int(255 * c) for c in skeleton.colors[j])

    for j, p in enumerate(skeleton.parents):
        if p >= 0:
            draw.line([tuple(uv[p]), tuple(uv[j])], fill=rgb(j), width=width)
    r = max(1, width)
    for j, (u, v) in enumerate(uv):
        draw.ellipse([u - r, v - r, u + r, v + r], fill=rgb(j))


def hand_panel(depth_mm: np.ndarray, intrinsics: Intrinsics, hand: DebugHand,
               skeleton: Skeleton, panel_px: int = 192) -> np.ndarray:
    """One hand's panel, (panel_px, panel_px, 3) uint8 (see the module doc)."""
    u0, v0, size = crop_box(hand.centre_mm, hand.cube_mm, intrinsics)
    z = float(hand.centre_mm[2])
    grey = _grey(_window(np.asarray(depth_mm), u0, v0, size), z - hand.cube_mm / 2,
                 z + hand.cube_mm / 2)
    img = Image.fromarray(grey).resize((panel_px, panel_px), Image.NEAREST).convert("RGB")
    draw = ImageDraw.Draw(img)
    joints = np.asarray(hand.joints_mm, np.float64)
    if np.all(np.isfinite(joints)) and np.all(joints[:, 2] > 0):
        uv = (project_np(joints, intrinsics) - (u0, v0)) * (panel_px / size)
        _draw_skeleton(draw, uv, skeleton, width=max(1, panel_px // 96))
    if hand.label:
        draw.text((4, 2), hand.label, fill=(255, 255, 0))
    return np.asarray(img)


def debug_view(depth_mm: np.ndarray, intrinsics: Intrinsics, hands: list[DebugHand],
               skeleton: Skeleton, panel_px: int = 192) -> np.ndarray:
    """The frame's picture, (panel_px, W, 3) uint8 RGB (see the module doc).

    Raises ValueError unless depth_mm is (H, W) and panel_px >= 16.
    """
    depth = np.asarray(depth_mm)
    if depth.ndim != 2:
        raise ValueError(f"depth_mm must be (H, W), got shape {depth.shape}")
    if panel_px < 16:
        raise ValueError(f"panel_px must be >= 16, got {panel_px}")
    if hands:
        return np.concatenate([hand_panel(depth, intrinsics, h, skeleton, panel_px)
                               for h in hands], axis=1)
    d = np.nan_to_num(depth.astype(np.float64), nan=0.0)
    valid = d[d > 0]
    near, far = (float(valid.min()), float(valid.max())) if valid.size else (0.0, 1.0)
    h, w = depth.shape
    width = max(1, int(round(w * panel_px / h)))
    img = Image.fromarray(_grey(d, near, far)).resize((width, panel_px), Image.NEAREST)
    return np.asarray(img.convert("RGB"))


__all__ = ["DebugHand", "crop_box", "debug_view", "hand_panel"]
