"""The training and validation frames a DataConfig names (the test split is never opened).

Frame sources are indexable (len, [i] -> DepthFrame) and carry ``skeleton``:
:class:`GeneratedFrames` (the in-memory synthetic generator, frame i = generator frame
i), :class:`MixedFrames` (several scene versions, ``DataConfig.synth_mix``) and
:class:`FrameSlice` (a contiguous block of another source, for a held-out validation
tail).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vvhand_core.data.base import DepthFrame
from vvhand_core.skeletons import HANDS2019_21, Skeleton
from vvhand_core.train.config import ConfigError, DataConfig

SPLITS = ("train", "val")
_MIX_STREAM = 0x6D6978  # "mix": the draw that picks a mixed frame's scene version


class GeneratedFrames:
    """Frames 0..num_frames-1 of a SyntheticHandGenerator (rendered when asked for).

    Frame i depends only on the generator's seed and i, so any order, worker or process
    sees the same frame.
    """

    def __init__(self, generator, num_frames: int) -> None:
        """Serve ``num_frames`` frames of ``generator``."""
        self.generator = generator
        self.num_frames = int(num_frames)
        self.skeleton = HANDS2019_21  # the generator's ground truth
        self.skipped: list[tuple[str, str]] = []

    def __len__(self) -> int:
        """Number of frames."""
        return self.num_frames

    def __getitem__(self, index: int) -> DepthFrame:
        """Generator frame ``index``."""
        if not 0 <= index < self.num_frames:
            raise IndexError(f"index {index} out of range for {self.num_frames} frames")
        return self.generator.frame(int(index))


class MixedFrames:
    """Frames 0..num_frames-1 drawn from several scene versions (``DataConfig.synth_mix``).

    Frame i is frame i of the generator whose version a draw keyed by (seed, i) picks
    with the mixture's shares, so it depends only on the mixture, the seed and i.
    """

    def __init__(self, generators: dict[int, Any], shares: dict[int, float], seed: int,
                 num_frames: int) -> None:
        """``generators``: scene version -> SyntheticHandGenerator (same seed)."""
        self.versions = sorted(shares)
        total = float(sum(shares.values()))
        self.cumulative = np.cumsum([shares[v] / total for v in self.versions])
        self.generators, self.seed, self.num_frames = generators, int(seed), int(num_frames)
        self.skeleton = HANDS2019_21
        self.skipped: list[tuple[str, str]] = []

    def version_of(self, index: int) -> int:
        """The scene version frame ``index`` comes from."""
        u = np.random.default_rng([self.seed, _MIX_STREAM, int(index)]).random()
        return self.versions[min(int(np.searchsorted(self.cumulative, u, side="right")),
                                 len(self.versions) - 1)]

    def __len__(self) -> int:
        """Number of frames."""
        return self.num_frames

    def __getitem__(self, index: int) -> DepthFrame:
        """Frame ``index`` of the version it is drawn from."""
        if not 0 <= index < self.num_frames:
            raise IndexError(f"index {index} out of range for {self.num_frames} frames")
        return self.generators[self.version_of(index)].frame(int(index))


class FrameSlice:
    """Frames [start, stop) of another source, re-indexed from 0."""

    def __init__(self, frames, start: int, stop: int) -> None:
        """A view of ``frames[start:stop]``."""
        if not 0 <= start <= stop <= len(frames):
            raise ValueError(f"bad slice [{start}, {stop}) of {len(frames)} frames")
        self.frames, self.start, self.stop = frames, start, stop
        self.skeleton = frames.skeleton
        self.skipped = list(getattr(frames, "skipped", []))

    def __len__(self) -> int:
        """Number of frames."""
        return self.stop - self.start

    def __getitem__(self, index: int) -> DepthFrame:
        """Frame ``start + index`` of the underlying source."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        return self.frames[self.start + int(index)]


def _labelled_source(data: DataConfig, root: str):
    """The one labelled split of a real dataset / synthetic folder under ``root``."""
    base = Path(root)
    if data.dataset == "synthetic_dir":
        from vvhand_core.data.synthetic.io import SyntheticDataset

        return SyntheticDataset(base)
    if data.dataset == "nyu":
        from vvhand_core.data.nyu import NYUDataset

        return NYUDataset(base, "train")
    if data.dataset == "icvl":
        from vvhand_core.data.icvl import ICVLDataset

        return ICVLDataset(base / "Training" / "labels.txt")
    if data.dataset == "hands2019":
        from vvhand_core.data.hands2019 import Hands2019Dataset

        return Hands2019Dataset(base / "training_images", base / "training_joint_annotation.txt")
    raise ConfigError(f"no labelled source for dataset {data.dataset!r}")


def _cap(frames, limit: int):
    return FrameSlice(frames, 0, min(limit, len(frames))) if limit > 0 else frames


def open_split(data: DataConfig, split: str):
    """Frames of split "train" or "val" (see DataConfig for how each dataset is split)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if data.dataset == "synthetic":
        from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator

        seed = data.train_seed if split == "train" else data.val_seed
        n = data.train_frames if split == "train" else data.val_frames
        if data.synth_mix:
            gens = {v: SyntheticHandGenerator(SynthConfig.from_dict(
                {**data.synth, "scene_version": v, "seed": seed})) for v in data.synth_mix}
            return MixedFrames(gens, data.synth_mix, seed, n)
        cfg = SynthConfig.from_dict({**data.synth, "seed": seed})
        return GeneratedFrames(SyntheticHandGenerator(cfg), n)
    if data.dataset == "synthetic_dir" and data.val_root:
        source = _labelled_source(data, data.root if split == "train" else data.val_root)
        return _cap(source, data.train_frames if split == "train" else data.val_frames)
    source = _labelled_source(data, data.root)
    n_val = max(1, int(round(len(source) * data.val_fraction)))
    if len(source) < 2:
        raise ConfigError(f"{data.root}: needs at least 2 labelled frames to hold out a "
                          f"validation split, found {len(source)}")
    cut = len(source) - n_val
    if split == "train":
        return _cap(FrameSlice(source, 0, cut), data.train_frames)
    return _cap(FrameSlice(source, cut, len(source)), data.val_frames)


def check_skeleton(frames, skeleton: Skeleton, split: str) -> None:
    """ConfigError when a split's joint set is not the one the networks predict."""
    name = getattr(frames.skeleton, "name", None)
    if name != skeleton.name:
        raise ConfigError(f"the {split} frames are labelled with skeleton {name!r}, the "
                          f"networks predict {skeleton.name!r}")
