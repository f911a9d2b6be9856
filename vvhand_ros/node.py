"""HandPoseNode: depth image + camera_info in, fused 3D hand joints out.

A thin node: it declares parameters, decodes messages (vvhand_ros.conversions), hands
frames to the one ``VirtualViewPipeline`` and publishes what comes back. Subscription
callbacks only convert and store; a worker thread processes the newest depth frame and
counts every frame it had to skip, so a slow model never builds a queue.

Topics (relative names, remapped in launch files):
  subscribes  depth/image (sensor_msgs/Image), depth/camera_info (sensor_msgs/CameraInfo)
  publishes   ~/hand_pose (vvhand/HandPose), ~/joints (geometry_msgs/PoseArray),
              ~/markers (visualization_msgs/MarkerArray), /tf (one frame per joint),
              /diagnostics (diagnostic_msgs/DiagnosticArray, when importable)
See docs/ros.md for every parameter.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import rclpy
import torch
from geometry_msgs.msg import PoseArray
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.qos import (
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_system_default,
)
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from vvhand.msg import HandPose
from vvhand_core.assets import default_model_path
from vvhand_core.checkpoint import CheckpointError
from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline
from vvhand_ros.conversions import (
    ConversionError,
    camera_info_to_intrinsics,
    check_image_matches_info,
    hand_pose_msg,
    image_to_depth_mm,
    joint_transforms,
    marker_array_msg,
    pose_array_msg,
)

try:  # diagnostic_msgs is optional: status is always logged, published when available
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
except ImportError:  # pragma: no cover - depends on the installation
    DiagnosticArray = None

DEPTH_QOS_CHOICES = ("sensor_data", "reliable", "system_default")
SELECTORS = ("student", "teacher", "uniform")
FUSIONS = ("confidence", "average")
# Parameters that a running node accepts; the others need a restart.
RUNTIME_PARAMETERS = (
    "num_views", "selector", "fusion", "publish_tf", "publish_markers", "tf_prefix",
    "cube_mm", "min_depth_mm", "max_depth_mm",
)  # fmt: skip


def depth_qos(choice: str) -> QoSProfile:
    """Subscription QoS for depth and camera_info: keep only the newest message.

    sensor_data = best effort (accepts reliable and best-effort publishers),
    reliable = reliable, system_default = the RMW's default profile.
    """
    if choice == "system_default":
        return qos_profile_system_default
    if choice not in DEPTH_QOS_CHOICES:
        raise ValueError(f"depth_qos must be one of {DEPTH_QOS_CHOICES}, got {choice!r}")
    reliability = (
        ReliabilityPolicy.BEST_EFFORT if choice == "sensor_data" else ReliabilityPolicy.RELIABLE
    )
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=reliability)


class LatestSlot:
    """A one-item mailbox: ``put`` replaces what was not taken yet (and says so)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item = None
        self._closed = False

    def put(self, item) -> bool:
        """Store ``item``; True when it replaced an item nobody took (a dropped frame)."""
        with self._cond:
            replaced = self._item is not None
            self._item = item
            self._cond.notify()
            return replaced

    def take(self, timeout_s: float):
        """The newest item, or None after ``timeout_s`` or once closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout_s)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake up and stop any waiting ``take``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclass
class NodeStats:
    """Counters reported in the log and on /diagnostics."""

    frames_in: int = 0
    processed: int = 0
    published: int = 0
    dropped: int = 0
    no_hand: int = 0
    rejected: int = 0
    failed: int = 0
    latency_ms: deque = field(default_factory=lambda: deque(maxlen=300))

    def as_dict(self) -> dict[str, float]:
        """Counters and latency percentiles (ms) over the recent frames."""
        lat = np.asarray(self.latency_ms, dtype=np.float64)
        out = {k: float(getattr(self, k)) for k in
               ("frames_in", "processed", "published", "dropped", "no_hand", "rejected", "failed")}
        out["latency_p50_ms"] = float(np.percentile(lat, 50)) if lat.size else float("nan")
        out["latency_p95_ms"] = float(np.percentile(lat, 95)) if lat.size else float("nan")
        return out


class ThrottledReporter:
    """Log each kind of problem at most once per period, with how often it happened."""

    def __init__(self, logger, period_s: float = 5.0) -> None:
        self._logger = logger
        self._period_s = period_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def report(self, kind: str, text: str, level: str = "warning") -> None:
        """Log ``text`` unless ``kind`` was logged less than a period ago."""
        now = time.monotonic()
        if now - self._last.get(kind, -1e9) < self._period_s:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        n = self._suppressed.pop(kind, 0)
        suffix = f" (and {n} more like it in the last {self._period_s:.0f} s)" if n else ""
        self._last[kind] = now
        # rclpy binds one severity to each logging call site: one call per level
        if level == "error":
            self._logger.error(text + suffix)
        elif level == "info":
            self._logger.info(text + suffix)
        else:
            self._logger.warning(text + suffix)


class HandPoseNode(Node):
    """Subscribes to a depth image and its camera_info, publishes the fused hand pose."""

    def __init__(self, pipeline: VirtualViewPipeline | None = None, **node_kwargs) -> None:
        """Declare parameters, load the model, then create publishers and subscriptions.

        ``pipeline`` replaces loading ``model_path`` (used by tests and embedding code).
        Raises CheckpointError (naming the file) when the model cannot be loaded; no
        subscription exists before the model is ready.
        """
        self._running = False
        self._slot = LatestSlot()
        self._worker: threading.Thread | None = None
        super().__init__("hand_pose_node", **node_kwargs)
        self._declare_parameters()
        gp = self.get_parameter
        try:
            self.pipeline = pipeline if pipeline is not None else self._load_pipeline()
        except Exception:
            super().destroy_node()  # no half-built node left in the context
            raise
        self._reporter = ThrottledReporter(self.get_logger())
        self.stats = NodeStats()
        self._lock = threading.Lock()  # guards pipeline configuration vs processing
        self._info: CameraInfo | None = None
        self._publish_tf = gp("publish_tf").value
        self._publish_markers = gp("publish_markers").value
        self._tf_prefix = gp("tf_prefix").value

        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_pose = self.create_publisher(HandPose, "~/hand_pose", reliable)
        self.pub_joints = self.create_publisher(PoseArray, "~/joints", reliable)
        self.pub_markers = self.create_publisher(MarkerArray, "~/markers", reliable)
        self._tf_send = self._make_tf_sender()
        self.pub_diag = (
            self.create_publisher(DiagnosticArray, "/diagnostics", 10) if DiagnosticArray else None
        )

        qos = depth_qos(gp("depth_qos").value)
        self.create_subscription(CameraInfo, "depth/camera_info", self._on_info, qos)
        self.create_subscription(Image, "depth/image", self._on_image, qos)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(float(gp("status_period_s").value), self._report_status)
        self._worker = threading.Thread(target=self._work, name="vvhand-worker", daemon=True)
        self._running = True
        self._worker.start()
        cfg = self.pipeline.config
        self.get_logger().info(
            f"ready: selector={cfg.selector} num_views={cfg.num_views} fusion={cfg.fusion} "
            f"skeleton={self.pipeline.skeleton.name}; waiting for "
            f"{self.resolve_topic_name('depth/image')} and "
            f"{self.resolve_topic_name('depth/camera_info')}"
        )

    # -- parameters ---------------------------------------------------------------------
    def _declare_parameters(self) -> None:
        def desc(text, read_only=False, **ranges):
            return ParameterDescriptor(description=text, read_only=read_only, **ranges)

        def frange(lo, hi):
            return [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]

        self.declare_parameter("model_path", "", desc(
            "vvhand checkpoint (.pt); empty = the shipped default model", read_only=True))
        self.declare_parameter("device", "auto", desc(
            "torch device: auto (cuda if available, else cpu), cpu, cuda, cuda:N", read_only=True))
        self.declare_parameter("renderer", "auto", desc(
            "virtual-view renderer: auto | torch | pycuda", read_only=True))
        self.declare_parameter("depth_qos", "sensor_data", desc(
            "QoS of the depth and camera_info subscriptions: sensor_data (best effort) | "
            "reliable | system_default", read_only=True))
        self.declare_parameter("num_views", 3, desc(
            "N views rendered and fused (select: 1..25; uniform: 1, 3, 9, 15 or 25)",
            integer_range=[IntegerRange(from_value=1, to_value=25, step=1)]))
        self.declare_parameter("selector", "student", desc(
            "view selection: student (renders N views) | teacher (renders and scores all 25) "
            "| uniform (fixed grid of N views)"))
        self.declare_parameter("fusion", "confidence", desc(
            "fusion of the N views: confidence (softmax of the logits) | average"))
        self.declare_parameter("cube_mm", 250.0, desc(
            "edge of the cube cropped around the hand centre [mm]",
            floating_point_range=frange(100, 600)))
        self.declare_parameter("min_depth_mm", 200.0, desc(
            "nearest depth searched for a hand [mm]", floating_point_range=frange(0, 10000)))
        self.declare_parameter("max_depth_mm", 1200.0, desc(
            "farthest depth searched for a hand [mm]", floating_point_range=frange(0, 10000)))
        self.declare_parameter("publish_tf", True, desc(
            "broadcast one TF frame per joint (<tf_prefix>hand_<joint> under the image frame)"))
        self.declare_parameter("tf_prefix", "", desc("prefix of the joint TF frame names"))
        self.declare_parameter("publish_markers", True, desc("publish RViz markers on ~/markers"))
        self.declare_parameter("num_threads", 0, desc(
            "torch CPU threads for the networks; 0 = torch's default (one per core)",
            read_only=True, integer_range=[IntegerRange(from_value=0, to_value=256, step=1)]))
        self.declare_parameter("status_period_s", 10.0, desc(
            "period of the status log line and /diagnostics [s]", read_only=True,
            floating_point_range=frange(0.1, 3600)))

    def _pipeline_config(self) -> PipelineConfig:
        gp = self.get_parameter
        return PipelineConfig(
            selector=gp("selector").value,
            num_views=int(gp("num_views").value),
            fusion=gp("fusion").value,
            device=gp("device").value,
            renderer=gp("renderer").value,
            cube_mm=float(gp("cube_mm").value),
            min_depth_mm=float(gp("min_depth_mm").value),
            max_depth_mm=float(gp("max_depth_mm").value),
        )

    def _load_pipeline(self) -> VirtualViewPipeline:
        threads = int(self.get_parameter("num_threads").value)
        if threads > 0:
            torch.set_num_threads(threads)
        path = self.get_parameter("model_path").value or str(default_model_path())
        self.get_logger().info(f"loading model {path}")
        return VirtualViewPipeline.from_checkpoint(path, self._pipeline_config())

    def _on_set_parameters(self, params) -> SetParametersResult:
        changes = {}
        for p in params:
            if p.name not in RUNTIME_PARAMETERS:
                continue
            changes[p.name] = p.value
        pipe_keys = ("num_views", "selector", "fusion", "cube_mm", "min_depth_mm", "max_depth_mm")
        pipe_changes = {k: v for k, v in changes.items() if k in pipe_keys}
        if pipe_changes:
            with self._lock:
                try:
                    self.pipeline.configure(**pipe_changes)
                except (ValueError, TypeError) as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
        self._publish_tf = changes.get("publish_tf", self._publish_tf)
        self._publish_markers = changes.get("publish_markers", self._publish_markers)
        self._tf_prefix = changes.get("tf_prefix", self._tf_prefix)
        if changes:
            self.get_logger().info(f"parameters changed: {changes}")
        return SetParametersResult(successful=True)

    # -- input ----------------------------------------------------------------------------
    def _on_info(self, msg: CameraInfo) -> None:
        self._info = msg

    def _on_image(self, msg: Image) -> None:
        self.stats.frames_in += 1
        if self._slot.put((msg, time.monotonic())):
            self.stats.dropped += 1

    # -- processing -----------------------------------------------------------------------
    def _work(self) -> None:
        while self._running:
            item = self._slot.take(timeout_s=0.2)
            if item is None:
                continue
            try:
                self._process(*item)
            except Exception as exc:  # the node must keep serving whatever happens
                self.stats.failed += 1
                try:
                    self._reporter.report(
                        f"failed:{type(exc).__name__}",
                        f"frame failed: {type(exc).__name__}: {exc}", level="error")
                except Exception:  # noqa: BLE001 - a broken logger must not stop the worker
                    pass

    def _process(self, msg: Image, t_in: float) -> None:
        info = self._info
        if info is None:
            self.stats.rejected += 1
            self._reporter.report("no_info", "no camera_info received yet on "
                                  f"{self.resolve_topic_name('depth/camera_info')}; frame skipped")
            return
        try:
            intr = camera_info_to_intrinsics(info)
            depth_mm = image_to_depth_mm(msg)
            check_image_matches_info(depth_mm.shape, intr)
        except ConversionError as exc:
            self.stats.rejected += 1
            self._reporter.report(f"reject:{str(exc)[:40]}", f"frame rejected: {exc}")
            return
        with self._lock:
            result = self.pipeline.run(depth_mm, intr)
            skeleton = self.pipeline.skeleton
        self.stats.processed += 1
        if not result.valid:
            self.stats.no_hand += 1
            self._reporter.report("no_hand", f"no hand: {result.message}", level="info")
        latency_s = time.monotonic() - t_in
        header = msg.header
        self.pub_pose.publish(hand_pose_msg(
            header, skeleton, result.joints_mm, result.centre_mm, result.cube_mm,
            result.num_candidates, result.selected_views, result.weights, result.logits,
            result.score, result.valid, latency_s))
        if result.valid:
            self.pub_joints.publish(pose_array_msg(header, result.joints_mm))
            if self._publish_markers:
                self.pub_markers.publish(marker_array_msg(header, skeleton, result.joints_mm))
            if self._publish_tf:
                self._tf_send(joint_transforms(header, skeleton, result.joints_mm,
                                               self._tf_prefix))
        self.stats.published += 1
        self.stats.latency_ms.append(1000.0 * (time.monotonic() - t_in))

    def _make_tf_sender(self):
        """tf2_ros.TransformBroadcaster when importable, else TFMessage on /tf directly."""
        try:
            from tf2_ros import TransformBroadcaster

            broadcaster = TransformBroadcaster(self)
            return broadcaster.sendTransform
        except ImportError:
            from tf2_msgs.msg import TFMessage

            pub = self.create_publisher(TFMessage, "/tf", QoSProfile(depth=100))
            return lambda transforms: pub.publish(TFMessage(transforms=transforms))

    # -- status ---------------------------------------------------------------------------
    def _report_status(self) -> None:
        s = self.stats.as_dict()
        self.get_logger().info(
            "status: in={frames_in:.0f} published={published:.0f} dropped={dropped:.0f} "
            "no_hand={no_hand:.0f} rejected={rejected:.0f} failed={failed:.0f} "
            "latency p50={latency_p50_ms:.1f} ms p95={latency_p95_ms:.1f} ms".format(**s))
        if self.pub_diag is None:
            return
        problems = s["rejected"] + s["failed"]
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if problems else DiagnosticStatus.OK,
            name=f"{self.get_name()}: hand pose",
            message="rejected or failed frames" if problems else "ok",
            hardware_id="vvhand",
            values=[KeyValue(key=k, value=f"{v:g}") for k, v in s.items()],
        )
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(arr)

    def destroy_node(self) -> None:
        """Stop the worker thread, then the node."""
        self._running = False
        self._slot.close()
        if self._worker is not None and self._worker.is_alive():
            self._worker.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """`ros2 run vvhand hand_pose_node`: exits 1 with one clear message on a bad model."""
    rclpy.init(args=args)
    node = None
    try:
        node = HandPoseNode()
    except (CheckpointError, ValueError) as exc:
        rclpy.logging.get_logger("hand_pose_node").fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        return 1
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
