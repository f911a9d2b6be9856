"""What the node-output tests share: start hand_pose_node (or its lifecycle variant) as a
child process with an untrained checkpoint, publish depth + camera_info, record outputs.

Import after ``pytest.importorskip("rclpy")``.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from vvhand_core.data.synthetic.generator import SynthConfig, sample_sequence
from vvhand_msgs.msg import HandPoseArray
from vvhand_ros.conversions import depth_mm_to_image, intrinsics_to_camera_info

from ros_helpers import REPO, spin_until, stop

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
OVERRIDES = [f"qos_overrides.{t}.subscription.reliability:=reliable"
             for t in ("/depth/image", "/depth/camera_info")]


def moving_frames():
    """Frames 0 and 6 of a slowly moving hand (a few mm apart: one track) and a far one."""
    seq = list(sample_sequence(SynthConfig(seed=11, background="none"), 7))
    far = np.where(seq[0].depth_mm > 0, 5000.0, 0.0).astype(np.float32)
    return seq[0], seq[6], far


def start(env, checkpoint, *params, module="vvhand_ros.node", ns=""):
    # backend torch and one thread (as this process, conftest): the outputs are compared
    # with an in-process torch pipeline, and the random test model's side probability and
    # fit start are sensitive to onnxruntime's rounding and to torch's thread count
    args = [sys.executable, "-m", module, "--ros-args", "-p", f"model_path:={checkpoint}",
            "-p", "device:=cpu", "-p", "backend:=torch", "-p", "localiser:=geometric",
            "-p", "num_threads:=1", "-p", "fit:=false",  # the fit: its own test
            "-p", "status_period_s:=0.5",
            "-r", "depth/image:=/depth/image", "-r", "depth/camera_info:=/depth/camera_info"]
    if ns:
        args += ["-r", f"__ns:={ns}"]
    for p in [*OVERRIDES, *params]:
        args += ["-p", p]
    return subprocess.Popen(args, env=env, cwd=str(REPO), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def stamp(t_s: float) -> Time:
    return Time(sec=int(t_s), nanosec=int(round((t_s % 1.0) * 1e9)))


class Harness:
    def __init__(self, context, node_name="/hand_pose_node"):
        self.node = rclpy.create_node("outputs_test_harness", context=context)
        self.pub_img = self.node.create_publisher(Image, "/depth/image", RELIABLE)
        self.pub_info = self.node.create_publisher(CameraInfo, "/depth/camera_info", RELIABLE)
        self.hands: list[HandPoseArray] = []
        self.palms: list[PoseStamped] = []
        self.tf: list[TFMessage] = []
        self.diag: list[DiagnosticArray] = []
        sub = self.node.create_subscription
        sub(HandPoseArray, f"{node_name}/hands", self.hands.append, 100)
        sub(PoseStamped, f"{node_name}/palm_pose", self.palms.append, 100)
        sub(TFMessage, "/tf", self.tf.append, 100)
        sub(DiagnosticArray, "/diagnostics", self.diag.append, 100)
        self.name = node_name

    def wait_subscribed(self, proc, timeout_s=60.0):
        ok = spin_until(self.node, lambda: (self.pub_img.get_subscription_count() > 0
                                            and self.pub_info.get_subscription_count() > 0)
                        or proc.poll() is not None, timeout_s)
        assert ok and proc.poll() is None, stop(proc)
        spin_until(self.node, lambda: False, 0.3)

    def send(self, depth_mm, intr, t_s, frame_id="cam_optical"):
        hdr = Header(stamp=stamp(t_s), frame_id=frame_id)
        self.pub_info.publish(intrinsics_to_camera_info(intr, hdr))
        self.pub_img.publish(depth_mm_to_image(depth_mm, hdr))

    def send_and_wait(self, proc, depth_mm, intr, t_s):
        n = len(self.hands)
        self.send(depth_mm, intr, t_s)
        assert spin_until(self.node, lambda: len(self.hands) > n, 30.0), stop(proc)
        return self.hands[-1]

    def status(self):
        """(level, message, values) of the newest hand_pose_node status."""
        for arr in reversed(self.diag):
            for st in arr.status:
                if "hand_pose_node" in st.name:
                    level = st.level[0] if isinstance(st.level, bytes) else int(st.level)
                    return level, st.message, {kv.key: float(kv.value) for kv in st.values}
        return None, "", {}

    def set_params(self, **kw):
        client = self.node.create_client(SetParameters, f"{self.name}/set_parameters")
        assert client.wait_for_service(timeout_sec=10.0)
        req = SetParameters.Request()
        for name, value in kw.items():
            pv = (ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
                  if isinstance(value, bool) else
                  ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=float(value)))
            req.parameters.append(Parameter(name=name, value=pv))
        fut = client.call_async(req)
        assert spin_until(self.node, fut.done, 10.0)
        return [r.successful for r in fut.result().results]


def joints_mm(hand) -> np.ndarray:
    return np.array([[p.x, p.y, p.z] for p in hand.joints]) * 1000.0


