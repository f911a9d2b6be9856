"""What the plain and the lifecycle hand_pose_node share: set-up steps, callbacks, worker.

:class:`HandPoseCore` is a mixin for an rclpy ``Node`` (vvhand_ros.node) or lifecycle
``Node`` (vvhand_ros.lifecycle_node). Its steps are called in order by the plain node's
constructor, and by the lifecycle transitions (configure: ``_configure``,
``_create_outputs``; activate: ``_activate``; deactivate: ``_deactivate``; cleanup:
``_destroy_outputs``, ``_free``). Callbacks only pair and store; a worker thread decodes
the newest pair, runs the pipeline and publishes (vvhand_ros.frame_output builds the
hands; ~/palm_pose, ~/joints, ~/markers, ~/joint_states and TF only while they have a
subscriber); services and the debug image: vvhand_ros.node_controls. Topics, frames and
parameters: see vvhand_ros.node and docs/ros.md.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

from geometry_msgs.msg import PoseArray, PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, JointState
from visualization_msgs.msg import MarkerArray

from vvhand_core.assets import alternate_model_path, default_model_path
from vvhand_core.load import load_pipeline
from vvhand_msgs.msg import HandPose, HandPoseArray
from vvhand_ros.conversions import ConversionError
from vvhand_ros.depth_input import DepthInput, require_frame_id, transport_topic
from vvhand_ros.diagnostics import RateDelayMonitor, assess, dropped_fraction
from vvhand_ros.frame_output import FrameOutput, Wanted, settings_from
from vvhand_ros.node_controls import DISABLED_MESSAGE, NodeControls
from vvhand_ros.node_params import (
    FIT_PARAMETERS,
    PIPELINE_PARAMETERS,
    RUNTIME_PARAMETERS,
    check_depth_range,
    check_num_views,
    fit_config,
    pipeline_options,
    refuse_retired,
)
from vvhand_ros.node_support import LatestSlot, NodeStats, ThrottledReporter, problem_kind
from vvhand_ros.pairing import Pair, StampPairer
from vvhand_ros.param_units import core_changes, unit_warning
from vvhand_ros.target_frame import TransformUnavailable, make_target_frame

if TYPE_CHECKING:
    from vvhand_core.pipeline import VirtualViewPipeline

try:  # diagnostic_msgs is optional: status is always logged, published when available
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
except ImportError:  # pragma: no cover - depends on the installation
    DiagnosticArray = None

PROBLEMS = ("rejected", "failed", "unpaired", "tf_unavailable")
DROP_COUNTS = ("dropped", "paired")  # their ratio since the last report: dropped_fraction


def sensor_data_qos() -> QoSProfile:
    """A fresh copy of rclpy's sensor-data profile (best effort, keep last 5, volatile)."""
    ref = qos_profile_sensor_data
    return QoSProfile(history=ref.history, depth=ref.depth, reliability=ref.reliability,
                      durability=ref.durability)


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class HandPoseCore(NodeControls):
    """Set-up steps, callbacks and the worker of hand_pose_node (see the module doc)."""

    pipeline: VirtualViewPipeline | None = None

    def _core_defaults(self) -> None:
        """Attributes that must exist before rclpy's Node constructor runs."""
        self._running = False
        self._slot = LatestSlot()
        self._worker: threading.Thread | None = None
        self._outputs: list = []
        self._inputs: list = []
        self._timer = None

    # -- configure ------------------------------------------------------------------------
    def _configure(self, pipeline: VirtualViewPipeline | None) -> None:
        """Read the read-only parameters, make the target frame, load the model.

        Raises ValueError (bad transport, camera model, target_frame without tf2_ros) or
        CheckpointError (the model file); nothing is subscribed yet.
        """
        gp = self.get_parameter
        self._transport = gp("depth_transport").value
        base_topic = self.resolve_topic_name("depth/image")
        self._image_topic = transport_topic(base_topic, self._transport)
        self._info_topic = self.resolve_topic_name("depth/camera_info")
        self._input = DepthInput(gp("camera_model").value, base_topic)
        self._target = make_target_frame(self, gp("target_frame").value,
                                         gp("tf_timeout_s").value)
        check_num_views(gp("selector").value, gp("num_views").value)
        check_depth_range(gp("min_depth_m").value, gp("max_depth_m").value)
        self.pipeline = pipeline if pipeline is not None else self._load_pipeline()
        self._pairer = StampPairer(round(gp("sync_slop_s").value * 1e9),
                                   gp("sync_queue_size").value)
        self._reporter = ThrottledReporter(self.get_logger())
        self.stats = NodeStats()
        self._last_problems = dict.fromkeys((*PROBLEMS, *DROP_COUNTS), 0)
        self._monitor = RateDelayMonitor(gp("diag_window_s").value)
        self._lock = threading.Lock()  # guards pipeline and output state vs processing
        self._frame_out = FrameOutput(self.pipeline.skeleton, self.get_fully_qualified_name())
        self._frame_out.configure(settings_from(lambda name: gp(name).value))

    def _pipeline_options(self) -> dict:
        """The pipeline's configuration (PipelineConfig fields, mm) from the parameters."""
        return pipeline_options(lambda name: self.get_parameter(name).value)

    def _load_pipeline(self) -> VirtualViewPipeline:
        """The torch pipeline, or without torch the lite one (vvhand_core.load)."""
        path = self.get_parameter("model_path").value or str(default_model_path())
        alternate = alternate_model_path(self.get_parameter("alternate_model").value)
        self.get_logger().info(f"loading model {path}"
                               + (f" and alternate model {alternate}" if alternate else ""))
        pipeline = load_pipeline(path, self._pipeline_options(),
                                 int(self.get_parameter("num_threads").value), alternate)
        self.get_logger().info(f"networks run in {pipeline.config.backend}")
        return pipeline

    def _free(self) -> None:
        """Drop the model (lifecycle cleanup)."""
        self.pipeline = None
        self._frame_out = None
        torch = sys.modules.get("torch")  # only where the torch pipeline ran
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _create_outputs(self) -> None:
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        pub = self.create_publisher
        self.pub_pose = pub(HandPose, "~/hand_pose", reliable)
        self.pub_hands = pub(HandPoseArray, "~/hands", reliable)
        self.pub_palm = pub(PoseStamped, "~/palm_pose", reliable)
        self.pub_joints = pub(PoseArray, "~/joints", reliable)
        self.pub_markers = pub(MarkerArray, "~/markers", reliable)
        self.pub_joint_states = pub(JointState, "~/joint_states", reliable)
        self._outputs = [self.pub_pose, self.pub_hands, self.pub_palm, self.pub_joints,
                         self.pub_markers, self.pub_joint_states]
        self._tf_send, self._tf_pub = self._make_tf_sender()
        self.pub_diag = pub(DiagnosticArray, "/diagnostics", 10) if DiagnosticArray else None
        if self.pub_diag is not None:
            self._outputs.append(self.pub_diag)
        self._create_controls()

    def _destroy_outputs(self) -> None:
        self._destroy_controls()
        for entity in self._outputs:
            self.destroy_publisher(entity)
        self._outputs = []

    def _make_tf_sender(self):
        """(send, /tf publisher or None) for the TF outputs.

        tf2_ros.TransformBroadcaster when importable (its publisher where it exposes one),
        else TFMessage on /tf directly.
        """
        try:
            from tf2_ros import TransformBroadcaster

            broadcaster = TransformBroadcaster(self)
            return broadcaster.sendTransform, getattr(broadcaster, "pub_tf", None)
        except ImportError:
            from tf2_msgs.msg import TFMessage

            pub = self.create_publisher(TFMessage, "/tf", QoSProfile(depth=100))
            self._outputs.append(pub)
            return lambda transforms: pub.publish(TFMessage(transforms=transforms)), pub

    def _wanted(self) -> Wanted:
        """The optional outputs with a subscriber now (/tf: yes where its publisher is unknown)."""
        def heard(pub) -> bool:
            return pub is None or pub.get_subscription_count() > 0

        return Wanted(palm=heard(self.pub_palm), joints=heard(self.pub_joints),
                      markers=heard(self.pub_markers), tf=heard(self._tf_pub),
                      joint_states=heard(self.pub_joint_states))

    # -- activate / deactivate ------------------------------------------------------------
    def _subscribe(self) -> None:
        """Subscribe to camera_info and the depth image (REP-2003 sensor-data QoS, overridable)."""
        overrides = QoSOverridingOptions.with_default_policies()
        image_type = Image if self._transport == "raw" else CompressedImage
        self._inputs = [
            self.create_subscription(CameraInfo, self._info_topic, self._on_info,
                                     sensor_data_qos(), qos_overriding_options=overrides),
            self.create_subscription(image_type, self._image_topic, self._on_image,
                                     sensor_data_qos(), qos_overriding_options=overrides),
        ]

    def _unsubscribe(self) -> None:
        for sub in self._inputs:
            self.destroy_subscription(sub)
        self._inputs = []

    def _activate(self) -> None:
        """Subscribe and start the worker (enabled again: see vvhand_ros.node_controls)."""
        self.enabled = True
        self._subscribe()
        self._timer = self.create_timer(float(self.get_parameter("status_period_s").value),
                                        self._report_status)
        self._slot = LatestSlot()
        self._running = True
        self._worker = threading.Thread(target=self._work, name="vvhand-worker", daemon=True)
        self._worker.start()
        cfg = self.pipeline.config
        self.get_logger().info(
            f"ready: selector={cfg.selector} num_views={cfg.num_views} fusion={cfg.fusion} "
            f"skeleton={self.pipeline.skeleton.name}; waiting for {self._image_topic} and "
            f"{self._info_topic} (paired by stamp)")

    def _deactivate(self) -> None:
        """Unsubscribe and stop the worker (it finishes the frame in hand first)."""
        self._unsubscribe()
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        self._running = False
        self._slot.close()
        if self._worker is not None and self._worker.is_alive():
            self._worker.join(timeout=5.0)
        self._worker = None

    # -- parameters -----------------------------------------------------------------------
    def _on_set_parameters(self, params) -> SetParametersResult:
        """Apply a runtime change; refuse it with a reason when invalid.

        SI parameters reach the pipeline in mm (vvhand_ros.param_units); a retired
        millimetre name (cube_mm ...) is refused, naming the parameter that replaced it.
        """
        retired = refuse_retired({p.name: p.value for p in params})
        if retired:
            self.get_logger().error(f"parameter change refused: {retired}")
            return SetParametersResult(successful=False, reason=retired)
        changes = {p.name: p.value for p in params if p.name in RUNTIME_PARAMETERS}
        if not changes or self.pipeline is None:  # unconfigured lifecycle node: stored only
            return SetParametersResult(successful=True)

        def value(name):
            return changes[name] if name in changes else self.get_parameter(name).value

        with self._lock:
            try:
                pipe_changes = core_changes(
                    {k: v for k, v in changes.items() if k in PIPELINE_PARAMETERS})
                if set(FIT_PARAMETERS) & changes.keys():
                    pipe_changes["fit"] = fit_config(value)
                settings = settings_from(value)
                check_num_views(value("selector"), value("num_views"))
                check_depth_range(value("min_depth_m"), value("max_depth_m"))
                if pipe_changes:
                    self.pipeline.configure(**pipe_changes)
                self._frame_out.configure(settings)
            except (ValueError, TypeError) as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        self.get_logger().info(f"parameters changed: {changes}")
        warning = unit_warning("smoothing_beta", changes.get("smoothing_beta"))
        if warning:
            self.get_logger().warning(warning)
        return SetParametersResult(successful=True)

    # -- input: pair by stamp, keep only the newest pair ----------------------------------
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_info(self, msg: CameraInfo) -> None:
        self._monitor.info(self._now_s(), stamp_ns(msg.header.stamp) * 1e-9)
        self._route(self._pairer.add_info(stamp_ns(msg.header.stamp), msg))

    def _on_image(self, msg: Image | CompressedImage) -> None:
        self.stats.frames_in += 1
        self._monitor.input(self._now_s(), stamp_ns(msg.header.stamp) * 1e-9)
        if not self._pairer.has_info():
            self._reporter.report("no_info", f"no camera_info received yet on "
                                  f"{self._info_topic}; depth frames wait for it")
        self._route(self._pairer.add_image(stamp_ns(msg.header.stamp), (msg, time.monotonic())))

    def _route(self, outcomes) -> None:
        for out in outcomes:
            if isinstance(out, Pair):
                msg, t_in = out.image
                self.stats.paired += 1
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
                if not (self._running and self.context.ok()):
                    break  # shutting down: the frame in hand is abandoned, not failed
                self.stats.count_failed(exc)
                try:
                    self._reporter.report(
                        f"failed:{type(exc).__name__}",
                        f"frame failed: {type(exc).__name__}: {exc}", level="error")
                except Exception:  # noqa: BLE001 - a broken logger must not stop the worker
                    pass

    def _process(self, msg: Image | CompressedImage, info: CameraInfo, t_in: float) -> None:
        try:
            require_frame_id(msg.header)
            depth_mm, intr = self._input.prepare(msg, info)
        except ConversionError as exc:
            self.stats.count_rejected(exc)
            self._reporter.report(f"reject:{problem_kind(exc)}", f"frame rejected: {exc}")
            return
        for note in self._input.notes():
            self.get_logger().warning(note)
        header = msg.header
        with self._lock:
            result = self.pipeline.run_hands(depth_mm, intr)  # every hand (vvhand_core.hands)
            rigid = None
            if result.valid and self._target is not None:
                try:
                    rigid = self._target.lookup(header.frame_id, header.stamp)
                except TransformUnavailable as exc:
                    self.stats.tf_unavailable += 1
                    self._reporter.report("tf_unavailable", f"frame dropped: {exc}")
                    return
            out = self._frame_out.build(header, result, rigid, self._target,
                                        time.monotonic() - t_in, self._wanted())
        self.stats.processed += 1
        if not result.valid:
            self.stats.no_hand += 1
            self._reporter.report("no_hand", f"no hand: {result.message}", level="info")
        self.pub_pose.publish(out.hand_pose)
        self.pub_hands.publish(out.hands)
        if out.palm is not None:
            self.pub_palm.publish(out.palm)
        if out.joints is not None:
            self.pub_joints.publish(out.joints)
        if out.markers is not None:
            self.pub_markers.publish(out.markers)
        if out.transforms:
            self._tf_send(out.transforms)
        for state in out.joint_states:
            self.pub_joint_states.publish(state)
        self._publish_debug(header, depth_mm, intr, result)
        self.stats.published += 1
        self.stats.latency_ms.append(1000.0 * (time.monotonic() - t_in))
        self._monitor.output(self._now_s(), stamp_ns(header.stamp) * 1e-9)

    # -- status ---------------------------------------------------------------------------
    def _report_status(self) -> None:
        s = self.stats.as_dict()
        summary = self._monitor.summary(self._now_s())
        new = {k: int(s[k] - self._last_problems[k]) for k in (*PROBLEMS, *DROP_COUNTS)}
        self._last_problems = {k: s[k] for k in (*PROBLEMS, *DROP_COUNTS)}
        summary["dropped_fraction"] = dropped_fraction(new.pop("dropped"), new.pop("paired"))
        bounds = self._frame_out.settings.bounds
        level, message = assess(summary, bounds, new)
        if not self.enabled:
            level, message = 0, DISABLED_MESSAGE  # no input by request: not a fault
        s.update(summary)
        s["expected_rate_hz"] = bounds.expected_rate_hz
        self.get_logger().info(
            "status: in={frames_in:.0f} published={published:.0f} dropped={dropped:.0f} "
            "unpaired={unpaired:.0f} no_hand={no_hand:.0f} rejected={rejected:.0f} "
            "failed={failed:.0f} tf_unavailable={tf_unavailable:.0f} "
            "rate={output_rate_hz:.1f} Hz latency p50={latency_p50_ms:.1f} ms "
            "p95={latency_p95_ms:.1f} ms".format(**s) + f": {message}")
        if self.pub_diag is None:
            return
        status = DiagnosticStatus(
            level=bytes([level]), name=f"{self.get_name()}: hand pose", message=message,
            hardware_id="vvhand", values=[KeyValue(key=k, value=f"{v:g}") for k, v in s.items()])
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(arr)


__all__ = ["HandPoseCore", "sensor_data_qos", "stamp_ns"]
