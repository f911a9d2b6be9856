"""Shared test setup.

DDS discovery never leaves this machine: ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST is set
before anything imports rclpy, and every ROS test runs in a ROS_DOMAIN_ID of its own
(``ros_domain``), so parallel runs and other sessions on the host do not see each other.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_STATIC_PEERS", None)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

_next_domain = [0]


def _domain_base() -> int:
    # Spread concurrent pytest processes over the domain range, then count up per test.
    return 20 + (os.getpid() % 8) * 10


@pytest.fixture
def ros_domain() -> int:
    """A ROS_DOMAIN_ID not used by any other test of this run (range 20..99)."""
    _next_domain[0] += 1
    return _domain_base() + (_next_domain[0] % 10)


@pytest.fixture
def ros_env(ros_domain: int) -> dict[str, str]:
    """Environment for child processes: this test's domain, localhost-only discovery."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(ros_domain)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def rclpy_context(ros_domain: int):
    """An initialised rclpy Context on this test's domain, shut down afterwards."""
    rclpy = pytest.importorskip("rclpy")
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=ros_domain)
    try:
        yield context
    finally:
        context.try_shutdown()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained small checkpoint (hands2019_21): for tests of the node, not accuracy."""
    from vvhand_core.checkpoint import save_random_checkpoint

    return save_random_checkpoint(tmp_path_factory.mktemp("model") / "random.pt",
                                  width=0.125, seed=3)


@pytest.fixture(scope="session")
def lite_export_dir(tmp_path_factory):
    """`vvhand export-onnx` of a random small model (seed 5): for the torch-free pipeline."""
    from random_model import random_model

    from vvhand_core import cli

    d = tmp_path_factory.mktemp("lite")
    out = d / "export"
    assert cli.main(["export-onnx", str(random_model(d / "m.pt", seed=5)), str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def hand_frame():
    """Frame 0 of a synthetic hand without background (seed 11)."""
    from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator

    return SyntheticHandGenerator(SynthConfig(seed=11, background="none")).frame(0)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One torch thread for the whole suite.

    The CI machine has 2 cores shared with the ROS child processes the tests start; two
    intra-op threads on a busy 2-core machine made small networks several times slower.
    """
    try:
        import torch
    except ImportError:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
