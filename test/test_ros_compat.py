"""vvhand_ros.ros_compat over real rclpy: an unavailable lifecycle transition is refused.

Run under both environments (.venv: Kilted's rclpy 9; .venv-jazzy: Jazzy's rclpy 7, where
without the guard the request raises out of the executor and ends the node's spin).
"""

from __future__ import annotations

import pytest

rclpy = pytest.importorskip("rclpy")

from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.lifecycle import Node as LifecycleNode  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402

from vvhand_ros.ros_compat import guard_change_state  # noqa: E402


class Counting(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("compat_probe", **kwargs)
        self.calls: list[str] = []

    def on_configure(self, state):
        self.calls.append("configure")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state):
        self.calls.append("activate")
        return TransitionCallbackReturn.SUCCESS


def call(executor, client, transition: int, label: str = "", timeout_s: float = 20.0):
    assert client.wait_for_service(timeout_sec=timeout_s)
    fut = client.call_async(ChangeState.Request(transition=Transition(id=transition,
                                                                      label=label)))
    executor.spin_until_future_complete(fut, timeout_sec=timeout_s)
    assert fut.done()
    return fut.result()


def test_unavailable_transition_is_refused_and_the_node_serves_on(rclpy_context):
    node = Counting(context=rclpy_context)
    guard_change_state(node)
    user = rclpy.create_node("compat_user", context=rclpy_context)
    client = user.create_client(ChangeState, "/compat_probe/change_state")
    executor = SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    executor.add_node(user)
    try:
        assert not call(executor, client, Transition.TRANSITION_ACTIVATE).success
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
        assert node.calls == []
        # by label: rclpy's own refusal, unchanged
        assert not call(executor, client, 0, label="not_a_transition").success
        # the node still serves: configure, then activate both succeed
        assert call(executor, client, Transition.TRANSITION_CONFIGURE).success
        assert call(executor, client, 0, label="activate").success
        assert node.calls == ["configure", "activate"]
        assert node._state_machine.current_state[0] == State.PRIMARY_STATE_ACTIVE
    finally:
        executor.shutdown()
        user.destroy_node()
        node.destroy_node()
