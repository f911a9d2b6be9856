"""README's plain-CMake build of both packages, run verbatim into a throwaway prefix.

The block between ``<!-- cmake-build:begin -->`` and ``<!-- cmake-build:end -->`` in
README.md is executed in a copy of the tracked sources: it builds the message package
vvhand_msgs (ros/vvhand_msgs) and the node package vvhand (ros/vvhand). Its first line
sources a ROS install; here the stand-in for ``/opt/ros/$ROS_DISTRO/setup.bash`` is this
venv, which holds the ROS 2 wheels (AMENT_PREFIX_PATH / CMAKE_PREFIX_PATH point at it). Then
the installed programs run as a user runs them, after sourcing the install's
local_setup.bash: `vvhand --help` and the node entry points (the plain node up to its ready
line). colcon, as the README's workspace build runs it, finds exactly these two packages in
a clone of the repository (test_colcon_finds_both_packages).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)

pytestmark = pytest.mark.slow


def readme_cmake_block() -> list[str]:
    text = (REPO / "README.md").read_text()
    m = re.search(r"<!-- cmake-build:begin -->\s*```bash\n(.*?)```\s*<!-- cmake-build:end -->",
                  text, re.S)
    assert m, "README.md lost its cmake-build block"
    return [ln for ln in m.group(1).splitlines() if ln.strip()]


def test_readme_block_names_the_ros_setup_and_cmake_steps():
    lines = readme_cmake_block()
    assert lines[0].startswith("source /opt/ros/")
    assert any(ln.startswith("cmake --install") for ln in lines)


def copy_sources(dest: Path) -> None:
    """The repository's files as a clone has them (tracked and new, not ignored) -> dest."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)


def test_colcon_finds_both_packages(tmp_path):
    """A clone in a workspace's src/: colcon finds vvhand_msgs and vvhand, nothing else, and
    orders vvhand_msgs first (vvhand depends on it). A package.xml, CMakeLists.txt or
    setup.py at the root would hide both (colcon does not look below a package)."""
    colcon = VENV / "bin" / "colcon"
    if not colcon.exists():
        pytest.skip("colcon is not installed in this venv: run scripts/setup_env.sh")
    ws = tmp_path / "ws"
    copy_sources(ws / "src" / "vvhand")
    proc = subprocess.run([str(colcon), "--log-base", str(tmp_path / "log"), "list",
                           "--topological-order"], cwd=ws, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    assert rows == [["vvhand_msgs", "src/vvhand/ros/vvhand_msgs", "(ros.ament_cmake)"],
                    ["vvhand", "src/vvhand/ros/vvhand", "(ros.ament_cmake)"]], proc.stdout


def test_readme_cmake_build_installs_the_package(tmp_path, ros_env):
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    if not (VENV / "share" / "rosidl_default_generators").is_dir():
        pytest.skip("no ROS 2 prefix in this venv: run scripts/setup_env.sh")
    if not (VENV / "share" / "ament_cmake_pytest").is_dir():  # BUILD_TESTING is on by default
        pytest.skip("ament_cmake_pytest is not installed in this venv: run scripts/setup_env.sh")
    src = tmp_path / "src"
    copy_sources(src)
    prefix = tmp_path / "prefix"
    lines = readme_cmake_block()
    ros_standin = f'export AMENT_PREFIX_PATH="{VENV}" CMAKE_PREFIX_PATH="{VENV}"'
    script = "set -euo pipefail\n" + "\n".join([ros_standin, *lines[1:]]) + "\n"
    env = dict(os.environ, PREFIX=str(prefix), PATH=f"{VENV / 'bin'}:{os.environ['PATH']}")
    proc = subprocess.run(["bash", "-c", script], cwd=src, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    site = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = site / "site-packages"
    msgs_share = prefix / "share" / "vvhand_msgs"
    expected = [
        prefix / "lib" / "vvhand" / "hand_pose_node",
        prefix / "lib" / "vvhand" / "hand_pose_lifecycle_node",
        prefix / "lib" / "vvhand" / "vvhand",
        prefix / "bin" / "vvhand",
        prefix / "share" / "vvhand" / "package.xml",
        msgs_share / "package.xml",
        msgs_share / "msg" / "HandPose.msg",
        msgs_share / "msg" / "HandPoseArray.msg",
        prefix / "share" / "vvhand" / "launch",
        prefix / "share" / "vvhand" / "config",
        site / "vvhand_core" / "__init__.py",
        site / "vvhand_ros" / "conversions.py",
        site / "vvhand_msgs" / "msg" / "_hand_pose.py",
    ]
    # the node package carries no interfaces of its own
    assert not (prefix / "share" / "vvhand" / "msg").exists()
    missing = [str(p) for p in expected if not p.exists()]
    assert not missing, f"not installed: {missing}"
    for program in ("hand_pose_node", "hand_pose_lifecycle_node", "vvhand"):
        assert os.access(prefix / "lib" / "vvhand" / program, os.X_OK), program
    assert os.access(prefix / "bin" / "vvhand", os.X_OK)

    # `colcon test` runs ctest in the build folder: the pytest suite is registered there, and
    # runs (narrowed here to one quick test with PYTEST_ADDOPTS, which pytest honours)
    if shutil.which("ctest") is not None:
        build = src / "build" / "vvhand"
        listed = subprocess.run(["ctest", "-N", "--test-dir", str(build)],
                                capture_output=True, text=True, timeout=120)
        assert listed.returncode == 0 and "vvhand_pytest" in listed.stdout, listed.stdout
        env = dict(os.environ, PYTEST_ADDOPTS="-p no:cacheprovider -k test_colcon_test_runs")
        ran = subprocess.run(["ctest", "--test-dir", str(build), "-R", "vvhand_pytest",
                              "--output-on-failure"], env=env, capture_output=True, text=True,
                             timeout=600)
        assert ran.returncode == 0, ran.stdout[-3000:]
        log = (build / "ament_cmake_pytest" / "vvhand_pytest.txt").read_text()
        assert re.search(r"\b1 passed", log), log[-3000:]

    # The installed message package is the one imported, and it works.
    code = (
        "import vvhand_msgs.msg, vvhand_core; m = vvhand_msgs.msg.HandPose(valid=True);"
        "print(vvhand_msgs.msg.__file__); print(vvhand_core.__file__)"
    )
    env = dict(os.environ, PYTHONPATH=str(site),
               LD_LIBRARY_PATH=f"{prefix / 'lib'}:{os.environ.get('LD_LIBRARY_PATH', '')}")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert all(line.startswith(str(prefix)) for line in proc.stdout.split()), proc.stdout

    # As a user runs it: source the install, then `vvhand` from PATH and the node entry points
    run_installed_programs(prefix, ros_env)


def run_installed_programs(prefix: Path, ros_env: dict[str, str]) -> None:
    """`vvhand --help` found on PATH after sourcing local_setup.bash (the installed one, not
    the venv's), both node entries refusing a bad parameter with one FATAL line, and the
    plain node starting from the installed package up to its ready line."""
    setup = f'source "{prefix}/share/vvhand/local_setup.bash"'
    env = dict(ros_env, PATH=f"{VENV / 'bin'}:{ros_env['PATH']}")

    def sourced(command: str, **kwargs):
        return subprocess.run(["bash", "-c", f"{setup} && {command}"], env=env,
                              capture_output=True, text=True, **kwargs)

    found = sourced("command -v vvhand && vvhand --help", timeout=120)
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines()[0] == str(prefix / "bin" / "vvhand")
    assert "replay" in found.stdout and "synth-bag" in found.stdout
    lib = prefix / "lib" / "vvhand"
    for program in ("hand_pose_node", "hand_pose_lifecycle_node"):
        bad = sourced(f'"{lib / program}" --ros-args -p num_views:=99', timeout=120)
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert "num_views" in bad.stdout + bad.stderr and "FATAL" in bad.stdout + bad.stderr
    node = subprocess.Popen(
        ["bash", "-c", f'{setup} && exec "{lib / "hand_pose_node"}" --ros-args '
         "-p device:=cpu -p backend:=torch"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in node.stdout:  # ends when the node exits
            lines.append(line)
            if "ready:" in line:
                break
        assert any("ready:" in ln for ln in lines), "".join(lines)[-3000:]
        assert any(f"{prefix}/lib/python" in ln and "default_model.pt" in ln for ln in lines)
        node.send_signal(signal.SIGINT)
        assert node.wait(timeout=60) == 0
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
