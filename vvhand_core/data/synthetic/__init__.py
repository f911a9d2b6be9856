"""Synthetic depth frames of an articulated hand with exact ground truth (hands2019_21).

``SyntheticHandGenerator(SynthConfig(...)).frame(i)`` for one frame (``scene_version`` 1:
the hand alone, frozen; 2: a person showing a hand, see ``scene_v2``), ``sample_sequence``
for a smoothly moving hand, ``write_dataset`` / ``SyntheticDataset`` for the on-disk
layout written by ``vvhand synth``; ``NEW_SCENES_SPLIT`` names the v2 evaluation split.
"""

from vvhand_core.data.synthetic.generator import (
    NEW_SCENES_SPLIT,
    NEW_SCENES_SPLIT_FRAMES,
    HandState,
    SynthConfig,
    SyntheticHandGenerator,
    sample_sequence,
)
from vvhand_core.data.synthetic.io import SyntheticDataset, write_dataset, write_frames

__all__ = [
    "NEW_SCENES_SPLIT",
    "NEW_SCENES_SPLIT_FRAMES",
    "HandState",
    "SynthConfig",
    "SyntheticDataset",
    "SyntheticHandGenerator",
    "sample_sequence",
    "write_dataset",
    "write_frames",
]
