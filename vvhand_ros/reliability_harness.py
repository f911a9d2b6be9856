"""The bench side of `vvhand bench reliability`: a hand_pose_node child process and a peer.

:class:`NodeProcess` runs ``python -m vvhand_ros.node`` in its own namespace and collects
what it prints; :class:`Peer` is this process's rclpy node, spun in a background thread:
it publishes depth images and camera_info to the child, records each HandPose answer
(arrival time, processing_time) and the child's latest /diagnostics status, and sets or
reads the child's parameters over its services; :class:`FrameStream` publishes valid
frames of a moving hand through it. Discovery stays on this machine: the
caller sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST before rclpy is initialised.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import rclpy
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters, SetParametersAtomically
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from vvhand_msgs.msg import HandPose
from vvhand_ros.compressed_depth import depth_mm_to_compressed
from vvhand_ros.conversions import depth_mm_to_image, intrinsics_to_camera_info
from vvhand_ros.hand_msgs import duration_s
from vvhand_ros.reliability_fuzz import header

try:
    from diagnostic_msgs.msg import DiagnosticArray
except ImportError:  # pragma: no cover - depends on the installation
    DiagnosticArray = None

NAMESPACE = "/vvhand_reliability"
NODE_NAME = "hand_pose_node"
QUEUE = 200  # reliable and deep on both sides: every bench message reaches the callbacks
INPUTS = ("depth/image", "depth/image/compressedDepth", "depth/camera_info")
RELIABLE_INPUT_OVERRIDES = [f"qos_overrides.{NAMESPACE}/{topic}.subscription.{policy}"
                            for topic in INPUTS
                            for policy in ("reliability:=reliable", f"depth:={QUEUE}")]


# docs/ros.md, "Large images": shared memory for 640x480 depth images (Fast DDS)
LARGE_IMAGES_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>shm_large</transport_id>
        <type>SHM</type>
        <segment_size>33554432</segment_size>
      </transport_descriptor>
      <transport_descriptor>
        <transport_id>udp_large</transport_id>
        <type>UDPv4</type>
        <sendBufferSize>4194304</sendBufferSize>
        <receiveBufferSize>4194304</receiveBufferSize>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="vvhand_large_images" is_default_profile="true">
      <rtps>
        <userTransports>
          <transport_id>shm_large</transport_id>
          <transport_id>udp_large</transport_id>
        </userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
      </rtps>
    </participant>
  </profiles>
</dds>
"""


@contextlib.contextmanager
def dds_environment(choice: str):
    """Apply a bench's ``--dds`` to this process's environment (and children started inside).

    Restores the environment on exit; yields what is used, in words.

    "large-images": the profile above (written to a temporary file); "default": Fast DDS's
    defaults (large images travel as UDP fragments; docs/ros.md, "Large images"). A
    FASTDDS_DEFAULT_PROFILES_FILE already set wins over either. Fast DDS reads the profile
    when a process makes its first participant: it reaches the children started inside,
    and this process only if it has not used DDS before.
    """
    key = "FASTDDS_DEFAULT_PROFILES_FILE"
    if os.environ.get(key):
        yield f"{key}={os.environ[key]}"
        return
    if choice != "large-images":
        yield "Fast DDS defaults"
        return
    with tempfile.TemporaryDirectory(prefix="vvhand_dds_") as tmp:
        profile = Path(tmp) / "fastdds_large_images.xml"
        profile.write_text(LARGE_IMAGES_PROFILE)
        os.environ[key] = str(profile)
        try:
            yield "the Fast DDS profile of docs/ros.md, 'Large images' (shared memory)"
        finally:
            os.environ.pop(key, None)


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class NodeProcess:
    """hand_pose_node as a child process; its output is read line by line meanwhile."""

    def __init__(self, env: dict[str, str], params: list[str],
                 ros_args: tuple[str, ...] = ()) -> None:
        """``params``: ``name:=value`` each; ``ros_args``: more ROS arguments at the end."""
        cmd = [sys.executable, "-m", "vvhand_ros.node", "--ros-args", "-r",
               f"__ns:={NAMESPACE}"]
        for p in [*RELIABLE_INPUT_OVERRIDES, *params]:
            cmd += ["-p", p]
        cmd += list(ros_args)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(list(self.lines))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_bytes(self) -> float:
        """Resident memory of the child [bytes]; NaN once it is gone."""
        import psutil

        try:
            return float(psutil.Process(self.proc.pid).memory_info().rss)
        except psutil.Error:
            return float("nan")

    def signal(self, sig) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout_s: float) -> int | None:
        """Exit status, or None when still running after ``timeout_s``."""
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def finish(self, timeout_s: float) -> int | None:
        """Wait for the exit (killed after ``timeout_s``: None); all output read."""
        rc = self.wait(timeout_s)
        if rc is None:
            self.kill()
        self._reader.join(timeout=10.0)
        return rc

    def kill(self) -> None:
        """Last resort (the bench's own failure): kill and reap."""
        if self.alive():
            self.proc.kill()
        self.proc.wait()
        self._reader.join(timeout=5.0)


@dataclass
class Answer:
    """One HandPose received: when (monotonic, this process), the node's processing_time."""

    received_s: float
    processing_s: float
    valid: bool


def parameter_value(value) -> ParameterValue:
    """A Python value -> rcl_interfaces/ParameterValue of its type."""
    if isinstance(value, bool):
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
    if isinstance(value, int):
        return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    if isinstance(value, float):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(value))


def plain_value(pv: ParameterValue):
    """rcl_interfaces/ParameterValue -> a Python value (None when not set)."""
    return {ParameterType.PARAMETER_BOOL: pv.bool_value,
            ParameterType.PARAMETER_INTEGER: pv.integer_value,
            ParameterType.PARAMETER_DOUBLE: pv.double_value,
            ParameterType.PARAMETER_STRING: pv.string_value}.get(pv.type)


class Peer:
    """The bench's side of the conversation with the child node."""

    def __init__(self, context) -> None:
        self.node = rclpy.create_node("vvhand_reliability_bench", context=context)
        qos = QoSProfile(depth=QUEUE, reliability=ReliabilityPolicy.RELIABLE)
        pub = self.node.create_publisher
        self.pub_img = pub(Image, f"{NAMESPACE}/depth/image", qos)
        self.pub_comp = pub(CompressedImage, f"{NAMESPACE}/depth/image/compressedDepth", qos)
        self.pub_info = pub(CameraInfo, f"{NAMESPACE}/depth/camera_info", qos)
        self.answers: dict[int, Answer] = {}
        self.answer_count = 0
        self.status: dict[str, float] = {}
        self.status_count = 0
        self.levels: list[tuple[int, str]] = []  # every status: (level, message)
        self.published: Counter = Counter()      # messages published, by kind
        self.node.create_subscription(HandPose, f"{NAMESPACE}/{NODE_NAME}/hand_pose",
                                      self._on_pose, QoSProfile(depth=100))
        if DiagnosticArray is not None:
            self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 100)
        srv = f"{NAMESPACE}/{NODE_NAME}"
        self._set = self.node.create_client(SetParameters, f"{srv}/set_parameters")
        self._set_atomic = self.node.create_client(SetParametersAtomically,
                                                   f"{srv}/set_parameters_atomically")
        self._get = self.node.create_client(GetParameters, f"{srv}/get_parameters")
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        try:
            self._executor.spin()
        except Exception:  # noqa: BLE001 - the context was shut down: nothing left to do
            pass

    def close(self) -> None:
        self._executor.shutdown(timeout_sec=5.0)
        self._spinner.join(timeout=5.0)
        self.node.destroy_node()

    def publish(self, kind: str, msg) -> None:
        """Publish ``msg`` on the depth ('image' | 'compressed') or camera_info ('info') topic."""
        {"info": self.pub_info, "image": self.pub_img, "compressed": self.pub_comp}[kind].publish(
            msg)
        self.published[kind] += 1

    def _on_pose(self, msg) -> None:
        self.answer_count += 1
        self.answers[stamp_ns(msg.header.stamp)] = Answer(
            time.monotonic(), duration_s(msg.processing_time), bool(msg.valid))

    def _on_diag(self, msg) -> None:
        for st in msg.status:
            if st.name.startswith(f"{NODE_NAME}:"):
                values = {}
                for kv in st.values:
                    try:
                        values[kv.key] = float(kv.value)
                    except ValueError:
                        pass
                self.status = values
                level = st.level[0] if isinstance(st.level, bytes) else int(st.level)
                self.levels.append((level, str(st.message)))
                self.status_count += 1

    # -- waiting --------------------------------------------------------------------------
    @staticmethod
    def wait_for(condition, timeout_s: float, step_s: float = 0.005) -> bool:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(step_s)
        return True

    def wait_ready(self, child: NodeProcess, image_pub, timeout_s: float = 180.0) -> bool:
        """Until the child subscribes to ``image_pub``'s topic and camera_info (or dies)."""
        ok = self.wait_for(lambda: (image_pub.get_subscription_count() > 0
                                    and self.pub_info.get_subscription_count() > 0)
                           or not child.alive(), timeout_s, step_s=0.05)
        time.sleep(0.5)  # let the reliable readers and writers match both ways
        return ok and child.alive()

    def fresh_status(self, timeout_s: float = 10.0) -> dict[str, float]:
        """The first /diagnostics status that arrives from now on (the last one on timeout)."""
        n = self.status_count
        self.wait_for(lambda: self.status_count > n, timeout_s, step_s=0.02)
        return dict(self.status)

    # -- parameters -----------------------------------------------------------------------
    def _call(self, client, request, timeout_s: float = 30.0, try_s: float = 3.0):
        """Call a side-effect-free (or idempotent) service until it answers (None if not).

        A response sent before the server matched our response reader is lost, so the
        request is sent again until one answer arrives (see test/ros_helpers.py).
        """
        deadline = time.monotonic() + timeout_s
        if not client.wait_for_service(timeout_sec=timeout_s):
            return None
        while time.monotonic() < deadline:
            fut = client.call_async(request)
            if self.wait_for(fut.done, min(try_s, max(deadline - time.monotonic(), 0.0))):
                return fut.result()
            client.remove_pending_request(fut)
        return None

    def set_parameters(self, values: dict, atomically: bool = False) -> list[tuple[bool, str]]:
        """(successful, reason) per parameter; all at once when ``atomically``."""
        params = [Parameter(name=k, value=parameter_value(v)) for k, v in values.items()]
        if atomically:
            res = self._call(self._set_atomic, SetParametersAtomically.Request(parameters=params))
            return [] if res is None else [(res.result.successful, res.result.reason)]
        res = self._call(self._set, SetParameters.Request(parameters=params))
        return [] if res is None else [(r.successful, r.reason) for r in res.results]

    def get_parameters(self, names: list[str]) -> dict:
        res = self._call(self._get, GetParameters.Request(names=list(names)))
        return {} if res is None else {n: plain_value(v) for n, v in zip(names, res.values)}


class FrameStream:
    """Valid frames of a moving hand, stamped with the wall clock, published on demand."""

    def __init__(self, peer, frames) -> None:
        self.peer = peer
        self.msgs = [(intrinsics_to_camera_info(f.intrinsics, header(0)),
                      depth_mm_to_image(f.depth_mm, header(0))) for f in frames]
        self.i = 0
        self.last_ns = 0
        self.sent_at: dict[int, float] = {}
        self.transport = "raw"
        self._frames = frames
        self._compressed: list = []

    def _image(self, k: int):
        """The k-th frame as an Image, or as a CompressedImage (rvl) for compressedDepth."""
        if self.transport == "raw":
            return "image", self.msgs[k][1]
        if not self._compressed:
            for f in self._frames:
                fmt, data = depth_mm_to_compressed(f.depth_mm, "16UC1", "rvl")
                self._compressed.append(CompressedImage(format=fmt, data=data))
        return "compressed", self._compressed[k]

    def send(self) -> int:
        """Publish the next frame (camera_info, then image); returns its stamp [ns]."""
        stamp = max(time.time_ns(), self.last_ns + 1)
        self.last_ns = stamp
        k = self.i % len(self.msgs)
        self.i += 1
        info = self.msgs[k][0]
        kind, img = self._image(k)
        info.header = img.header = header(stamp)
        self.peer.publish("info", info)
        self.peer.publish(kind, img)
        self.sent_at[stamp] = time.monotonic()
        return stamp

    def send_at(self, stamp_ns: int, image_first: bool = False, info=None) -> int:
        """Publish the next frame stamped ``stamp_ns`` (any: backwards, zero, far ahead).

        camera_info first unless ``image_first``; ``info``: a CameraInfo to send instead of
        the frame's own. Returns the stamp.
        """
        k = self.i % len(self.msgs)
        self.i += 1
        cam = self.msgs[k][0] if info is None else info
        kind, img = self._image(k)
        cam.header = img.header = header(stamp_ns)
        for what, msg in ([(kind, img), ("info", cam)] if image_first
                          else [("info", cam), (kind, img)]):
            self.peer.publish(what, msg)
        self.sent_at[stamp_ns] = time.monotonic()
        return stamp_ns

    def one_at_a_time(self, n: int, timeout_s: float = 120.0) -> list[float]:
        """Send ``n`` frames, each after the previous was answered; processing times [s]."""
        times = []
        for _ in range(n):
            stamp = self.send()
            if self.peer.wait_for(lambda s=stamp: s in self.peer.answers, timeout_s):
                times.append(self.peer.answers[stamp].processing_s)
        return times


__all__ = ["LARGE_IMAGES_PROFILE", "NAMESPACE", "NODE_NAME", "Answer", "FrameStream",
           "NodeProcess", "Peer", "stamp_ns"]
