"""Hand datasets: one record type (`DepthFrame`) for real and synthetic data.

Real: NYU, ICVL, Hands2019, MSRA 2015.

Loaders live in their own modules and are imported on demand:
``vvhand_core.data.nyu.NYUDataset``, ``vvhand_core.data.icvl.ICVLDataset``,
``vvhand_core.data.hands2019.Hands2019Dataset``, ``vvhand_core.data.msra.MSRADataset``,
``vvhand_core.data.synthetic``. ``vvhand_core.data.registry`` opens any of them by name from
a root folder (with its camera, skeleton and cube); ``vvhand_core.data.export`` writes
frames in their on-disk formats.

The names below come from ``vvhand_core.data.base`` when first used, so that the package's
numpy-only modules (e.g. the synthetic hand model) import without torch.
"""

from __future__ import annotations

import importlib

__all__ = ["DatasetError", "DepthFrame", "FrameBatch", "HandDataset", "collate_frames"]


def __getattr__(name: str):
    """The base module's names, imported on first use (PEP 562)."""
    if name in __all__:
        return getattr(importlib.import_module("vvhand_core.data.base"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
