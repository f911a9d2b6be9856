"""Synthetic depth frames of an articulated hand with exact ground truth (hands2019_21).

``SyntheticHandGenerator(SynthConfig(...)).frame(i)`` for one frame, ``sample_sequence``
for a smoothly moving hand, ``write_dataset`` / ``SyntheticDataset`` for the on-disk
layout written by ``vvhand synth``.
"""

from vvhand_core.data.synthetic.generator import (
    HandState,
    SynthConfig,
    SyntheticHandGenerator,
    sample_sequence,
)
from vvhand_core.data.synthetic.io import SyntheticDataset, write_dataset, write_frames

__all__ = [
    "HandState",
    "SynthConfig",
    "SyntheticDataset",
    "SyntheticHandGenerator",
    "sample_sequence",
    "write_dataset",
    "write_frames",
]
