"""hand_pose_node on an onnxruntime-only install: importing torch fails in the node process.

The node runs as a child process whose first step makes every ``import torch`` raise
ImportError (as on a robot where only numpy, scipy, onnxruntime and ROS are installed), on
a directory written by `vvhand export-onnx`, with the default localiser (the learned
detector, from its shipped ONNX files), without and with the hand-model fit; the frames'
joints must equal the torch-free LitePipeline's in this process, and what needs torch
(a checkpoint, the mirror pass) is refused at start-up by name.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from no_torch import BLOCK_TORCH

from ros_helpers import REPO, spin_until, stop

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("onnxruntime")
from node_harness import RELIABLE_OVERRIDES, Harness, header  # noqa: E402

from vvhand_core import cli  # noqa: E402
from vvhand_core.fit import FitConfig  # noqa: E402
from vvhand_core.lite.pipeline import LiteConfig, LitePipeline  # noqa: E402

# the node's main() behind an import hook that refuses torch (main, not the module's
# __main__ block: that ends the process with os._exit, node_startup.exit_process, before
# the check below could print)
BOOT = BLOCK_TORCH + r"""
import sys

sys.argv[0] = "hand_pose_node"
try:
    from vvhand_ros.node import main
    code = main()
finally:
    print("TORCH_LOADED" if "torch" in sys.modules else "TORCH_ABSENT", flush=True)
sys.exit(code)
"""


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, checkpoint):
    out = tmp_path_factory.mktemp("onnx") / "export"
    assert cli.main(["export-onnx", str(checkpoint), str(out)]) == 0
    return out


def start_torch_free(env, model, *params):
    args = [sys.executable, "-c", BOOT, "--ros-args", "-p", f"model_path:={model}",
            "-p", "status_period_s:=0.5", "-p", "num_threads:=1", "-p", "fit:=false"]
    for p in [*RELIABLE_OVERRIDES, *params]:
        args += ["-p", p]
    return subprocess.Popen(args, env=env, cwd=str(REPO), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("fit", [False, True])
def test_node_runs_without_torch(export_dir, hand_frame, rclpy_context, ros_env, fit):
    """The network alone, and with the hand-model fit (numpy and scipy: no torch either)."""
    lite = LitePipeline.from_onnx(export_dir, LiteConfig(num_threads=1,
                                                         fit=FitConfig() if fit else None))
    assert lite.config.localiser == "detector"  # the default, as the node's
    ref = lite.run(hand_frame.depth_mm, hand_frame.intrinsics)
    assert ref.valid and (ref.fit is not None) == fit
    # the untrained test model's fit explains the depth badly: no residual limit here
    extra = ("fit:=true", "fit_max_residual_m:=0.0") if fit else ()
    proc = start_torch_free(ros_env, export_dir, "smoothing:=false", *extra)  # backend: auto
    h = Harness(rclpy_context)
    try:
        h.wait_ready(proc)
        h.send(hand_frame.depth_mm, header(1), hand_frame.intrinsics)
        assert spin_until(h.node, lambda: len(h.poses) >= 1, 30.0), stop(proc)
    finally:
        log = stop(proc)
        h.node.destroy_node()
    pose = h.poses[-1]
    assert pose.valid and list(pose.selected_views) == ref.selected_views.tolist()
    joints = np.array([[p.x, p.y, p.z] for p in pose.joints]) * 1000.0
    assert np.abs(joints - ref.joints_mm).max() <= 0.01
    assert "TORCH_ABSENT" in log and "Traceback" not in log
    assert "networks run in onnxruntime" in log


@pytest.mark.parametrize("params,expected", [
    (("backend:=torch",), "set backend to onnxruntime"),
    (("backend:=onnxruntime", f"detector_weights:={REPO / 'no_export.pt'}"),
     "have no ONNX export"),
    (("backend:=onnxruntime", "localiser:=geometric", "mirror:=true"),
     "mirror pass needs torch"),
])
def test_what_needs_torch_is_refused_at_startup(export_dir, ros_env, params, expected):
    proc = start_torch_free(ros_env, export_dir, *params)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert expected in out and "torch is not installed" in out
    assert "Traceback" not in out
