"""The package manifests tell the truth (issue 15): what they declare is used, what is used
is declared.

Two ROS packages (docs/architecture.md, "Repository layout"): the node package vvhand
(ros/vvhand) and the message package vvhand_msgs (ros/vvhand_msgs). vvhand's run-time
dependencies are checked against the imports of the installed code (vvhand_core,
vvhand_ros, launch/, scripts/); build and test dependencies of both against their
CMakeLists.txt's find_package calls, and `colcon test` has a BUILD_TESTING block that runs
this suite. vvhand_msgs depends on message packages only, and on exactly those its
messages use, so a consumer of the messages installs nothing of the inference stack.
"""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NODE_PKG = REPO / "ros" / "vvhand"
MSGS_PKG = REPO / "ros" / "vvhand_msgs"
# what vvhand_msgs may depend on: the build tools of interfaces and message packages
MSGS_ALLOWED = {"ament_cmake", "rosidl_default_generators", "rosidl_default_runtime",
                "builtin_interfaces", "std_msgs", "geometry_msgs"}

# rosdep keys whose Python module has another name
MODULE_OF = {
    "python3-numpy": "numpy", "python3-scipy": "scipy", "python3-numba": "numba",
    "python3-yaml": "yaml",
    "python3-tqdm": "tqdm", "python3-matplotlib": "matplotlib", "python3-pil": "PIL",
    "python3-psutil": "psutil", "python3-rosbags-pip": "rosbags",
    "python3-onnxruntime-pip": "onnxruntime",
}
# installed with pip into a venv (README "pip step"): no rosdep key (torch), pip keys
# (rosbags, onnxruntime: declared above, installed by pip with their pins), optional extras
# (pycuda renderer, onnx exporter) or benchmark-only (threadpoolctl: `vvhand bench fit` times
# on one core; requirements/base.txt). `ros2 launch` does not see them (test_launch.py).
PIP_ONLY = {"torch", "rosbags", "pycuda", "onnx", "onnxruntime", "threadpoolctl"}
FIRST_PARTY = {"vvhand_core", "vvhand_ros"}


def manifest(package: Path = NODE_PKG) -> dict[str, set[str]]:
    """Dependency tag ("exec_depend", ...) -> names; ``depend`` counts as build and exec."""
    root = ET.parse(package / "package.xml").getroot()
    out: dict[str, set[str]] = {}
    for el in root:
        if el.tag.endswith("depend"):
            tags = ("build_depend", "exec_depend") if el.tag == "depend" else (el.tag,)
            for tag in tags:
                out.setdefault(tag, set()).add(el.text.strip())
    return out


def cmake_packages(package: Path) -> set[str]:
    return set(re.findall(r"find_package\((\w+)", (package / "CMakeLists.txt").read_text()))


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
    for package in (NODE_PKG, MSGS_PKG):
        deps = manifest(package)
        wanted = (deps["buildtool_depend"] | deps.get("build_depend", set())
                  | {d for d in deps.get("test_depend", ()) if not d.startswith("python3-")})
        found = cmake_packages(package)
        assert wanted == found, (package.name, sorted(wanted), sorted(found))


def test_messages_package_depends_on_message_packages_only():
    """vvhand_msgs: a messages-only package, depending on what its .msg files use."""
    deps = manifest(MSGS_PKG)
    declared = set().union(*deps.values())
    assert declared <= MSGS_ALLOWED, sorted(declared - MSGS_ALLOWED)
    assert {"rosidl_default_generators", "rosidl_default_runtime"} <= declared
    root = ET.parse(MSGS_PKG / "package.xml").getroot()
    assert root.findtext("name") == "vvhand_msgs"
    assert root.findtext("member_of_group") == "rosidl_interface_packages"
    msgs = sorted((MSGS_PKG / "msg").glob("*.msg"))
    used = set()
    for path in msgs:
        for line in path.read_text().splitlines():
            field = line.split("#", 1)[0].split()
            if field and "/" in field[0]:
                used.add(field[0].split("/")[0])
    assert used <= deps["build_depend"] & deps["exec_depend"], sorted(used)
    cmake = (MSGS_PKG / "CMakeLists.txt").read_text()
    generated = set(re.findall(r'"msg/(\w+\.msg)"', cmake))
    assert generated == {p.name for p in msgs}, sorted(generated)
    dependencies = re.search(r"DEPENDENCIES ([\w ]+)", cmake).group(1).split()
    assert used <= set(dependencies), dependencies
    # the node package neither generates interfaces nor builds against them
    assert "rosidl" not in (NODE_PKG / "CMakeLists.txt").read_text()
    assert "vvhand_msgs" in manifest(NODE_PKG)["exec_depend"]


def test_colcon_test_runs_the_suite():
    """A BUILD_TESTING block registers the pytest suite with ctest (ament_cmake_pytest)."""
    cmake = (NODE_PKG / "CMakeLists.txt").read_text()
    block = re.search(r"if\(BUILD_TESTING\)(.*?)endif\(\)", cmake, re.S)
    assert block, "ros/vvhand/CMakeLists.txt has no BUILD_TESTING block"
    assert "find_package(ament_cmake_pytest REQUIRED)" in block.group(1)
    assert re.search(r'ament_add_pytest_test\(\w+ "\$\{VVHAND_ROOT\}/test"',
                     block.group(1)), block.group(1)
    root = re.search(r'get_filename_component\(VVHAND_ROOT "([^"]+)" ABSOLUTE\)', cmake)
    assert root and (NODE_PKG / root.group(1).replace("${CMAKE_CURRENT_SOURCE_DIR}/", "")
                     ).resolve() == REPO
    assert {"python3-pytest", "ament_cmake_pytest"} <= manifest()["test_depend"]
