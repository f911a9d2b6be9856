"""vvhand_core imports and works in a process where no ROS module can be imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# A meta-path hook that makes every ROS package unimportable, then imports every module
# of vvhand_core. Fails if any of them (even indirectly) needs ROS.
CHILD = r"""
import importlib, importlib.abc, pkgutil, sys

ROS_ROOTS = {"rclpy", "rosidl_runtime_py", "rosidl_parser", "rpyutils", "rosbag2_py",
             "tf2_ros", "tf2_msgs", "cv_bridge", "launch", "launch_ros", "vvhand",
             "vvhand_ros", "ament_index_python", "builtin_interfaces", "std_msgs",
             "sensor_msgs", "geometry_msgs", "visualization_msgs", "diagnostic_msgs"}

class NoRos(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ROS_ROOTS:
            raise ImportError(f"ROS module {name!r} imported from vvhand_core")
        return None

sys.meta_path.insert(0, NoRos())
import vvhand_core
names = [m.name for m in pkgutil.walk_packages(vvhand_core.__path__, "vvhand_core.")]
for name in names:
    importlib.import_module(name)
print("imported", len(names) + 1, "modules")
"""


def test_core_imports_without_ros():
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "imported" in proc.stdout


def test_the_guard_itself_catches_ros():
    """The child's guard must fail when a ROS module is imported (the test can fail)."""
    code = CHILD.replace("import vvhand_core\n", "import vvhand_core\nimport rclpy\n", 1)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0 and "rclpy" in proc.stderr
