"""hand_pose_node's start and stop under signals and bad start-up input (issue 25, item 6):
a signal while Python still imports, a second SIGINT while the node stops, SIGTERM while a
lifecycle configure loads the model, an unreadable --params-file, a malformed ONNX
description. Real processes and DDS; where a signal must land inside a step, the child
prints a marker from inside it and waits, and the test acts when it reads the marker.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from ros_helpers import REPO, call_when_answering, spin_until

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402

# Runs an entry point (the installed script, or `python -m`) with the import of rclpy
# held: a marker, then a wait, so the signal lands while Python imports.
SLOW_IMPORT = """
import importlib.abc, runpy, sys, time
class Slow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "rclpy":
            print("MARKER importing", flush=True)
            time.sleep(60)
        return None
sys.meta_path.insert(0, Slow())
how = sys.argv.pop(1)
if how == "script":
    runpy.run_path("scripts/hand_pose_node", run_name="__main__")
else:
    runpy.run_module("vvhand_ros.node", run_name="__main__", alter_sys=True)
"""

# The node's main with one step wrapped: WRAP=stop holds destroy_node (the node stopping),
# WRAP=load holds the model load until the context is shut down (a lifecycle configure).
WRAPPED = """
import os, sys, time
import rclpy
wrap = os.environ["WRAP"]
if wrap == "stop":
    from vvhand_ros.node import HandPoseNode as N, main
    real = N.destroy_node
    def slow_destroy(self):
        print("MARKER stopping", flush=True)
        time.sleep(1.0)
        real(self)
    N.destroy_node = slow_destroy
else:
    from vvhand_core.pipeline import VirtualViewPipeline as P
    from vvhand_ros.lifecycle_node import main
    real_load = P.from_checkpoint.__func__
    def slow_load(cls, *a, **kw):
        print("MARKER loading", flush=True)
        t_end = time.monotonic() + 60.0
        while time.monotonic() < t_end and rclpy.ok():
            time.sleep(0.02)
        return real_load(cls, *a, **kw)
    P.from_checkpoint = classmethod(slow_load)
sys.exit(main(sys.argv))
"""

# run_node with a make_node that marks, then waits inside try/finally: a signal while the
# node is built must end the process without unwinding (no "UNWOUND"), and one after it is
# built (RUNNING=1: make_node returns a node) must stop the spin cleanly.
BUILDING = """
import os, sys, time
import rclpy.node
from vvhand_ros.node import run_node
from vvhand_ros.node_startup import exit_process
def make_node():
    try:
        if os.environ.get("RUNNING") == "1":
            node = rclpy.node.Node("hand_pose_node")
            node.create_timer(0.05, lambda: print("MARKER spinning", flush=True))
            return node
        print("MARKER building", flush=True)
        time.sleep(60)
    finally:
        print("UNWOUND", flush=True)
exit_process(run_node(make_node, "hand_pose_node", sys.argv[1:]))
"""


class Proc:
    """A child process whose output is read while the test goes on."""

    def __init__(self, cmd, env):
        self.proc = subprocess.Popen(cmd, env=env, cwd=str(REPO), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, marker: str, timeout_s: float = 120.0) -> bool:
        t_end = time.monotonic() + timeout_s
        while time.monotonic() < t_end and self.proc.poll() is None:
            if any(marker in ln for ln in list(self.lines)):
                return True
            time.sleep(0.02)
        return False

    def finish(self, timeout_s: float = 60.0) -> tuple[int, str]:
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._reader.join(timeout=10.0)
        return rc, "".join(self.lines)


def node_args(model, *params):
    args = ["--ros-args", "-p", f"model_path:={model}", "-p", "device:=cpu",
            "-p", "num_threads:=1", "-p", "fit:=false"]
    for p in params:
        args += ["-p", p]
    return args


@pytest.mark.parametrize("how", ["script", "module"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_importing_exits_quietly(ros_env, checkpoint, how, sig):
    child = Proc([sys.executable, "-c", SLOW_IMPORT, how, *node_args(checkpoint)], ros_env)
    assert child.wait_for("MARKER importing"), child.finish()
    child.proc.send_signal(sig)
    rc, out = child.finish()
    assert rc == 0, out
    assert "Traceback" not in out and "shutdown requested while starting" in out, out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_node_is_built_ends_the_process_without_unwinding(ros_env, sig):
    child = Proc([sys.executable, "-c", BUILDING], ros_env)
    assert child.wait_for("MARKER building"), child.finish()
    child.proc.send_signal(sig)
    rc, out = child.finish()
    assert rc == 0, out
    assert "shutdown requested while starting" in out, out
    assert "UNWOUND" not in out and "Traceback" not in out, out


def test_a_signal_once_the_node_spins_stops_it_cleanly(ros_env):
    child = Proc([sys.executable, "-c", BUILDING], dict(ros_env, RUNNING="1"))
    assert child.wait_for("MARKER spinning"), child.finish()
    child.proc.send_signal(signal.SIGINT)
    rc, out = child.finish()
    assert rc == 0, out
    assert "UNWOUND" in out and "Traceback" not in out, out
    assert "shutdown requested while starting" not in out, out


def test_a_second_sigint_while_stopping_is_ignored(ros_env, checkpoint):
    child = Proc([sys.executable, "-c", WRAPPED, *node_args(checkpoint)],
                 dict(ros_env, WRAP="stop"))
    assert child.wait_for("ready: selector="), child.finish()
    child.proc.send_signal(signal.SIGINT)
    assert child.wait_for("MARKER stopping"), child.finish()
    child.proc.send_signal(signal.SIGINT)  # while the node stops
    rc, out = child.finish()
    assert rc == 0, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out


def test_sigterm_while_configuring_is_not_a_failed_configure(rclpy_context, ros_env,
                                                             checkpoint):
    child = Proc([sys.executable, "-c", WRAPPED, *node_args(checkpoint)],
                 dict(ros_env, WRAP="load"))
    node = rclpy.create_node("signals_test", context=rclpy_context)
    try:
        get = node.create_client(GetState, "/hand_pose_node/get_state")
        assert call_when_answering(node, get, GetState.Request()) is not None, child.finish()
        change = node.create_client(ChangeState, "/hand_pose_node/change_state")
        change.call_async(ChangeState.Request(
            transition=Transition(id=Transition.TRANSITION_CONFIGURE)))
        assert spin_until(node, lambda: any("MARKER loading" in ln for ln in child.lines),
                          60.0), child.finish()
        child.proc.send_signal(signal.SIGTERM)
        rc, out = child.finish()
    finally:
        node.destroy_node()
    assert rc == 0, out
    for wrong in ("configure failed", "Failed to complete transition", "Traceback"):
        assert wrong not in out, out


def _one_fatal(rc: int, out: str, fragment: str) -> None:
    assert rc == 1, out
    fatal = [ln for ln in out.splitlines() if "FATAL" in ln]
    assert len(fatal) == 1 and "cannot start" in fatal[0] and fragment in fatal[0], out
    assert "Traceback" not in out, out


def test_an_unreadable_params_file_gives_one_fatal_line(ros_env, checkpoint, tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("hand_pose_node:\n  ros__parameters: [1, 2\n")
    cmd = [sys.executable, "-m", "vvhand_ros.node", "--ros-args", "--params-file", str(bad)]
    rc, out = Proc(cmd, ros_env).finish(timeout_s=120.0)
    _one_fatal(rc, out, "params file")


def test_a_malformed_onnx_description_gives_one_fatal_line(ros_env, lite_export_dir,
                                                           tmp_path):
    bad = tmp_path / "export"
    shutil.copytree(lite_export_dir, bad)
    meta_file = bad / "vvhand_onnx.json"
    meta = json.loads(meta_file.read_text())
    meta["view_grid_deg"] = 25
    meta["networks"]["a2j"]["outputs"] = None
    meta_file.write_text(json.dumps(meta))
    cmd = [sys.executable, "-m", "vvhand_ros.node", *node_args(bad)]
    rc, out = Proc(cmd, ros_env).finish(timeout_s=120.0)
    _one_fatal(rc, out, "vvhand_onnx.json is malformed")
