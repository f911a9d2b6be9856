"""The managed (lifecycle) hand_pose_node: same name, topics and parameters as the plain one.

``ros2 run vvhand hand_pose_lifecycle_node`` (or launch with ``lifecycle:=true``) starts it
unconfigured; the standard lifecycle_msgs services (``~/change_state``, ``~/get_state``)
or ``ros2 lifecycle set /hand_pose_node <transition>`` drive it:

  configure   read the read-only parameters, make the target frame, load the model,
              create the publishers (a bad model or parameter: FAILURE, stays unconfigured)
  activate    subscribe to depth and camera_info, start the worker and /diagnostics
  deactivate  unsubscribe and stop the worker (the model stays loaded)
  cleanup     destroy the publishers and free the model
  shutdown    whatever is left, from any state
"""

from __future__ import annotations

if __name__ == "__main__":  # `python -m vvhand_ros.lifecycle_node`: quiet signals meanwhile
    from vvhand_ros.node_startup import exit_on_signals_while_importing

    exit_on_signals_while_importing("hand_pose_node")

from typing import TYPE_CHECKING  # noqa: E402

from rclpy.lifecycle import Node as LifecycleNode  # noqa: E402
from rclpy.lifecycle import State, TransitionCallbackReturn  # noqa: E402

from vvhand_ros.node import run_node  # noqa: E402
from vvhand_ros.node_core import HandPoseCore  # noqa: E402
from vvhand_ros.node_params import declare_parameters  # noqa: E402
from vvhand_ros.ros_compat import guard_change_state  # noqa: E402

if TYPE_CHECKING:
    from vvhand_core.pipeline import VirtualViewPipeline

def _compile_fit_kernels() -> None:
    """The fit's numba kernels compiled (or loaded) now, while the node is built.

    A signal then ends the process at once (vvhand_ros.node_startup); during a configure
    it raises KeyboardInterrupt, which must not land in LLVM's callbacks into Python.
    """
    from vvhand_core.fit.stage import warm_up

    warm_up()


class LifecycleHandPoseNode(HandPoseCore, LifecycleNode):
    """hand_pose_node as a lifecycle node (see the module doc for each transition)."""

    def __init__(self, pipeline: VirtualViewPipeline | None = None, **node_kwargs) -> None:
        """Declare parameters only; ``pipeline`` replaces loading the model on configure."""
        self._core_defaults()
        self._given_pipeline = pipeline
        super().__init__("hand_pose_node", **node_kwargs)
        guard_change_state(self)  # an unavailable transition: refused on Jazzy too, not fatal
        try:
            declare_parameters(self)  # ValueError for a bad start-up value: one FATAL line
            if self.get_parameter("fit").value:
                _compile_fit_kernels()
        except BaseException:
            super().destroy_node()
            raise
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Load the model and create the publishers."""
        try:
            self._configure(self._given_pipeline)
            self._create_outputs()
        except Exception as exc:  # noqa: BLE001 - any failure: report it, stay unconfigured
            if self.context.ok():
                self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            else:  # a signal shut the context down meanwhile: not a failure of configure
                self.get_logger().info("shutdown requested while configuring")
            self._destroy_outputs()
            self._free()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        """Subscribe and start processing."""
        self._activate()
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        """Unsubscribe and stop processing; the model stays loaded."""
        self._deactivate()
        self.get_logger().info("deactivated: not subscribed")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        """Destroy the publishers and free the model."""
        self._destroy_outputs()
        self._free()
        self.get_logger().info("cleaned up: model freed")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        """Stop everything, from any state."""
        self._deactivate()
        self._destroy_outputs()
        self._free()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        """Stop the worker thread, then the node."""
        self._deactivate()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """`ros2 run vvhand hand_pose_lifecycle_node`."""
    return run_node(LifecycleHandPoseNode, "hand_pose_node", args)


if __name__ == "__main__":
    from vvhand_ros.node_startup import exit_process

    exit_process(main())
