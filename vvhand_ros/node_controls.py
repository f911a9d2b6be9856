"""hand_pose_node's services and debug picture (a mixin of vvhand_ros.node_core.HandPoseCore).

- ``~/reset_tracking`` (std_srvs/Trigger): forget every hand's track (localiser tracks, the
  fit's previous pose, smoothing filters), e.g. after the camera moved or a new person
  stepped in; the next hands get new track ids (an id is never given twice).
- ``~/enable`` (std_srvs/SetBool): false unsubscribes from the depth image and camera_info
  (nothing is received or processed; /diagnostics says "disabled"), true subscribes again.
  The node starts enabled; a lifecycle node answers only while active.
- ``~/debug_image`` (sensor_msgs/Image, rgb8, the depth image's header): each hand's depth
  crop with its skeleton (vvhand_core.debug_view), built only while someone subscribes.
"""

from __future__ import annotations

from sensor_msgs.msg import Image
from std_srvs.srv import SetBool, Trigger

from vvhand_core.debug_view import DebugHand, debug_view
from vvhand_core.hands import HandsResult

DISABLED_MESSAGE = "disabled by ~/enable: not subscribed to the depth image"


def rgb_image_msg(header, rgb) -> Image:
    """(H, W, 3) uint8 -> sensor_msgs/Image rgb8 with ``header``."""
    h, w, _ = rgb.shape
    return Image(header=header, height=h, width=w, encoding="rgb8", is_bigendian=0,
                 step=3 * w, data=rgb.tobytes())


def debug_hands(result) -> list[DebugHand]:
    """The hands of a HandsResult (or one HandPoseResult) to draw, labelled side and track."""
    frame = result if isinstance(result, HandsResult) else HandsResult.of_one(result)
    out = []
    for r in frame.hands:
        label = r.side if r.track_id is None else f"{r.side} #{r.track_id}"
        out.append(DebugHand(r.joints_mm, r.centre_mm, float(r.cube_mm), label))
    return out


class NodeControls:
    """~/reset_tracking, ~/enable and ~/debug_image (see the module doc)."""

    enabled = True

    def _create_controls(self) -> None:
        """Services and the debug image publisher (called with the other outputs)."""
        self.pub_debug = self.create_publisher(Image, "~/debug_image", 1)
        self._controls = [
            self.create_service(Trigger, "~/reset_tracking", self._on_reset_tracking),
            self.create_service(SetBool, "~/enable", self._on_enable),
        ]
        self._outputs.append(self.pub_debug)

    def _destroy_controls(self) -> None:
        for service in getattr(self, "_controls", []):
            self.destroy_service(service)
        self._controls = []

    def _on_reset_tracking(self, request, response):
        if self.pipeline is None:
            response.success, response.message = False, "not configured: no model loaded"
            return response
        with self._lock:
            self.pipeline.reset_tracking()
            self._frame_out.tracks.lost()  # ids stay unique: the next hand gets a new one
        self.get_logger().info("tracking reset (~/reset_tracking)")
        response.success, response.message = True, "every hand's track was forgotten"
        return response

    def _on_enable(self, request, response):
        want = bool(request.data)
        if not self._running:
            response.success, response.message = False, "not active: nothing to enable"
            return response
        if want != self.enabled:
            if want:
                self._subscribe()
            else:
                self._unsubscribe()
            self.enabled = want
            self.get_logger().info("enabled: subscribed to the depth image again" if want
                                   else DISABLED_MESSAGE)
        response.success = True
        response.message = "enabled" if want else "disabled"
        return response

    def _publish_debug(self, header, depth_mm, intrinsics, result) -> None:
        """The debug picture of one frame, when ~/debug_image has a subscriber."""
        if self.pub_debug.get_subscription_count() == 0:
            return
        try:
            rgb = debug_view(depth_mm, intrinsics, debug_hands(result), self.pipeline.skeleton)
        except Exception as exc:  # noqa: BLE001 - the picture must never cost the frame
            self._reporter.report("debug_image", f"debug image not drawn: "
                                  f"{type(exc).__name__}: {exc}", level="warning")
            return
        self.pub_debug.publish(rgb_image_msg(header, rgb))


__all__ = ["DISABLED_MESSAGE", "NodeControls", "debug_hands", "rgb_image_msg"]
