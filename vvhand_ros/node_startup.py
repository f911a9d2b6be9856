"""Signals while hand_pose_node starts and stops; imports nothing heavy (no ROS, no torch).

Three phases, one rule each:

- importing (``exit_on_signals_while_importing``, called by the entry points before they
  import rclpy, torch and the pipeline: seconds): SIGINT or SIGTERM ends the process at once
  with one line and status 0; nothing exists yet that needs cleaning up.
- starting and running (``interrupt_on_signals``, before ``rclpy.init``): SIGINT and SIGTERM
  both raise KeyboardInterrupt in the main thread. rclpy.init installs its own handlers,
  which shut the context down and then call these, so a model load or a configure
  transition in progress is interrupted instead of finishing first, and the node's start-up
  and spin code has one exception to handle for both signals.
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
    line = f"[INFO] [{name}]: {STARTING_LINE}\n".encode()

    def _exit(signum, frame) -> None:
        os.write(2, line)
        os._exit(0)

    for sig in SIGNALS:
        signal.signal(sig, _exit)


def exit_process(code: int) -> None:
    """End the process now with ``code``: flush stdout / stderr, skip finalisation (above)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more to say
            pass
    os._exit(code)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def interrupt_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread (see the module doc)."""
    for sig in SIGNALS:
        signal.signal(sig, _interrupt)


def ignore_signals() -> None:
    """SIGINT and SIGTERM do nothing from now on (the node is stopping)."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


__all__ = ["STARTING_LINE", "exit_on_signals_while_importing", "exit_process",
           "ignore_signals", "interrupt_on_signals"]
