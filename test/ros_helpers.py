"""Small helpers for tests over real rclpy and DDS."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor

REPO = Path(__file__).resolve().parents[1]


def spin_until(
    node, condition: Callable[[], bool], timeout_s: float, context=None, step_s: float = 0.05
) -> bool:
    """Spin ``node`` until ``condition()`` holds or ``timeout_s`` passes; return condition()."""
    executor = SingleThreadedExecutor(context=context or node.context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not condition():
            executor.spin_once(timeout_sec=step_s)
        return condition()
    finally:
        executor.remove_node(node)
        executor.shutdown()


def start_python(code: str, env: dict[str, str]) -> subprocess.Popen:
    """Run ``code`` in a child Python process (same interpreter), capturing its output."""
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        cwd=str(REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(proc: subprocess.Popen, timeout_s: float = 10.0) -> str:
    """Terminate a child process and return everything it printed."""
    if proc.poll() is None:
        proc.terminate()
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


__all__ = ["rclpy", "spin_until", "start_python", "stop", "REPO"]
