"""hand_pose_node's lifecycle variant over real DDS (issue 14): its transitions, and a
configure that fails on a bad model file while the node lives on. The node runs as a child
process with an untrained small checkpoint (these tests are about the node, not accuracy).
"""

from __future__ import annotations

import pytest

from ros_helpers import call_when_answering, spin_until, stop

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from outputs_harness import Harness, moving_frames, start  # noqa: E402


@pytest.fixture(scope="module")
def frames():
    return moving_frames()


def test_lifecycle_transitions(rclpy_context, ros_env, checkpoint, frames):
    f0 = frames[0]
    proc = start(ros_env, checkpoint, module="vvhand_ros.lifecycle_node")
    h = Harness(rclpy_context)
    change = h.node.create_client(ChangeState, "/hand_pose_node/change_state")
    get = h.node.create_client(GetState, "/hand_pose_node/get_state")

    def call(client, req):
        fut = client.call_async(req)
        assert spin_until(h.node, fut.done, 60.0), stop(proc)
        return fut.result()

    def transition(tid):
        return call(change, ChangeState.Request(transition=Transition(id=tid))).success

    def state():
        return call(get, GetState.Request()).current_state.id

    def publishers(topic):
        return h.node.count_publishers(topic)

    try:
        first = call_when_answering(h.node, get, GetState.Request())
        assert first is not None, stop(proc)
        assert first.current_state.id == State.PRIMARY_STATE_UNCONFIGURED
        # activating an unconfigured node is refused without side effects: safe to resend
        refused = call_when_answering(h.node, change, ChangeState.Request(
            transition=Transition(id=Transition.TRANSITION_ACTIVATE)))
        assert refused is not None and not refused.success, stop(proc)
        assert publishers("/hand_pose_node/hands") == 0
        assert h.pub_img.get_subscription_count() == 0
        assert transition(Transition.TRANSITION_CONFIGURE)
        assert state() == State.PRIMARY_STATE_INACTIVE
        assert spin_until(h.node, lambda: publishers("/hand_pose_node/hands") == 1, 10.0)
        assert h.pub_img.get_subscription_count() == 0  # inactive: not subscribed
        assert transition(Transition.TRANSITION_ACTIVATE)
        assert state() == State.PRIMARY_STATE_ACTIVE
        h.wait_subscribed(proc)
        assert h.send_and_wait(proc, f0.depth_mm, f0.intrinsics, 300.0).hands
        assert transition(Transition.TRANSITION_DEACTIVATE)
        assert state() == State.PRIMARY_STATE_INACTIVE
        assert spin_until(h.node, lambda: h.pub_img.get_subscription_count() == 0, 10.0)
        n = len(h.hands)
        h.send(f0.depth_mm, f0.intrinsics, 301.0)
        spin_until(h.node, lambda: False, 1.5)
        assert len(h.hands) == n  # deactivated: nothing processed
        assert transition(Transition.TRANSITION_CLEANUP)
        assert state() == State.PRIMARY_STATE_UNCONFIGURED
        assert spin_until(h.node, lambda: publishers("/hand_pose_node/hands") == 0, 10.0)
        # configure again (the model is loaded anew), activate, serve
        assert transition(Transition.TRANSITION_CONFIGURE)
        assert transition(Transition.TRANSITION_ACTIVATE)
        h.wait_subscribed(proc)
        assert h.send_and_wait(proc, f0.depth_mm, f0.intrinsics, 302.0).hands
        assert transition(Transition.TRANSITION_ACTIVE_SHUTDOWN)
        assert state() == State.PRIMARY_STATE_FINALIZED
        assert proc.poll() is None
    finally:
        out = stop(proc)
        h.node.destroy_node()
    assert out.count("loading model") == 2 and "cleaned up: model freed" in out, out
    assert "Traceback" not in out, out


def test_lifecycle_configure_failure_keeps_the_node_unconfigured(rclpy_context, ros_env,
                                                                 tmp_path):
    """A bad model file: configure returns FAILURE with one message; the node lives on."""
    missing = tmp_path / "missing.pt"
    proc = start(ros_env, missing, module="vvhand_ros.lifecycle_node")
    h = Harness(rclpy_context)
    change = h.node.create_client(ChangeState, "/hand_pose_node/change_state")
    get = h.node.create_client(GetState, "/hand_pose_node/get_state")
    try:
        first = call_when_answering(h.node, get, GetState.Request())
        assert first is not None, stop(proc)
        # activating an unconfigured node is refused without side effects: safe to resend
        refused = call_when_answering(h.node, change, ChangeState.Request(
            transition=Transition(id=Transition.TRANSITION_ACTIVATE)))
        assert refused is not None and not refused.success, stop(proc)
        fut = change.call_async(ChangeState.Request(
            transition=Transition(id=Transition.TRANSITION_CONFIGURE)))
        assert spin_until(h.node, fut.done, 60.0) and not fut.result().success
        fut = get.call_async(GetState.Request())
        assert spin_until(h.node, fut.done, 10.0)
        assert fut.result().current_state.id == State.PRIMARY_STATE_UNCONFIGURED
        assert proc.poll() is None
    finally:
        out = stop(proc)
        h.node.destroy_node()
    assert "configure failed" in out and str(missing) in out and "Traceback" not in out


FIT_COMPILED_AT_BUILD = """
import sys
import rclpy
from vvhand_core.fit import stage
from vvhand_ros.lifecycle_node import LifecycleHandPoseNode
rclpy.init(args=["--ros-args", "-p", "fit:=" + sys.argv[1]])
node = LifecycleHandPoseNode()
print("compiled", bool(stage._WARM))
node.destroy_node()
rclpy.shutdown()
"""


@pytest.mark.parametrize("fit", ["true", "false"])
def test_the_fit_kernels_are_compiled_before_the_lifecycle_node_spins(ros_env, fit):
    """Built with fit on, the kernels are compiled (a signal during a later configure must
    not land in LLVM's callbacks into Python: vvhand_ros.node_startup); with fit off, not."""
    import subprocess
    import sys

    from ros_helpers import REPO

    proc = subprocess.run([sys.executable, "-c", FIT_COMPILED_AT_BUILD, fit], env=ros_env,
                          cwd=str(REPO), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"compiled {fit == 'true'}" in proc.stdout, proc.stdout + proc.stderr[-2000:]
