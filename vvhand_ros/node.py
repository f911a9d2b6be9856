"""HandPoseNode: depth image + camera_info in, hands with palm pose and confidence out.

A thin node: it declares parameters (vvhand_ros.node_params) and runs the steps of
vvhand_ros.node_core in its constructor: configure (read-only parameters, target frame,
model), outputs, inputs and the worker. The managed variant with the same topics is
vvhand_ros.lifecycle_node (launch argument ``lifecycle:=true``).

Topics (relative names, remapped in launch files):
  subscribes  depth/image (sensor_msgs/Image) or, with depth_transport compressedDepth,
              depth/image/compressedDepth (sensor_msgs/CompressedImage; the base name is
              resolved first, as image_transport does), depth/camera_info (CameraInfo);
              sensor-data QoS, overridable with qos_overrides.<topic>.subscription.*
  publishes   ~/hands (vvhand_msgs/HandPoseArray: every hand with side, track id, per-joint
              confidence, palm pose), ~/hand_pose (vvhand_msgs/HandPose, the single-hand
              convenience topic), ~/palm_pose (geometry_msgs/PoseStamped), ~/joints
              (geometry_msgs/PoseArray), ~/markers (visualization_msgs/MarkerArray),
              /tf (one palm frame per hand; per-joint frames opt-in),
              /diagnostics (diagnostic_msgs/DiagnosticArray, when importable)
See docs/ros.md for every parameter and frame.
"""

from __future__ import annotations

if __name__ == "__main__":  # `python -m vvhand_ros.node`: quiet signals while importing
    from vvhand_ros.node_startup import exit_on_signals_while_importing

    exit_on_signals_while_importing("hand_pose_node")

from typing import TYPE_CHECKING  # noqa: E402

import rclpy  # noqa: E402
import rclpy.logging  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos_overriding_options import InvalidQosOverridesError  # noqa: E402

from vvhand_core.errors import CheckpointError  # noqa: E402
from vvhand_ros.node_core import HandPoseCore, sensor_data_qos, stamp_ns  # noqa: E402
from vvhand_ros.node_params import PIPELINE_PARAMETERS, declare_parameters  # noqa: E402
from vvhand_ros.node_startup import (  # noqa: E402
    STARTING_LINE,
    NodeSignals,
    exit_process,
    ignore_signals,
)

if TYPE_CHECKING:
    from vvhand_core.pipeline import VirtualViewPipeline

class HandPoseNode(HandPoseCore, Node):
    """Subscribes to a depth image and its camera_info, publishes the hands it finds."""

    def __init__(self, pipeline: VirtualViewPipeline | None = None, **node_kwargs) -> None:
        """Declare parameters, load the model, then create publishers and subscriptions.

        ``pipeline`` replaces loading ``model_path`` (used by tests and embedding code).
        Raises CheckpointError (naming the file) when the model cannot be loaded, ValueError
        for a start-up parameter of the wrong type or out of range, an invalid
        depth_transport or camera_model, or a target_frame without tf2_ros; no subscription
        exists before the model is ready.
        """
        self._core_defaults()
        super().__init__("hand_pose_node", **node_kwargs)
        try:
            declare_parameters(self)
            self._configure(pipeline)
            self._create_outputs()
            self.add_on_set_parameters_callback(self._on_set_parameters)
            self._activate()
        except BaseException:  # a bad start: no half-built node left behind
            self._abandon()
            raise

    def destroy_node(self) -> None:
        """Stop the worker thread, then the node."""
        self._deactivate()
        super().destroy_node()

    def _abandon(self) -> None:
        try:
            self.destroy_node()
        except Exception:  # noqa: BLE001 - the context may be shut down already
            pass


def _stopped_while_starting(logger) -> int:
    """The context was shut down while the node was built (not by our signal handler)."""
    ignore_signals()
    logger.info(STARTING_LINE)
    rclpy.try_shutdown()
    ignore_signals()  # rclpy's shutdown restores the handlers it found
    return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def run_node(make_node, name: str, args: list[str] | None = None) -> int:
    """Init, build the node, spin, shut down.

    Exits 1 with one FATAL line on a bad start (command-line arguments or parameter file
    rclpy cannot read, model file, parameter, QoS override), 0 when SIGINT or SIGTERM
    arrives while it starts (the model may be loading: the process ends at once) or runs;
    signals while it stops are ignored (vvhand_ros.node_startup).
    """
    logger = rclpy.logging.get_logger(name)
    signals = NodeSignals(name)
    signals.install()
    try:
        rclpy.init(args=args)
    except Exception as exc:  # RCLError: unreadable --ros-args or --params-file
        logger.fatal(f"cannot start: {_one_line(exc)}")
        return 1
    try:
        node = make_node()
    except (CheckpointError, InvalidQosOverridesError, ValueError) as exc:
        logger.fatal(f"cannot start: {exc}")
        ignore_signals()
        rclpy.try_shutdown()
        return 1
    except Exception:
        if rclpy.ok():
            raise  # a defect, not a shutdown: keep its traceback
        return _stopped_while_starting(logger)  # the context was shut down meanwhile
    signals.running()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # a signal shut the context down while the executor built its wait set (an rclpy
        # race that raises RCLError instead of ExternalShutdownException): a normal exit
    finally:
        ignore_signals()
        node.destroy_node()
        rclpy.try_shutdown()
        ignore_signals()
    return 0


def main(args: list[str] | None = None) -> int:
    """`ros2 run vvhand hand_pose_node`: exits 1 with one clear message on a bad model."""
    return run_node(HandPoseNode, "hand_pose_node", args)


__all__ = ["HandPoseNode", "PIPELINE_PARAMETERS", "main", "run_node", "sensor_data_qos",
           "stamp_ns"]


if __name__ == "__main__":
    exit_process(main())
