"""The node's input boundary: depth images and CameraInfo <-> vvhand_core arrays.

Conventions (REP-103/REP-118, defined here once for the ROS side):
- Depth images: ``16UC1`` / ``mono16`` hold millimetres (0 = invalid); ``32FC1`` holds
  metres (NaN, +-inf and values <= 0 are invalid). Inside vvhand_core depth is float32
  millimetres with 0 = invalid.
- vvhand_core works in millimetres; every ROS message carries metres (``MM_TO_M``).

The messages the node publishes are built in :mod:`vvhand_ros.hand_msgs`. Every malformed
input raises :class:`ConversionError` (a ``ValueError``) whose message says
what is wrong; the node catches exactly this type, reports it (throttled) and keeps going.
"""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from vvhand_core.camera import Intrinsics
from vvhand_ros.depth_encoding import (
    DEPTH_ENCODINGS,
    ConversionError,
    camera_info_to_intrinsics,
    check_image_matches_info,
    encode_depth,
    image_to_depth_mm,
)

__all__ = [
    "DEPTH_ENCODINGS", "MM_TO_M", "ConversionError", "camera_info_to_intrinsics",
    "check_image_matches_info", "depth_mm_to_image", "image_to_depth_mm",
    "intrinsics_to_camera_info",
]

MM_TO_M = 1e-3


def depth_mm_to_image(depth_mm: np.ndarray, header: Header, encoding: str = "16UC1") -> Image:
    """Encode millimetres as a ``16UC1`` (mm) or ``32FC1`` (m, invalid -> NaN) Image.

    The inverse of :func:`image_to_depth_mm`, used by replay, the demo and tests.
    """
    data = encode_depth(depth_mm, encoding)
    h, w = data.shape
    return Image(header=header, height=h, width=w, encoding=encoding, is_bigendian=0,
                 step=w * data.itemsize, data=data.tobytes())


def intrinsics_to_camera_info(intr: Intrinsics, header: Header) -> CameraInfo:
    """A distortion-free CameraInfo for ``intr`` (replay, demo and tests)."""
    msg = CameraInfo(header=header, width=intr.width, height=intr.height)
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg
