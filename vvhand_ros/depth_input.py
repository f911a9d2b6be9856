"""Depth image + camera_info -> (depth in mm, pinhole intrinsics); one path, no ROS imports.

The node and `vvhand replay` (offline) both go through :class:`DepthInput`:
decode (raw ``sensor_msgs/Image`` or compressedDepth ``sensor_msgs/CompressedImage``), pick
the camera model (P for rectified images, K and D for raw ones, undistorting when D is not
zero; vvhand_ros.camera_model), and check that image and camera_info agree in size. Every
problem raises ConversionError with a one-line reason. Messages may be rclpy messages or
rosbags dataclasses: only their fields are read.
"""

from __future__ import annotations

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_ros.camera_model import CameraModelCache, resolve_rectified
from vvhand_ros.compressed_depth import compressed_to_depth_mm
from vvhand_ros.depth_encoding import (
    ConversionError,
    check_image_matches_info,
    image_to_depth_mm,
)

DEPTH_TRANSPORTS = ("raw", "compressedDepth")


def transport_topic(base_topic: str, transport: str) -> str:
    """image_transport's naming: raw on the base topic, compressedDepth on base/compressedDepth."""
    if transport not in DEPTH_TRANSPORTS:
        raise ValueError(f"depth_transport must be one of {DEPTH_TRANSPORTS}, got {transport!r}")
    return base_topic if transport == "raw" else base_topic.rstrip("/") + "/compressedDepth"


def decode_depth_mm(msg, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """float32 mm (H, W), 0 = invalid, from an Image or a compressedDepth CompressedImage.

    ``expected_size`` (width, height; camera_info's): a compressed image declaring another
    size is refused before it is decoded (raw images are checked by the caller).
    """
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return compressed_to_depth_mm(msg, expected_size)
    return image_to_depth_mm(msg)


def require_frame_id(header) -> None:
    """ConversionError when ``header.frame_id`` is empty: outputs and TF parents need one."""
    if not str(header.frame_id).strip():
        raise ConversionError("depth image has an empty header.frame_id; every output and "
                              "the TF parent need the camera's frame")


class DepthInput:
    """Decode, undistort and check one paired frame; camera models are cached per calibration.

    ``camera_model``: auto | rectified | raw (see vvhand_ros.camera_model); ``depth_topic``
    decides ``auto``. ``notes()`` returns, once each, what is worth one log line (the camera
    model chosen for a calibration with distortion).
    """

    def __init__(self, camera_model: str = "auto", depth_topic: str = "") -> None:
        self.rectified = resolve_rectified(camera_model, depth_topic)
        self._models = CameraModelCache(self.rectified)
        self._notes: list[str] = []

    def prepare(self, image, info) -> tuple[np.ndarray, Intrinsics]:
        """(depth_mm (H, W) float32, intrinsics) ready for the pipeline; ConversionError if not."""
        model, new = self._models.get(info)
        if new and model.note:
            self._notes.append(model.note)
        depth = decode_depth_mm(image, (model.intrinsics.width, model.intrinsics.height))
        check_image_matches_info(depth.shape, model.intrinsics)
        return model.apply(depth), model.intrinsics

    def notes(self) -> list[str]:
        """Messages not yet returned (each calibration's note once)."""
        out, self._notes = self._notes, []
        return out


__all__ = ["DEPTH_TRANSPORTS", "ConversionError", "DepthInput", "decode_depth_mm",
           "require_frame_id", "transport_topic"]
