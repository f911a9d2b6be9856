"""Files shipped with the library: the default model checkpoint and its training record."""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_NAME = "default_model.pt"


def default_model_path() -> Path:
    """Path of the shipped default checkpoint (may not exist in a source checkout)."""
    return Path(__file__).resolve().parent / DEFAULT_MODEL_NAME
