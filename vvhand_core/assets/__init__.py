"""Files shipped with the library: the pose models with their training records, the detector.

- ``default_model.pt`` (record ``default_model.md``): the node's pose model.
- ``grasp_model.pt`` (record ``grasp_model.md``): the same networks trained further on
  hands holding things (scenes version 3 mixed with version 2); the node's
  ``alternate_model`` "grasp" (:func:`alternate_model_path`).
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODEL_NAME = "default_model.pt"
GRASP_MODEL_NAME = "grasp_model.pt"
PACKAGED_ALTERNATES = {"grasp": GRASP_MODEL_NAME}  # alternate_model names -> packaged files


def default_model_path() -> Path:
    """Path of the shipped default checkpoint (may not exist in a source checkout)."""
    return Path(__file__).resolve().parent / DEFAULT_MODEL_NAME


def alternate_model_path(name: str) -> str:
    """The checkpoint of an ``alternate_model`` value.

    "" (none) stays "", a packaged name (:data:`PACKAGED_ALTERNATES`) is that file's
    path, anything else is a path as given (stripped).
    """
    name = name.strip()
    if name in PACKAGED_ALTERNATES:
        return str(Path(__file__).resolve().parent / PACKAGED_ALTERNATES[name])
    return name
