"""HandPoseNode: depth image + camera_info in, fused 3D hand joints out.

A thin node: it declares parameters (vvhand_ros.node_params), pairs each depth image with
the camera_info of its stamp (vvhand_ros.pairing), hands the pair to a worker thread that
decodes it (vvhand_ros.depth_input: raw or compressedDepth, camera model, undistortion)
and runs the one ``VirtualViewPipeline``, then publishes what comes back. Callbacks only
pair and store; the worker processes the newest pair and counts every frame it had to skip,
so a slow model never builds a queue.

Topics (relative names, remapped in launch files):
  subscribes  depth/image (sensor_msgs/Image) or, with depth_transport compressedDepth,
              depth/image/compressedDepth (sensor_msgs/CompressedImage; the base name is
              resolved first, as image_transport does), depth/camera_info (CameraInfo);
              sensor-data QoS, overridable with qos_overrides.<topic>.subscription.*
  publishes   ~/hand_pose (vvhand/HandPose), ~/joints (geometry_msgs/PoseArray),
              ~/markers (visualization_msgs/MarkerArray), /tf (one frame per joint),
              /diagnostics (diagnostic_msgs/DiagnosticArray, when importable)
See docs/ros.md for every parameter.
"""

from __future__ import annotations

import threading
import time

import rclpy
import torch
from geometry_msgs.msg import PoseArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import InvalidQosOverridesError, QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from vvhand.msg import HandPose
from vvhand_core.assets import default_model_path
from vvhand_core.checkpoint import CheckpointError
from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline
from vvhand_ros.conversions import (
    ConversionError,
    hand_pose_msg,
    joint_transforms,
    marker_array_msg,
    pose_array_msg,
)
from vvhand_ros.depth_input import DepthInput, transport_topic
from vvhand_ros.node_params import RUNTIME_PARAMETERS, declare_parameters
from vvhand_ros.node_support import LatestSlot, NodeStats, ThrottledReporter
from vvhand_ros.pairing import Pair, StampPairer

try:  # diagnostic_msgs is optional: status is always logged, published when available
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
except ImportError:  # pragma: no cover - depends on the installation
    DiagnosticArray = None

PIPELINE_PARAMETERS = ("num_views", "selector", "fusion", "cube_mm", "min_depth_mm",
                       "max_depth_mm")


def sensor_data_qos() -> QoSProfile:
    """A fresh copy of rclpy's sensor-data profile (best effort, keep last 5, volatile)."""
    ref = qos_profile_sensor_data
    return QoSProfile(history=ref.history, depth=ref.depth, reliability=ref.reliability,
                      durability=ref.durability)


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class HandPoseNode(Node):
    """Subscribes to a depth image and its camera_info, publishes the fused hand pose."""

    def __init__(self, pipeline: VirtualViewPipeline | None = None, **node_kwargs) -> None:
        """Declare parameters, load the model, then create publishers and subscriptions.

        ``pipeline`` replaces loading ``model_path`` (used by tests and embedding code).
        Raises CheckpointError (naming the file) when the model cannot be loaded, ValueError
        for an invalid depth_transport or camera_model; no subscription exists before the
        model is ready.
        """
        self._running = False
        self._slot = LatestSlot()
        self._worker: threading.Thread | None = None
        super().__init__("hand_pose_node", **node_kwargs)
        declare_parameters(self)
        gp = self.get_parameter
        try:
            transport = gp("depth_transport").value
            base_topic = self.resolve_topic_name("depth/image")
            self._image_topic = transport_topic(base_topic, transport)
            self._input = DepthInput(gp("camera_model").value, base_topic)
            self.pipeline = pipeline if pipeline is not None else self._load_pipeline()
        except Exception:
            super().destroy_node()  # no half-built node left in the context
            raise
        self._info_topic = self.resolve_topic_name("depth/camera_info")
        self._pairer = StampPairer(round(gp("sync_slop_s").value * 1e9),
                                   gp("sync_queue_size").value)
        self._reporter = ThrottledReporter(self.get_logger())
        self.stats = NodeStats()
        self._lock = threading.Lock()  # guards pipeline configuration vs processing
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

        # REP-2003: sensor-data QoS; qos_overrides.<topic>.subscription.* change it (rclpy
        # writes the overrides into the profile it is given: one copy per subscription)
        overrides = QoSOverridingOptions.with_default_policies()
        self.create_subscription(CameraInfo, self._info_topic, self._on_info,
                                 sensor_data_qos(), qos_overriding_options=overrides)
        self.create_subscription(Image if transport == "raw" else CompressedImage,
                                 self._image_topic, self._on_image, sensor_data_qos(),
                                 qos_overriding_options=overrides)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(float(gp("status_period_s").value), self._report_status)
        self._worker = threading.Thread(target=self._work, name="vvhand-worker", daemon=True)
        self._running = True
        self._worker.start()
        cfg = self.pipeline.config
        self.get_logger().info(
            f"ready: selector={cfg.selector} num_views={cfg.num_views} fusion={cfg.fusion} "
            f"skeleton={self.pipeline.skeleton.name}; waiting for {self._image_topic} and "
            f"{self._info_topic} (paired by stamp)")

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
        pipe_changes = {k: v for k, v in changes.items() if k in PIPELINE_PARAMETERS}
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

    # -- input: pair by stamp, keep only the newest pair ----------------------------------
    def _on_info(self, msg: CameraInfo) -> None:
        self._route(self._pairer.add_info(stamp_ns(msg.header.stamp), msg))

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.stats.frames_in += 1
        if not self._pairer.has_info():
            self._reporter.report("no_info", f"no camera_info received yet on "
                                  f"{self._info_topic}; depth frames wait for it")
        self._route(self._pairer.add_image(stamp_ns(msg.header.stamp), (msg, time.monotonic())))

    def _route(self, outcomes) -> None:
        for out in outcomes:
            if isinstance(out, Pair):
                msg, t_in = out.image
                if self._slot.put((msg, out.info, t_in)):
                    self.stats.dropped += 1
            else:
                self.stats.count_unpaired(out.kind)
                self._reporter.report(f"unpaired:{out.kind}", f"depth frame dropped on "
                                      f"{self._image_topic}: {out.reason} on {self._info_topic}")

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

    def _process(self, msg: Image | CompressedImage, info: CameraInfo, t_in: float) -> None:
        try:
            depth_mm, intr = self._input.prepare(msg, info)
        except ConversionError as exc:
            self.stats.rejected += 1
            self._reporter.report(f"reject:{str(exc)[:40]}", f"frame rejected: {exc}")
            return
        for note in self._input.notes():
            self.get_logger().warning(note)
        with self._lock:
            result = self.pipeline.run(depth_mm, intr)
            skeleton = self.pipeline.skeleton
        self.stats.processed += 1
        if not result.valid:
            self.stats.no_hand += 1
            self._reporter.report("no_hand", f"no hand: {result.message}", level="info")
        header = msg.header
        self.pub_pose.publish(hand_pose_msg(
            header, skeleton, result.joints_mm, result.centre_mm, result.cube_mm,
            result.num_candidates, result.selected_views, result.weights, result.logits,
            result.score, result.valid, time.monotonic() - t_in))
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
            "unpaired={unpaired:.0f} no_hand={no_hand:.0f} rejected={rejected:.0f} "
            "failed={failed:.0f} latency p50={latency_p50_ms:.1f} ms "
            "p95={latency_p95_ms:.1f} ms".format(**s))
        if self.pub_diag is None:
            return
        problems = s["rejected"] + s["failed"] + s["unpaired"]
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if problems else DiagnosticStatus.OK,
            name=f"{self.get_name()}: hand pose",
            message="unpaired, rejected or failed frames" if problems else "ok",
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
    except (CheckpointError, InvalidQosOverridesError, ValueError) as exc:
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
