"""hand_pose_node's services and debug image over real DDS: ~/reset_tracking, ~/enable,
~/debug_image (vvhand_ros.node_controls).

The node runs as a child process (untrained small checkpoint, geometric localiser, fit off);
frames 0 and 6 of a slowly moving hand are one track unless tracking is reset.
"""

from __future__ import annotations

import numpy as np
import pytest

from ros_helpers import call_when_answering, spin_until, stop

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
from outputs_harness import Harness, moving_frames, start  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402


def test_reset_enable_and_debug_image(rclpy_context, ros_env, checkpoint):
    f0, f6, _ = moving_frames()
    proc = start(ros_env, checkpoint, "max_hands:=1")
    h = Harness(rclpy_context)
    debug: list[Image] = []
    h.node.create_subscription(Image, "/hand_pose_node/debug_image", debug.append, 10)
    reset = h.node.create_client(Trigger, "/hand_pose_node/reset_tracking")
    enable = h.node.create_client(SetBool, "/hand_pose_node/enable")
    try:
        h.wait_subscribed(proc)
        a = h.send_and_wait(proc, f0.depth_mm, f0.intrinsics, 100.0)
        b = h.send_and_wait(proc, f6.depth_mm, f6.intrinsics, 100.1)
        # the debug picture of each answered frame: one 192 px panel per hand, same stamp
        assert spin_until(h.node, lambda: len(debug) >= 2, 10.0), stop(proc)
        pic = debug[-1]
        assert (pic.encoding, pic.height, pic.width, pic.step) == ("rgb8", 192, 192, 576)
        assert pic.header.stamp == b.header.stamp and pic.header.frame_id == "cam_optical"
        rgb = np.frombuffer(bytes(pic.data), np.uint8).reshape(192, 192, 3)
        assert (rgb[..., 0] != rgb[..., 1]).sum() >= 5  # skeleton colours on grey depth
        # one track without a reset, a new one after it
        assert len(a.hands) == len(b.hands) == 1
        assert a.hands[0].track_id == b.hands[0].track_id
        answer = call_when_answering(h.node, reset, Trigger.Request())
        assert answer.success, answer.message
        c = h.send_and_wait(proc, f6.depth_mm, f6.intrinsics, 100.2)
        assert len(c.hands) == 1 and c.hands[0].track_id != a.hands[0].track_id
        # disabled: unsubscribed, nothing answered, diagnostics say so; enabled again: answers
        answer = call_when_answering(h.node, enable, SetBool.Request(data=False))
        assert answer.success and answer.message == "disabled"
        assert spin_until(h.node, lambda: h.pub_img.get_subscription_count() == 0, 10.0)
        n = len(h.hands)
        h.send(f0.depth_mm, f0.intrinsics, 100.3)
        assert spin_until(h.node, lambda: "disabled" in h.status()[1], 5.0), h.status()
        assert len(h.hands) == n and h.status()[0] == 0
        answer = call_when_answering(h.node, enable, SetBool.Request(data=True))
        assert answer.success and answer.message == "enabled"
        h.wait_subscribed(proc)
        h.send_and_wait(proc, f0.depth_mm, f0.intrinsics, 100.4)
        assert proc.poll() is None
    finally:
        out = stop(proc)
        h.node.destroy_node()
    assert "Traceback" not in out
    assert "tracking reset" in out and "disabled by ~/enable" in out
