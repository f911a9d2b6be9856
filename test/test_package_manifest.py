"""package.xml tells the truth (issue 15): what it declares is used, what is used is declared.

Run-time dependencies are checked against the imports of the installed code (vvhand_core,
vvhand_ros, launch/, scripts/); build and test dependencies against CMakeLists.txt's
find_package calls, and `colcon test` has a BUILD_TESTING block that runs this suite.
"""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# rosdep keys whose Python module has another name
MODULE_OF = {
    "python3-numpy": "numpy", "python3-scipy": "scipy", "python3-numba": "numba",
    "python3-yaml": "yaml",
    "python3-tqdm": "tqdm", "python3-matplotlib": "matplotlib", "python3-pil": "PIL",
    "python3-psutil": "psutil", "python3-rosbags-pip": "rosbags",
    "python3-onnxruntime-pip": "onnxruntime",
    "rosidl_default_runtime": "vvhand",  # what the generated vvhand.msg needs at run time
}
# installed with pip into a venv (README "pip step"): no rosdep key (torch), pip keys
# (rosbags, onnxruntime: declared above, installed by pip with their pins), optional extras
# (pycuda renderer, onnx exporter) or benchmark-only (threadpoolctl: `vvhand bench fit` times
# on one core; requirements/base.txt). `ros2 launch` does not see them (test_launch.py).
PIP_ONLY = {"torch", "rosbags", "pycuda", "onnx", "onnxruntime", "threadpoolctl"}
FIRST_PARTY = {"vvhand_core", "vvhand_ros"}


def manifest() -> dict[str, set[str]]:
    root = ET.parse(REPO / "package.xml").getroot()
    out: dict[str, set[str]] = {}
    for el in root:
        if el.tag.endswith("depend"):
            out.setdefault(el.tag, set()).add(el.text.strip())
    return out


def imported_modules() -> dict[str, str]:
    """Top-level module -> first file importing it, over the code the package installs."""
    files = [*REPO.glob("vvhand_core/**/*.py"), *REPO.glob("vvhand_ros/**/*.py"),
             *REPO.glob("launch/*.py"), REPO / "scripts" / "hand_pose_node",
             REPO / "scripts" / "hand_pose_lifecycle_node"]
    found: dict[str, str] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return found


def test_every_exec_depend_is_imported_and_every_import_declared():
    declared = manifest()["exec_depend"]
    modules = imported_modules()
    unused = sorted(d for d in declared if MODULE_OF.get(d, d) not in modules)
    assert not unused, f"package.xml declares {unused}, which nothing imports"
    declared_modules = {MODULE_OF.get(d, d) for d in declared}
    undeclared = sorted(
        f"{m} ({where})" for m, where in modules.items()
        if m not in sys.stdlib_module_names and m not in FIRST_PARTY | PIP_ONLY
        and m not in declared_modules)
    assert not undeclared, f"imported but not in package.xml: {undeclared}"


def test_build_and_test_depends_match_cmake():
    deps = manifest()
    cmake = (REPO / "CMakeLists.txt").read_text()
    found = set(re.findall(r"find_package\((\w+)", cmake))
    wanted = (deps["buildtool_depend"] | deps["build_depend"]
              | {d for d in deps["test_depend"] if not d.startswith("python3-")})
    assert wanted == found, (sorted(wanted), sorted(found))


def test_colcon_test_runs_the_suite():
    """A BUILD_TESTING block registers the pytest suite with ctest (ament_cmake_pytest)."""
    cmake = (REPO / "CMakeLists.txt").read_text()
    block = re.search(r"if\(BUILD_TESTING\)(.*?)endif\(\)", cmake, re.S)
    assert block, "CMakeLists.txt has no BUILD_TESTING block"
    assert "find_package(ament_cmake_pytest REQUIRED)" in block.group(1)
    assert re.search(r"ament_add_pytest_test\(\w+ test\b", block.group(1)), block.group(1)
    assert {"python3-pytest", "ament_cmake_pytest"} <= manifest()["test_depend"]
