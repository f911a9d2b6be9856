"""Signals while hand_pose_node starts and stops; imports nothing heavy (no ROS, no torch).

Three phases, one rule each:

- importing and starting (``exit_on_signals_while_importing``, called by the entry points
  before they import rclpy, torch and the pipeline; then :class:`NodeSignals` from before
  ``rclpy.init`` until the node is built): SIGINT or SIGTERM ends the process at once with
  one INFO line and status 0, from the Python signal handler, before any other Python code
  runs: no exception unwinds through half-built DDS, onnxruntime or numba state and nothing
  is shut down (a node that never served has nothing to hand over; DDS peers forget its
  entities after their lease). A KeyboardInterrupt raised there instead lands wherever the
  main thread is, also in Python called back from C++: numba's LLVM object cache
  (llvmlite's ctypes callback swallowed it, "Exception ignored", and the load went on with
  LLVM's state unknown); the reliability probe's "SIGINT 1.00 s after the start" once
  ended with SIGABRT and no traceback (once in the probes of seven CI runs).
- running (:meth:`NodeSignals.running`, once the node is built and spins): SIGINT and
  SIGTERM raise KeyboardInterrupt in the main thread. The handler is installed before
  rclpy.init, which chains its own handlers to it (they wake the executor and shut the
  context down), so the spin and a lifecycle configure loading the model stop with one
  exception for both signals.
- stopping (``ignore_signals``): further signals are ignored, so a second Ctrl-C does not
  interrupt the clean-up (which otherwise ended with status -2).

The entry points end the process with :func:`exit_process` once the node is shut down:
the interpreter's own finalisation, with onnxruntime's, torch's and DDS's threads still
alive, ended a node stopped during its start-up with status -2 or -6 in a few of the
reliability probe's timed signals (issue 25), after its clean log line.
"""

from __future__ import annotations

import os
import signal
import sys

STARTING_LINE = "shutdown requested while starting: exiting"
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_on_signals_while_importing(name: str) -> None:
    """SIGINT / SIGTERM from now on: one INFO line naming ``name``, exit status 0."""
    NodeSignals(name).install()  # never told it runs: exits on a signal


def exit_process(code: int) -> None:
    """End the process now with ``code``: flush stdout / stderr, skip finalisation (above)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more to say
            pass
    os._exit(code)


class NodeSignals:
    """SIGINT / SIGTERM of a node process: exit at once while starting, then interrupt.

    :meth:`install` (main thread, before ``rclpy.init``) sets the handler; until
    :meth:`running` a signal writes one INFO line naming ``name`` and ends the process
    with status 0; afterwards it raises KeyboardInterrupt (the module doc says why).
    """

    def __init__(self, name: str) -> None:
        self._line = f"[INFO] [{name}]: {STARTING_LINE}\n".encode()
        self._starting = True

    def install(self) -> None:
        for sig in SIGNALS:
            signal.signal(sig, self._handle)

    def running(self) -> None:
        """From now on a signal raises KeyboardInterrupt in the main thread."""
        self._starting = False

    def _handle(self, signum, frame) -> None:
        if self._starting:
            os.write(2, self._line)
            os._exit(0)
        raise KeyboardInterrupt(signal.Signals(signum).name)


def ignore_signals() -> None:
    """SIGINT and SIGTERM do nothing from now on (the node is stopping)."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


__all__ = ["STARTING_LINE", "NodeSignals", "exit_on_signals_while_importing",
           "exit_process", "ignore_signals"]
