"""HANDS 2019 challenge, Task 1 (depth-based 3D hand pose) loader, 21 joints.

Supported on-disk layout (the released one)::

    <dir>/training_images/image_D00000001.png     16-bit PNG, depth mm, 640x480
    <dir>/training_joint_annotation.txt           "image_D00000001.png x1 y1 z1 ... x21 y21 z21"
    <dir>/<bbox file>                             optional, "image_D00000001.png x y w h"

* Joints are camera-frame millimetres (x right, y down, z forward). In the files they are
  in BigHand order ``[Wrist, TMCP, IMCP, MMCP, RMCP, PMCP, TPIP, TDIP, TTIP, IPIP, IDIP,
  ITIP, MPIP, MDIP, MTIP, RPIP, RDIP, RTIP, PPIP, PDIP, PTIP]`` (``joint_order="bighand"``,
  the default) and are reordered into ``HANDS2019_21`` (wrist, then MCP/PIP/DIP/TIP per
  finger, thumb..pinky). Files already in skeleton order: ``joint_order="skeleton"``.
* Bounding boxes (pixels, top-left x, y, width, height) go to ``meta["bbox"]``.
* A split without joint labels (the test set) is read from the bbox file alone: frames
  then have ``joints_mm = None``.
* Camera: ``HANDS2019_INTRINSICS`` (fx 475.065948, fy 475.065857, cx 315.944855,
  cy 245.287079, 640x480; the SR300 values published with the dataset family).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_core.data.base import DatasetError, DepthFrame, SkipLog, read_depth_png, skip_summary
from vvhand_core.skeletons import FINGERS, HANDS2019_21

HANDS2019_INTRINSICS = Intrinsics(
    fx=475.065948, fy=475.065857, cx=315.944855, cy=245.287079, width=640, height=480
)
HANDS2019_CUBE_MM = 300.0
JOINT_ORDERS = ("bighand", "skeleton")


def _bighand_names() -> tuple[str, ...]:
    """HANDS2019_21 joint names in the file (BigHand) order."""
    names = ["wrist"] + [f"{f}_mcp" for f in FINGERS]
    for f in FINGERS:
        names += [f"{f}_pip", f"{f}_dip", f"{f}_tip"]
    return tuple(names)


BIGHAND_NAMES: tuple[str, ...] = _bighand_names()
# BIGHAND_TO_SKELETON[j] = row of the file holding HANDS2019_21 joint j.
BIGHAND_TO_SKELETON: tuple[int, ...] = tuple(
    BIGHAND_NAMES.index(n) for n in HANDS2019_21.joint_names
)


def _read_lines(path: Path) -> list[tuple[int, list[str]]]:
    if not path.is_file():
        raise DatasetError(path, "file not found")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [(n, line.split()) for n, line in enumerate(lines, start=1) if line.strip()]


def read_bboxes(path: str | Path) -> dict[str, tuple[float, float, float, float]]:
    """Bounding boxes "name x y w h" -> {name: (x, y, w, h)}; DatasetError naming bad lines."""
    path = Path(path)
    out = {}
    for lineno, tokens in _read_lines(path):
        try:
            if len(tokens) != 5:
                raise ValueError(f"expected 5 fields, got {len(tokens)}")
            x, y, w, h = (float(t) for t in tokens[1:])
        except ValueError as exc:
            raise DatasetError(f"{path}:{lineno}", f"bad bounding box line ({exc})") from None
        out[tokens[0]] = (x, y, w, h)
    return out


class Hands2019Dataset:
    """HANDS 2019 Task 1 frames (see the module docstring).

    ``on_missing``: "error" raises DatasetError for a missing image or malformed annotation
    line (naming file and line); "skip" records them in ``skipped`` instead.
    """

    def __init__(
        self,
        image_dir: str | Path,
        annotation_file: str | Path | None = None,
        bbox_file: str | Path | None = None,
        joint_order: str = "bighand",
        on_missing: str = "error",
    ) -> None:
        """Index the frames of the annotation file (or of the bbox file when unlabelled)."""
        if joint_order not in JOINT_ORDERS:
            raise ValueError(f"joint_order must be one of {JOINT_ORDERS}, got {joint_order!r}")
        if annotation_file is None and bbox_file is None:
            raise ValueError("give an annotation file, a bbox file, or both")
        self.skeleton = HANDS2019_21
        self.image_dir = Path(image_dir)
        self.intrinsics = HANDS2019_INTRINSICS
        log = SkipLog(on_missing)
        bboxes = read_bboxes(bbox_file) if bbox_file is not None else {}
        entries: list[tuple[str, np.ndarray | None]] = []
        if annotation_file is not None:
            ann = Path(annotation_file)
            n = 3 * self.skeleton.num_joints
            for lineno, tokens in _read_lines(ann):
                try:
                    if len(tokens) != n + 1:
                        raise ValueError(f"expected a name and {n} numbers, got {len(tokens)}")
                    joints = np.array([float(t) for t in tokens[1:]], dtype=np.float64)
                    if not np.all(np.isfinite(joints)):
                        raise ValueError("non-finite joint")
                except ValueError as exc:
                    log.problem(f"{ann}:{lineno}", f"bad annotation line ({exc})")
                    continue
                joints = joints.reshape(-1, 3)
                if joint_order == "bighand":
                    joints = joints[list(BIGHAND_TO_SKELETON)]
                entries.append((tokens[0], joints))
        else:
            entries = [(name, None) for name in bboxes]
        self._entries: list[tuple[str, np.ndarray | None]] = []
        for name, joints in entries:
            if not (self.image_dir / name).is_file():
                log.problem(self.image_dir / name, "depth image missing")
                continue
            self._entries.append((name, joints))
        self._bboxes = bboxes
        self.skipped = log.skipped

    def __len__(self) -> int:
        """Number of frames that will be yielded (skipped ones excluded)."""
        return len(self._entries)

    def summary(self) -> str:
        """One line: frame count and skips."""
        return skip_summary(f"hands2019 {self.image_dir.name}", len(self), self.skipped)

    def __getitem__(self, index: int) -> DepthFrame:
        """Frame ``index`` (0-based among the frames kept)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        name, joints = self._entries[index]
        path = self.image_dir / name
        depth = read_depth_png(path, (self.intrinsics.width, self.intrinsics.height))
        meta = {"frame_id": name, "source": str(path), "cube_mm": HANDS2019_CUBE_MM}
        if name in self._bboxes:
            meta["bbox"] = self._bboxes[name]
        return DepthFrame(
            depth_mm=depth,
            intrinsics=self.intrinsics,
            joints_mm=None if joints is None else joints.astype(np.float32),
            skeleton=self.skeleton,
            meta=meta,
        )
