"""The data set registry: name -> how a root folder is opened, its camera, skeleton and cube.

=========  ===============================================  ============  =================
name       ROOT holds (split)                               skeleton      community uvd
=========  ===============================================  ============  =================
nyu        test/ or train/: joint_data.mat, depth_1_*.png   nyu_14        yes (588.03 ...)
icvl       Testing/test_seq_1.txt, test_seq_2.txt, Depth/   icvl_16       yes (240.99 ...)
           (test); Training/labels.txt, Depth/ (train)
hands2019  training_images/, training_joint_annotation.txt  hands2019_21  no
msra       P0..P8/<gesture>/joint.txt, *_depth.bin          msra_21       yes (241.42 ...)
synthetic  meta.json, annotations.jsonl, depth/ (written    hands2019_21  no (per-frame
           by ``vvhand synth``)                                           camera)
=========  ===============================================  ============  =================

``intrinsics`` is the camera the frames come with and, where ``community_uvd``, the one the
published result files ("u v d" per joint and line) are lifted with; ``cube_mm`` is the
cube published methods crop the data set with (a hint: a model keeps its own cube unless
told otherwise). The ICVL test split is test_seq_1 then test_seq_2 (the order of the
community ground-truth file), read with ``ICVL_EVAL_INTRINSICS``; MSRA frames come in the
community order (``vvhand_core.data.msra``).

:func:`open_dataset` raises :class:`DatasetRootError` (a DatasetError) naming the root, the
file that is missing or wrong and the layout expected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vvhand_core.camera import Intrinsics
from vvhand_core.data.base import DatasetError, DepthFrame, skip_summary
from vvhand_core.data.hands2019 import HANDS2019_CUBE_MM, HANDS2019_INTRINSICS
from vvhand_core.data.icvl import ICVL_CUBE_MM, ICVL_EVAL_INTRINSICS
from vvhand_core.data.msra import MSRA_CUBE_MM, MSRA_INTRINSICS
from vvhand_core.data.nyu import NYU_CUBE_MM, NYU_INTRINSICS
from vvhand_core.skeletons import HANDS2019_21, ICVL_16, MSRA_21, NYU_14, Skeleton


class DatasetRootError(DatasetError):
    """A data set root that cannot be opened; the message names the layout expected."""


@dataclass(frozen=True)
class DatasetSpec:
    """One registered data set (module docstring). ``intrinsics`` None: per frame."""

    name: str
    title: str
    skeleton: Skeleton
    intrinsics: Intrinsics | None
    cube_mm: float
    splits: tuple[str, ...]
    layout: str
    community_uvd: bool
    opener: Callable[..., object]


class ConcatFrames:
    """Several loaders read one after another as one data set (same skeleton)."""

    def __init__(self, parts: Sequence[object], name: str) -> None:
        """``parts``: loaders (``HandDataset``), in order."""
        self.parts, self.name = list(parts), name
        self.skeleton = self.parts[0].skeleton
        self.skipped = [s for p in self.parts for s in p.skipped]

    def __len__(self) -> int:
        """Total frames."""
        return sum(len(p) for p in self.parts)

    def summary(self) -> str:
        """One line: frame count and skips."""
        return skip_summary(self.name, len(self), self.skipped)

    def __getitem__(self, index: int) -> DepthFrame:
        """Frame ``index`` over the parts in order."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        index %= len(self)
        for p in self.parts:
            if index < len(p):
                return p[index]
            index -= len(p)
        raise AssertionError("unreachable")


def _open_nyu(root: Path, split: str, subjects, on_missing: str):
    from vvhand_core.data.nyu import NYUDataset

    return NYUDataset(root, split, on_missing=on_missing)


def _open_icvl(root: Path, split: str, subjects, on_missing: str):
    from vvhand_core.data.icvl import ICVLDataset

    folder = root / ("Testing" if split == "test" else "Training")
    files = ("test_seq_1.txt", "test_seq_2.txt") if split == "test" else ("labels.txt",)
    parts = [ICVLDataset(folder / f, folder / "Depth", ICVL_EVAL_INTRINSICS, on_missing)
             for f in files]
    return ConcatFrames(parts, f"icvl {split}")


def _open_hands2019(root: Path, split: str, subjects, on_missing: str):
    from vvhand_core.data.hands2019 import Hands2019Dataset

    bbs = root / f"{split}_bbs.txt"
    return Hands2019Dataset(root / f"{split}_images", root / f"{split}_joint_annotation.txt",
                            bbs if bbs.is_file() else None, on_missing=on_missing)


def _open_msra(root: Path, split: str, subjects, on_missing: str):
    from vvhand_core.data.msra import MSRADataset

    return MSRADataset(root, subjects, on_missing=on_missing)


def _open_synthetic(root: Path, split: str, subjects, on_missing: str):
    from vvhand_core.data.synthetic.io import SyntheticDataset

    return SyntheticDataset(root, on_missing=on_missing)


DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("nyu", "NYU hand pose", NYU_14, NYU_INTRINSICS, NYU_CUBE_MM, ("test", "train"),
                "ROOT/<split>/joint_data.mat and ROOT/<split>/depth_1_0000001.png ... "
                "(split test or train)", True, _open_nyu),
    DatasetSpec("icvl", "ICVL hand posture", ICVL_16, ICVL_EVAL_INTRINSICS, ICVL_CUBE_MM,
                ("test", "train"),
                "ROOT/Testing/test_seq_1.txt, ROOT/Testing/test_seq_2.txt and "
                "ROOT/Testing/Depth/test_seq_1/image_0000.png ... (test); "
                "ROOT/Training/labels.txt and ROOT/Training/Depth/... (train)", True,
                _open_icvl),
    DatasetSpec("hands2019", "HANDS 2019 task 1", HANDS2019_21, HANDS2019_INTRINSICS,
                HANDS2019_CUBE_MM, ("training",),
                "ROOT/training_images/image_D00000001.png ... and "
                "ROOT/training_joint_annotation.txt (ROOT/training_bbs.txt optional)", False,
                _open_hands2019),
    DatasetSpec("msra", "MSRA 2015 hand gesture", MSRA_21, MSRA_INTRINSICS, MSRA_CUBE_MM, (),
                "ROOT/P0/1/joint.txt and ROOT/P0/1/000000_depth.bin ... for subjects P0..P8 "
                "and gestures 1..9 I IP L MP RP T TIP Y", True, _open_msra),
    DatasetSpec("synthetic", "vvhand synthetic", HANDS2019_21, None, 250.0, (),
                "ROOT/meta.json, ROOT/annotations.jsonl and ROOT/depth/000000.png ... "
                "(written by `vvhand synth`)", False, _open_synthetic),
)}


def get_spec(name: str) -> DatasetSpec:
    """The registered data set ``name`` (ValueError listing the known names)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}") from None


def open_dataset(name: str, root: str | Path, split: str | None = None,
                 subjects: Sequence[str | int] | None = None, on_missing: str = "error"):
    """Open data set ``name`` under ``root`` -> a loader (``HandDataset``).

    split: one of the spec's ``splits`` (default its first; data sets without splits take
    none); subjects: MSRA only (default all present). Raises DatasetRootError naming the
    root, the problem and the expected layout; ValueError for a split or subjects the data
    set does not have.
    """
    spec = get_spec(name)
    if split is not None and split not in spec.splits:
        have = f"splits {', '.join(spec.splits)}" if spec.splits else "no splits"
        raise ValueError(f"{name} has {have}, got split {split!r}")
    if subjects is not None and name != "msra":
        raise ValueError(f"subjects apply to msra only, not {name}")
    split = split or (spec.splits[0] if spec.splits else "")
    root = Path(root)
    if not root.is_dir():
        raise DatasetRootError(root, f"not a directory; the {spec.title} data set's root "
                                     f"holds {spec.layout}")
    try:
        return spec.opener(root, split, subjects, on_missing)
    except DatasetError as exc:
        raise DatasetRootError(root, f"cannot read the {spec.title} data set here ({exc}); "
                                     f"expected {spec.layout}") from exc
