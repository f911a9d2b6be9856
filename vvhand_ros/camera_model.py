"""The camera model of a depth image from its CameraInfo, without ROS imports.

CameraInfo describes the raw camera (K, D) and the rectified one (P, with R). Which one
applies depends on the image, not on the message:

- ``rectified`` images (``image_rect``, ``image_rect_raw``, registered depth): pinhole ``P``
  (its left 3x3; ``K`` when P is all zeros). D is ignored: image_pipeline publishes the raw
  camera's camera_info beside rectified images.
- ``raw`` images: ``K`` and ``D``. With non-zero D the depth is undistorted to the pinhole
  K by nearest-neighbour lookup (never interpolating across depth edges); R is not applied,
  so the output stays in the image's own optical frame.
- ``auto``: rectified when the depth topic's last name contains ``rect``, else raw.

Distortion models: ``plumb_bob`` (k1 k2 p1 p2 k3), ``rational_polynomial`` (k1 k2 p1 p2 k3
k4 k5 k6; further zero coefficients allowed) and ``equidistant`` (fisheye k1..k4).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_ros.depth_encoding import ConversionError, checked_pinhole

CAMERA_MODELS = ("auto", "rectified", "raw")
MAX_PIXELS = 4096 * 4096  # larger camera_infos are refused before a lookup is built
DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant")
# full field of view of a depth camera, each axis [deg]: wide-angle ToF reaches ~120, long
# focal structured light ~20; outside, a camera_info describes no depth camera
FOV_RANGE_DEG = (5.0, 160.0)


def resolve_rectified(camera_model: str, depth_topic: str) -> bool:
    """True when images are taken as rectified (P), False for raw (K + D)."""
    if camera_model not in CAMERA_MODELS:
        raise ValueError(f"camera_model must be one of {CAMERA_MODELS}, got {camera_model!r}")
    if camera_model == "auto":
        return "rect" in depth_topic.rstrip("/").rsplit("/", 1)[-1]
    return camera_model == "rectified"


def field_of_view_deg(focal_px: float, size_px: int) -> float:
    """Full angle [deg] that ``size_px`` pixels span at focal length ``focal_px`` [px]."""
    return math.degrees(2.0 * math.atan(size_px / (2.0 * focal_px)))


def _pinhole(m: list[float], width: int, height: int, name: str) -> Intrinsics:
    """checked_pinhole, then a field of view in FOV_RANGE_DEG on both axes.

    Focal lengths within FOCAL_RANGE_PX can still describe no depth camera at this image
    size (fx = 10 px at 640 pixels is 176 deg); the pipeline's working images follow the
    field of view, so such camera_infos are refused here with one reason.
    """
    fx, fy, cx, cy = m
    intr = checked_pinhole(fx, fy, cx, cy, width, height, name)
    h_deg, v_deg = field_of_view_deg(fx, width), field_of_view_deg(fy, height)
    lo, hi = FOV_RANGE_DEG
    if not (lo <= h_deg <= hi and lo <= v_deg <= hi):
        raise ConversionError(
            f"camera_info {name} gives a field of view no depth camera has ({h_deg:.1f} x "
            f"{v_deg:.1f} deg from fx={fx:g}, fy={fy:g} at {width}x{height}; expected "
            f"{lo:g}..{hi:g} deg)")
    return intr


def distortion_of(info) -> np.ndarray:
    """D as float64; an empty array when every coefficient is zero."""
    d = np.asarray([float(x) for x in info.d], dtype=np.float64)
    return d if d.size and np.any(d != 0.0) else np.zeros(0)


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics of the depth handed to the pipeline, and how to get that depth."""

    intrinsics: Intrinsics
    lookup: np.ndarray | None = None  # (H*W,) int: raw pixel per output pixel; H*W = none
    note: str = ""                    # said once when this model is first used

    def apply(self, depth_mm: np.ndarray) -> np.ndarray:
        """Undistort by nearest-neighbour lookup (identity when there is no distortion)."""
        if self.lookup is None:
            return depth_mm
        flat = np.append(depth_mm.ravel(), np.float32(0.0))
        return flat[self.lookup].reshape(depth_mm.shape)


def camera_model(info, rectified: bool) -> CameraModel:
    """Build the CameraModel of ``info`` (CameraInfo fields); ConversionError if unusable."""
    w, h = int(info.width), int(info.height)
    if w == 0 or h == 0:
        raise ConversionError(f"camera_info has zero image size ({w}x{h})")
    if w * h > MAX_PIXELS:
        raise ConversionError(f"camera_info image size {w}x{h} is above {MAX_PIXELS} pixels")
    k = [float(x) for x in info.k]
    if len(k) != 9:
        raise ConversionError(f"camera_info K has {len(k)} values, expected 9")
    d = distortion_of(info)
    if rectified:
        p = [float(x) for x in info.p]
        if len(p) == 12 and any(p):
            intr = _pinhole([p[0], p[5], p[2], p[6]], w, h, "P")
        else:
            intr = _pinhole([k[0], k[4], k[2], k[5]], w, h, "K")
        note = (f"camera_info has {info.distortion_model} distortion; the image is taken as "
                "rectified, so P is used and D ignored" if d.size else "")
        return CameraModel(intr, None, note)
    intr = _pinhole([k[0], k[4], k[2], k[5]], w, h, "K")
    if not d.size:
        return CameraModel(intr)
    lookup = undistort_lookup(intr, str(info.distortion_model), d)
    return CameraModel(intr, lookup, f"undistorting raw depth: {info.distortion_model} with "
                       f"{d.size} coefficients, nearest neighbour, to K")


def distort_normalised(x: np.ndarray, y: np.ndarray, model: str,
                       d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply a ROS/OpenCV distortion model to normalised image coordinates."""
    if model in ("plumb_bob", "rational_polynomial"):
        n_used = 5 if model == "plumb_bob" else 8
        if np.any(d[n_used:] != 0.0):
            raise ConversionError(f"{model} distortion with {d.size} coefficients: only the "
                                  f"first {n_used} are supported (the rest must be 0)")
        c = np.zeros(8)
        c[: min(d.size, n_used)] = d[:n_used]
        k1, k2, p1, p2, k3, k4, k5, k6 = c
        r2 = x * x + y * y
        radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        return xd, yd
    if model == "equidistant":
        if d.size > 4 and np.any(d[4:] != 0.0):
            raise ConversionError("equidistant distortion has more than 4 coefficients")
        c = np.zeros(4)
        c[: min(d.size, 4)] = d[:4]
        r = np.hypot(x, y)
        theta = np.arctan(r)
        t2 = theta * theta
        theta_d = theta * (1 + t2 * (c[0] + t2 * (c[1] + t2 * (c[2] + t2 * c[3]))))
        scale = np.where(r > 1e-12, theta_d / np.maximum(r, 1e-12), 1.0)
        return x * scale, y * scale
    raise ConversionError(f"unsupported distortion model {model!r} with non-zero D; "
                          f"supported: {list(DISTORTION_MODELS)}")


def undistort_lookup(intr: Intrinsics, model: str, d: np.ndarray) -> np.ndarray:
    """For each undistorted pixel, the flat index of its nearest raw pixel (H*W if outside)."""
    w, h = intr.width, intr.height
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    xd, yd = distort_normalised((u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, model, d)
    us = np.rint(xd * intr.fx + intr.cx)
    vs = np.rint(yd * intr.fy + intr.cy)
    inside = np.isfinite(us) & np.isfinite(vs) & (us >= 0) & (us < w) & (vs >= 0) & (vs < h)
    idx = np.full(h * w, h * w, dtype=np.int64)
    idx[inside.ravel()] = (vs[inside] * w + us[inside]).astype(np.int64)
    return idx


class CameraModelCache:
    """Camera models by camera_info content: the lookup is built once per calibration."""

    def __init__(self, rectified: bool, size: int = 4) -> None:
        self.rectified = rectified
        self._size = size
        self._models: OrderedDict[tuple, CameraModel] = OrderedDict()

    def get(self, info) -> tuple[CameraModel, bool]:
        """(model, new): ``new`` is True the first time this calibration is seen."""
        key = (int(info.width), int(info.height), str(info.distortion_model),
               tuple(float(x) for x in info.k), tuple(float(x) for x in info.d),
               tuple(float(x) for x in info.p) if self.rectified else ())
        model = self._models.get(key)
        if model is not None:
            self._models.move_to_end(key)
            return model, False
        model = camera_model(info, self.rectified)
        self._models[key] = model
        if len(self._models) > self._size:
            self._models.popitem(last=False)
        return model, True
