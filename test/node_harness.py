"""hand_pose_node as a child process, and a harness that feeds it and records its outputs.

For the tests of test_node*.py; import after ``pytest.importorskip("rclpy")``.
"""

from __future__ import annotations

import subprocess
import sys
import time

import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from vvhand_msgs.msg import HandPose
from vvhand_ros.conversions import depth_mm_to_image, intrinsics_to_camera_info

from ros_helpers import REPO, spin_until, stop

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# the standard QoS override parameters: reliable subscriptions, so that no test frame is lost
RELIABLE_OVERRIDES = [f"qos_overrides.{topic}.subscription.reliability:=reliable" for topic in
                      ("/depth/image", "/depth/image/compressedDepth", "/depth/camera_info")]


def start_node(env, checkpoint, *params, qos_overrides=RELIABLE_OVERRIDES):
    args = [sys.executable, "-m", "vvhand_ros.node", "--ros-args",
            "-p", f"model_path:={checkpoint}", "-p", "device:=cpu",
            "-p", "status_period_s:=0.5", "-p", "num_threads:=1",  # see docs/ros.md: one
            # thread on a shared CPU, no oversubscription; fit off: the untrained test
            # model's joints explain no depth (the fit would publish them as no hand)
            "-p", "fit:=false", "--log-level", "hand_pose_node:=info"]
    for p in [*qos_overrides, *params]:
        args += ["-p", p]
    return subprocess.Popen(args, env=env, cwd=str(REPO), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


class Harness:
    """Publishers of depth/camera_info and recorders of every node output."""

    def __init__(self, context):
        self.node = rclpy.create_node("node_test_harness", context=context)
        self.pub_img = self.node.create_publisher(Image, "depth/image", RELIABLE)
        self.pub_comp = self.node.create_publisher(CompressedImage, "depth/image/compressedDepth",
                                                   RELIABLE)
        self.pub_info = self.node.create_publisher(CameraInfo, "depth/camera_info", RELIABLE)
        self.poses: list[HandPose] = []
        self.joints: list[PoseArray] = []
        self.markers: list[MarkerArray] = []
        self.tf: list[TFMessage] = []
        self.diag: list[DiagnosticArray] = []
        sub = self.node.create_subscription
        sub(HandPose, "/hand_pose_node/hand_pose", self._pose, 100)
        sub(PoseArray, "/hand_pose_node/joints", self.joints.append, 100)
        sub(MarkerArray, "/hand_pose_node/markers", self.markers.append, 100)
        sub(TFMessage, "/tf", self.tf.append, 100)
        sub(DiagnosticArray, "/diagnostics", self.diag.append, 100)
        self.received_at: dict[tuple[int, int], float] = {}

    def _pose(self, msg):
        self.poses.append(msg)
        self.received_at[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = time.monotonic()

    def wait_ready(self, proc, timeout_s=60.0, pub=None):
        pub = pub or self.pub_img
        ok = spin_until(self.node, lambda: (pub.get_subscription_count() > 0
                                            and self.pub_info.get_subscription_count() > 0)
                        or proc.poll() is not None, timeout_s)
        assert ok and proc.poll() is None, stop(proc)
        spin_until(self.node, lambda: False, 0.5)

    def spin(self, seconds):
        spin_until(self.node, lambda: False, seconds)

    def send(self, depth_mm, hdr, intr, encoding="16UC1"):
        """camera_info and depth image of one stamp, as a driver publishes them."""
        self.pub_info.publish(intrinsics_to_camera_info(intr, hdr))
        self.pub_img.publish(depth_mm_to_image(depth_mm, hdr, encoding))

    def subscription_reliability(self, topic):
        """Reliability of the node's subscription to ``topic`` as DDS discovered it."""
        spin_until(self.node, lambda: self.node.get_subscriptions_info_by_topic(topic), 10.0)
        (info,) = self.node.get_subscriptions_info_by_topic(topic)
        return info.qos_profile.reliability

    def latest_status(self) -> dict[str, float]:
        for arr in reversed(self.diag):
            for st in arr.status:
                if "hand_pose_node" in st.name:
                    return {kv.key: float(kv.value) for kv in st.values}
        return {}


def header(i: int, frame_id: str = "cam_optical") -> Header:
    return Header(stamp=Time(sec=100 + i, nanosec=i), frame_id=frame_id)
