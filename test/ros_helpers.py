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


def call_when_answering(node, client, request, timeout_s: float = 60.0, try_s: float = 3.0):
    """Call an idempotent service until an answer arrives; return it (None after ``timeout_s``).

    ``wait_for_service`` only says the request reader is matched: a response sent before the
    server has matched the client's response reader is lost (DDS discovery is asynchronous).
    Re-sending a side-effect-free request until one is answered proves both directions.
    """
    deadline = time.monotonic() + timeout_s
    if not client.wait_for_service(timeout_sec=timeout_s):
        return None
    while time.monotonic() < deadline:
        fut = client.call_async(request)
        if spin_until(node, fut.done, min(try_s, max(deadline - time.monotonic(), 0.0))):
            return fut.result()
        client.remove_pending_request(fut)
    return None


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


__all__ = ["rclpy", "call_when_answering", "spin_until", "start_python", "stop", "REPO"]
