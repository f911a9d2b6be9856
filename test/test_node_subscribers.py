"""hand_pose_node builds its optional outputs only for subscribers, over real rclpy and DDS.

The node runs in this process (``HandPoseNode`` with an untrained small checkpoint and the
geometric localiser), spun with a listener node that publishes depth + camera_info and
subscribes to ~/hands only; what the node built is read from its own record
(``FrameOutput.built``). A subscriber that joins later gets ~/markers from then on.
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
from outputs_harness import RELIABLE, moving_frames, stamp  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from vvhand_msgs.msg import HandPoseArray  # noqa: E402
from vvhand_ros.conversions import depth_mm_to_image, intrinsics_to_camera_info  # noqa: E402

OPTIONAL = ("palm", "joints", "markers", "tf", "joint_states")


def node_parameters(checkpoint):
    values = {"model_path": str(checkpoint), "device": "cpu", "backend": "torch",
              "localiser": "geometric", "num_threads": 1, "fit": False,
              "qos_overrides./depth/image.subscription.reliability": "reliable",
              "qos_overrides./depth/camera_info.subscription.reliability": "reliable"}
    return [rclpy.parameter.Parameter(k, value=v) for k, v in values.items()]


def test_optional_outputs_only_for_subscribers_and_a_late_one_gets_them(rclpy_context,
                                                                        checkpoint):
    from vvhand_ros.node import HandPoseNode

    frame = moving_frames()[0]
    node = HandPoseNode(context=rclpy_context, parameter_overrides=node_parameters(checkpoint))
    listener = rclpy.create_node("subscribers_test_listener", context=rclpy_context)
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    executor.add_node(listener)
    pub_img = listener.create_publisher(Image, "/depth/image", RELIABLE)
    pub_info = listener.create_publisher(CameraInfo, "/depth/camera_info", RELIABLE)
    hands: list[HandPoseArray] = []
    markers: list[MarkerArray] = []
    listener.create_subscription(HandPoseArray, "/hand_pose_node/hands", hands.append, 100)

    def spin_until(condition, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not condition():
            executor.spin_once(timeout_sec=0.05)
        return condition()

    sent = [0]

    def send_and_wait():
        n = len(hands)
        sent[0] += 1
        hdr = Header(stamp=stamp(300.0 + sent[0] / 30.0), frame_id="cam_optical")
        pub_info.publish(intrinsics_to_camera_info(frame.intrinsics, hdr))
        pub_img.publish(depth_mm_to_image(frame.depth_mm, hdr))
        assert spin_until(lambda: len(hands) > n, 30.0), "no ~/hands answer"
        return hands[-1]

    try:
        assert spin_until(lambda: pub_img.get_subscription_count() > 0
                          and pub_info.get_subscription_count() > 0, 30.0)
        spin_until(lambda: False, 0.3)
        for _ in range(3):
            assert send_and_wait().hands, "the frame should hold a hand"
        built = node._frame_out.built
        assert node.stats.processed == 3
        assert {k: built[k] for k in OPTIONAL} == dict.fromkeys(OPTIONAL, 0)
        # a late subscriber on ~/markers: markers from then on, still nothing else
        listener.create_subscription(MarkerArray, "/hand_pose_node/markers", markers.append,
                                     100)
        assert spin_until(lambda: node.pub_markers.get_subscription_count() > 0, 30.0)
        for _ in range(10):  # until both ends have matched: a few frames at most
            send_and_wait()
            if spin_until(lambda: len(markers) > 0, 1.0):
                break
        assert markers and markers[-1].markers
        assert markers[-1].markers[0].header.stamp == hands[-1].header.stamp
        assert built["markers"] >= 1
        assert {k: built[k] for k in OPTIONAL if k != "markers"} == dict.fromkeys(
            (k for k in OPTIONAL if k != "markers"), 0)
    finally:
        executor.shutdown()
        listener.destroy_node()
        node.destroy_node()
