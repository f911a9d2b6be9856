"""Errors that name a model file and why it cannot be used (no torch needed to catch them)."""

from __future__ import annotations

import os


class CheckpointError(Exception):
    """A checkpoint file that cannot be used; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"checkpoint {self.path}: {reason}")
