"""Optional ``target_frame``: outputs transformed from the camera frame with tf2.

Empty ``target_frame`` (default): outputs stay in the depth image's frame and nothing here
is used. Set (e.g. ``base_link``): each frame's transform target <- header.frame_id at
header.stamp is looked up with tf2_ros (waiting up to ``tf_timeout_s``) and applied to the
joints, the crop centre and (through the joints) the palm, and outputs carry
``frame_id = target_frame``. tf2_ros is not on PyPI: where it cannot be imported, asking
for a target frame is a start-up error (:class:`TargetFrameError`, one message), never a
silent fallback to the camera frame. A frame whose transform is not available in time is
dropped and counted as ``tf_unavailable``.
"""

from __future__ import annotations

import numpy as np

from vvhand_core.palm import quaternion_to_matrix


class TargetFrameError(ValueError):
    """target_frame asked for where it cannot be served (tf2_ros missing)."""


class TransformUnavailable(RuntimeError):
    """No transform target <- source at the frame's stamp within the timeout."""


def rigid_from_transform(transform) -> tuple[np.ndarray, np.ndarray]:
    """geometry_msgs/Transform -> (rotation (3, 3), translation (3,) in mm)."""
    q, t = transform.rotation, transform.translation
    rot = quaternion_to_matrix([q.x, q.y, q.z, q.w])
    return rot, 1000.0 * np.array([t.x, t.y, t.z], dtype=np.float64)


def apply_rigid(rot: np.ndarray, trans_mm: np.ndarray, points_mm: np.ndarray) -> np.ndarray:
    """Points (..., 3) mm mapped by x -> R x + t."""
    p = np.asarray(points_mm, dtype=np.float64)
    return (p @ np.asarray(rot).T + trans_mm).astype(np.float32)


class TargetFrame:
    """Looks up camera -> target transforms with a tf2_ros Buffer and TransformListener."""

    def __init__(self, node, target_frame: str, timeout_s: float) -> None:
        """TargetFrameError (naming the parameter) when tf2_ros cannot be imported."""
        try:
            from tf2_ros import Buffer, TransformListener
        except ImportError as exc:
            raise TargetFrameError(
                f"target_frame {target_frame!r} needs tf2_ros, which cannot be imported "
                f"here ({exc}); install ros-<distro>-tf2-ros or leave target_frame empty "
                "to publish in the camera frame") from None
        self.frame = target_frame
        self.timeout_s = float(timeout_s)
        self._buffer = Buffer()
        self._listener = TransformListener(self._buffer, node)

    def lookup(self, source_frame: str, stamp) -> tuple[np.ndarray, np.ndarray]:
        """(R, t mm) taking points from ``source_frame`` to the target at ``stamp``."""
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            tf = self._buffer.lookup_transform(self.frame, source_frame, Time.from_msg(stamp),
                                               timeout=Duration(seconds=self.timeout_s))
        except Exception as exc:  # noqa: BLE001 - tf2 raises several exception types
            raise TransformUnavailable(
                f"no transform {source_frame} -> {self.frame}: {exc}") from None
        return rigid_from_transform(tf.transform)


def make_target_frame(node, target_frame: str, timeout_s: float) -> TargetFrame | None:
    """None for an empty target_frame, else a TargetFrame (TargetFrameError without tf2)."""
    return TargetFrame(node, target_frame, timeout_s) if target_frame else None


__all__ = ["TargetFrame", "TargetFrameError", "TransformUnavailable", "apply_rigid",
           "make_target_frame", "rigid_from_transform"]
