"""ICVL hand posture dataset loader (Tang et al. 2014), 16 joints.

Supported on-disk layout (the released one)::

    <root>/Training/labels.txt            lines "<relpath> u1 v1 d1 ... u16 v16 d16"
    <root>/Training/Depth/<relpath>       16-bit PNG, depth mm, 320x240
    <root>/Testing/test_seq_1.txt         same line format
    <root>/Testing/Depth/<relpath>        e.g. Depth/test_seq_1/image_0000.png

Give the label file; the depth folder defaults to ``<label file's folder>/Depth``. The image
path is everything before the last 48 numbers of a line, so paths containing spaces work.
Joint order is ``ICVL_16``: palm, then root/mid/tip of thumb, index, middle, ring, pinky.

Intrinsics, made explicit because two conventions exist:
* ``ICVL_LABEL_INTRINSICS`` (fx = fy = 241.42, cx 160, cy 120): the authors' loader
  converts labels uvd -> xyz with it for training. It is the default here.
* ``ICVL_EVAL_INTRINSICS`` (fx 240.99, fy 240.96, cx 160, cy 120): the community
  evaluation convention (published tables); ``vvhand eval --dataset icvl`` uses it.
The frame's ``intrinsics`` are the ones passed in; ``meta["joints_uvd"]`` keeps the labels
as stored, so any convention can be applied later.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vvhand_core.camera import Intrinsics, uvd_to_xyz
from vvhand_core.data.base import DatasetError, DepthFrame, SkipLog, read_depth_png, skip_summary
from vvhand_core.skeletons import ICVL_16

ICVL_LABEL_INTRINSICS = Intrinsics(fx=241.42, fy=241.42, cx=160.0, cy=120.0, width=320, height=240)
ICVL_EVAL_INTRINSICS = Intrinsics(fx=240.99, fy=240.96, cx=160.0, cy=120.0, width=320, height=240)
ICVL_CUBE_MM = 220.0


def parse_label_line(line: str, num_joints: int = 16) -> tuple[str, np.ndarray]:
    """Split "path u1 v1 d1 ..." into (path, uvd (J, 3)); ValueError when malformed."""
    tokens = line.split()
    n = 3 * num_joints
    if len(tokens) < n + 1:
        raise ValueError(f"expected a path and {n} numbers, got {len(tokens)} fields")
    try:
        values = np.array([float(t) for t in tokens[-n:]], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"non-numeric label ({exc})") from None
    path = " ".join(tokens[:-n])
    if not np.all(np.isfinite(values)):
        raise ValueError("non-finite label")
    return path, values.reshape(num_joints, 3)


class ICVLDataset:
    """ICVL frames listed in one label file (see the module docstring).

    ``on_missing``: "error" raises DatasetError for a missing depth PNG or a malformed label
    line (naming the file and line); "skip" records them in ``skipped`` instead.
    """

    def __init__(
        self,
        label_file: str | Path,
        depth_dir: str | Path | None = None,
        intrinsics: Intrinsics = ICVL_LABEL_INTRINSICS,
        on_missing: str = "error",
    ) -> None:
        """Parse the label file and check that every listed depth image exists."""
        self.skeleton = ICVL_16
        self.label_file = Path(label_file)
        self.depth_dir = (
            Path(depth_dir) if depth_dir is not None else self.label_file.parent / "Depth"
        )
        self.intrinsics = intrinsics
        log = SkipLog(on_missing)
        if not self.label_file.is_file():
            raise DatasetError(self.label_file, "label file not found")
        self._entries: list[tuple[str, np.ndarray]] = []
        lines = self.label_file.read_text(encoding="utf-8", errors="replace").splitlines()
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rel, uvd = parse_label_line(line, self.skeleton.num_joints)
            except ValueError as exc:
                log.problem(f"{self.label_file}:{lineno}", str(exc))
                continue
            if not (self.depth_dir / rel).is_file():
                log.problem(self.depth_dir / rel, "depth image missing")
                continue
            self._entries.append((rel, uvd))
        self.skipped = log.skipped

    def __len__(self) -> int:
        """Number of frames that will be yielded (skipped ones excluded)."""
        return len(self._entries)

    def summary(self) -> str:
        """One line: frame count and skips."""
        return skip_summary(f"icvl {self.label_file.name}", len(self), self.skipped)

    def __getitem__(self, index: int) -> DepthFrame:
        """Frame ``index`` (0-based among the frames kept)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        rel, uvd = self._entries[index]
        path = self.depth_dir / rel
        depth = read_depth_png(path, (self.intrinsics.width, self.intrinsics.height))
        return DepthFrame(
            depth_mm=depth,
            intrinsics=self.intrinsics,
            joints_mm=uvd_to_xyz(uvd, self.intrinsics).astype(np.float32),
            skeleton=self.skeleton,
            meta={
                "frame_id": rel,
                "source": str(path),
                "joints_uvd": uvd.astype(np.float32),
                "cube_mm": ICVL_CUBE_MM,
            },
        )
