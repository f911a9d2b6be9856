"""The ROS stack is real: messages cross process boundaries over localhost DDS.

One child process publishes, this process subscribes (rclpy + rmw_fastrtps_cpp from the
PyPI Kilted wheels, the vvhand interfaces built by scripts/setup_env.sh).
"""

from __future__ import annotations

import numpy as np
import pytest

from ros_helpers import spin_until, start_python, stop

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
from tf2_msgs.msg import TFMessage  # noqa: E402

from vvhand_msgs.msg import HandPose  # noqa: E402

PUBLISH_HAND_POSE = r"""
import time, numpy as np, rclpy
from std_msgs.msg import Header
from builtin_interfaces.msg import Time
from vvhand_msgs.msg import HandPose
from vvhand_core.skeletons import HANDS2019_21
from vvhand_ros.hand_msgs import hand_pose_msg
rclpy.init()
node = rclpy.create_node("hand_pose_talker")
pub = node.create_publisher(HandPose, "hand_pose", 10)
joints = np.arange(21 * 3, dtype=np.float32).reshape(21, 3) * 10.0 + 300.0
header = Header(stamp=Time(sec=17, nanosec=250), frame_id="camera_depth_optical_frame")
msg = hand_pose_msg(header, HANDS2019_21, joints, np.array([1.0, 2.0, 400.0]), 250.0, 25,
                    [12, 7, 17], [0.5, 0.3, 0.2], np.linspace(-1, 1, 25), 0.75, True, 0.031)
while True:
    pub.publish(msg)
    time.sleep(0.05)
"""

PUBLISH_TF = r"""
import time, numpy as np, rclpy
from std_msgs.msg import Header
from builtin_interfaces.msg import Time
from tf2_msgs.msg import TFMessage
from vvhand_core.skeletons import HANDS2019_21
from vvhand_ros.hand_msgs import hand_joint_transforms
rclpy.init()
node = rclpy.create_node("tf_talker")
pub = node.create_publisher(TFMessage, "/tf", 100)
joints = np.arange(21 * 3, dtype=np.float32).reshape(21, 3) + 500.0
header = Header(stamp=Time(sec=3, nanosec=9), frame_id="cam_optical")
msg = TFMessage(transforms=hand_joint_transforms(header, HANDS2019_21, joints, "left_", 0))
while True:
    pub.publish(msg)
    time.sleep(0.05)
"""


def test_hand_pose_crosses_processes(rclpy_context, ros_env):
    received: list[HandPose] = []
    node = rclpy.create_node("hand_pose_listener", context=rclpy_context)
    node.create_subscription(HandPose, "hand_pose", received.append, 10)
    proc = start_python(PUBLISH_HAND_POSE, ros_env)
    try:
        assert spin_until(node, lambda: len(received) > 0, timeout_s=20.0), stop(proc)
    finally:
        out = stop(proc)
        node.destroy_node()
    msg = received[0]
    assert msg.header.stamp.sec == 17 and msg.header.stamp.nanosec == 250, out
    assert msg.header.frame_id == "camera_depth_optical_frame"
    assert msg.skeleton == "hands2019_21"
    assert msg.joint_names[0] == "wrist" and len(msg.joint_names) == 21
    assert len(msg.joints) == 21
    # millimetres in the library, metres on the wire
    assert msg.joints[0].x == pytest.approx(0.300) and msg.joints[20].z == pytest.approx(0.920)
    assert (msg.center.x, msg.center.y, msg.center.z) == pytest.approx((0.001, 0.002, 0.4))
    assert msg.cube_size == pytest.approx(0.25)
    assert msg.num_candidate_views == 25
    assert list(msg.selected_views) == [12, 7, 17]
    assert list(msg.view_weights) == pytest.approx([0.5, 0.3, 0.2])
    assert len(msg.view_logits) == 25 and msg.view_logits[0] == pytest.approx(-1.0)
    assert msg.score == pytest.approx(0.75) and msg.valid is True
    assert (msg.processing_time.sec, msg.processing_time.nanosec) == (0, 31_000_000)


def test_tf_message_on_tf_crosses_processes(rclpy_context, ros_env):
    received: list[TFMessage] = []
    node = rclpy.create_node("tf_listener", context=rclpy_context)
    node.create_subscription(TFMessage, "/tf", received.append, 100)
    proc = start_python(PUBLISH_TF, ros_env)
    try:
        assert spin_until(node, lambda: len(received) > 0, timeout_s=20.0), stop(proc)
    finally:
        stop(proc)
        node.destroy_node()
    transforms = received[0].transforms
    assert len(transforms) == 21
    first = transforms[0]
    assert first.header.frame_id == "cam_optical"
    assert (first.header.stamp.sec, first.header.stamp.nanosec) == (3, 9)
    assert first.child_frame_id == "left_hand_0_wrist"
    assert transforms[-1].child_frame_id == "left_hand_0_pinky_tip"
    t = transforms[-1].transform.translation
    assert np.allclose([t.x, t.y, t.z], (np.array([60.0, 61.0, 62.0]) + 500.0) / 1000.0)
    assert transforms[-1].transform.rotation.w == 1.0
