"""Hand datasets: one record type (`DepthFrame`) for real (NYU, ICVL, Hands2019) and synthetic data.

Loaders live in their own modules and are imported on demand:
``vvhand_core.data.nyu.NYUDataset``, ``vvhand_core.data.icvl.ICVLDataset``,
``vvhand_core.data.hands2019.Hands2019Dataset``, ``vvhand_core.data.synthetic``.
"""

from vvhand_core.data.base import DatasetError, DepthFrame, FrameBatch, HandDataset, collate_frames

__all__ = ["DatasetError", "DepthFrame", "FrameBatch", "HandDataset", "collate_frames"]
