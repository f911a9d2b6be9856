"""Depth image encodings (REP-118) without ROS imports: decode and encode raw image fields.

``16UC1`` / ``mono16``: millimetres, 0 = invalid. ``32FC1``: metres; NaN, +-inf and values
<= 0 are invalid. Inside vvhand depth is float32 millimetres with 0 = invalid.
Decoding takes any object with the fields of sensor_msgs/Image or CameraInfo (an rclpy
message or a rosbags dataclass alike), so the node and offline bag replay share one check.
"""

from __future__ import annotations

import math

import numpy as np

from vvhand_core.camera import Intrinsics


class ConversionError(ValueError):
    """A ROS message that cannot be turned into vvhand_core input; the text says why."""


# encoding -> (numpy little-endian dtype, scale from stored unit to millimetres)
DEPTH_ENCODINGS: dict[str, tuple[str, float]] = {
    "16UC1": ("<u2", 1.0),
    "mono16": ("<u2", 1.0),
    "32FC1": ("<f4", 1000.0),
}


def image_to_depth_mm(msg) -> np.ndarray:
    """Decode a depth image (sensor_msgs/Image fields) to float32 mm (H, W), 0 = invalid.

    Honours ``step`` (padded rows) and ``is_bigendian``. Raises ConversionError on an
    unsupported encoding, a zero-size image, a step shorter than a row, or data shorter than
    ``step * height``.
    """
    enc = msg.encoding
    if enc not in DEPTH_ENCODINGS:
        raise ConversionError(
            f"unsupported depth encoding {enc!r}; expected one of {sorted(DEPTH_ENCODINGS)}"
        )
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h == 0 or w == 0:
        raise ConversionError(f"empty depth image ({w}x{h})")
    dtype = np.dtype(DEPTH_ENCODINGS[enc][0])
    if msg.is_bigendian:
        dtype = dtype.newbyteorder(">")
    row_bytes = w * dtype.itemsize
    if step < row_bytes:
        raise ConversionError(f"step {step} is shorter than one row of {w} x {enc} ({row_bytes} B)")
    data = msg.data
    if len(data) < step * h:
        raise ConversionError(
            f"depth data has {len(data)} B, expected step*height = {step}*{h} = {step * h} B"
        )
    buf = np.frombuffer(memoryview(data), dtype=np.uint8, count=step * h).reshape(h, step)
    depth = buf[:, :row_bytes].copy().view(dtype).reshape(h, w)
    scale = DEPTH_ENCODINGS[enc][1]
    out = depth.astype(np.float32)
    if scale != 1.0:
        out *= scale
        out[~np.isfinite(out) | (out <= 0.0)] = 0.0
    return out


def encode_depth(depth_mm: np.ndarray, encoding: str = "16UC1") -> np.ndarray:
    """Millimetres (H, W) -> little-endian array in ``encoding``; the inverse of decoding.

    ``16UC1``/``mono16``: mm rounded and clipped to 0..65535; ``32FC1``: metres, invalid NaN.
    """
    d = np.asarray(depth_mm)
    if encoding in ("16UC1", "mono16"):
        return np.clip(np.rint(d), 0, 65535).astype("<u2")
    if encoding == "32FC1":
        data = (d.astype(np.float64) / 1000.0).astype("<f4")
        data[~(d > 0)] = np.nan
        return data
    raise ConversionError(f"cannot encode depth as {encoding!r}")


def camera_info_to_intrinsics(msg) -> Intrinsics:
    """Pinhole intrinsics from ``CameraInfo.k`` and its image size (K only, D ignored).

    The node and replay choose P or K + D per image through vvhand_ros.camera_model.

    Raises ConversionError for zero/non-finite focal lengths or a zero image size.
    """
    k = [float(x) for x in msg.k]
    if msg.width == 0 or msg.height == 0:
        raise ConversionError(f"camera_info has zero image size ({msg.width}x{msg.height})")
    return checked_pinhole(k[0], k[4], k[2], k[5], int(msg.width), int(msg.height), "K")


# Plausible pinhole values: a focal length of 1 px is a field of view near 180 degrees for
# any image, 1e5 px a fraction of a degree; a principal point more than one image size off
# the image describes no real camera. Outside these, the numbers only overflow downstream.
FOCAL_RANGE_PX = (1.0, 1e5)


def checked_pinhole(fx: float, fy: float, cx: float, cy: float, width: int, height: int,
                    name: str) -> Intrinsics:
    """Intrinsics from camera_info's ``name`` matrix (K or P); ConversionError if implausible.

    Focal lengths must lie in FOCAL_RANGE_PX and the principal point within one image size
    of the image (cx in [-width, 2 width], cy in [-height, 2 height]).
    """
    lo, hi = FOCAL_RANGE_PX
    if not all(math.isfinite(v) for v in (fx, fy)) or not (lo <= fx <= hi and lo <= fy <= hi):
        raise ConversionError(f"camera_info {name} has an invalid focal length (fx={fx}, "
                              f"fy={fy}; expected {lo:g}..{hi:g} px)")
    if not (math.isfinite(cx) and math.isfinite(cy) and -width <= cx <= 2 * width
            and -height <= cy <= 2 * height):
        raise ConversionError(f"camera_info {name} has a principal point (cx={cx}, cy={cy}) "
                              f"far outside the {width}x{height} image")
    return Intrinsics(fx=fx, fy=fy, cx=cx, cy=cy, width=width, height=height)


def check_image_matches_info(depth_shape: tuple[int, int], intr: Intrinsics) -> None:
    """Raise ConversionError when a depth image's (H, W) differs from camera_info's size."""
    h, w = depth_shape
    if (w, h) != (intr.width, intr.height):
        raise ConversionError(
            f"depth image is {w}x{h} but camera_info describes {intr.width}x{intr.height}"
        )
