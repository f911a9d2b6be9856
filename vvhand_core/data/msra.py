"""MSRA 2015 hand gesture data set loader: 21 joints, 9 subjects x 17 gestures.

Sun, Wei, Liang, Tang and Sun, "Cascaded Hand Pose Regression", CVPR 2015.

Supported on-disk layout (the released one, ``cvpr15_MSRAHandGestureDB``)::

    <root>/P0 .. P8/<gesture>/joint.txt           gesture: 1..9, I, IP, L, MP, RP, T, TIP, Y
    <root>/P0 .. P8/<gesture>/000000_depth.bin    one file per frame, 6-digit 0-based index

Facts and where they come from:

* The data set's readme (cvpr15_MSRAHandGestureDB_readme.txt, published by the first
  author): 9 subjects' right hands, Intel Creative Interactive Gesture Camera, 17 gestures
  with about 500 frames each under ``PX/G``; intrinsics: principal point = image centre
  (160, 120), focal length 241.42 (``MSRA_INTRINSICS``, 320x240); each ``*.bin`` starts with
  6 unsigned int ``img_width img_height left top right bottom`` ([left, right) x [top,
  bottom) is the hand's bounding box in the 320x240 image), then (right - left) * (bottom -
  top) float32 depth values in millimetres in row-scanning order; ``joint.txt`` holds one
  line per frame of 21 x (x, y, z) in the order wrist, index mcp/pip/dip/tip, middle,
  ring, little (4 each), thumb (4) (``MSRA_21``). The first line of ``joint.txt`` is the
  frame count (as public loaders read it, e.g. V2V-PoseNet-pytorch's msra_hand.py).
* The coordinate convention is not in the readme. Public code agrees that the files store
  y pointing up and z negative (the scene lies at z < 0): V2V-PoseNet-pytorch negates z
  when reading joint.txt and lifts pixels with y = (cy - v) * z / fy; the community
  evaluation scripts (xinghaochen/awesome-hand-pose-estimation, evaluation/src/
  convert_results_xyz2uvd_Ge.py) negate y and z of MSRA xyz before projecting with
  (241.42, 241.42, 160, 120). This loader therefore returns (x, -y, -z): the camera optical
  frame (x right, y down, z forward, mm) in which the joints project onto the depth image.
  A label with z >= 0 is refused (the file is not in the released convention).
* Frame order (``P0..P8``, gestures in the order above, frames by index) is the order of
  the community ground-truth list (awesome-hand-pose-estimation, evaluation/groundtruth/
  msra/msra_test_list.txt), so predictions written in this order line up with it.
* ``MSRA_CUBE_MM`` = 200: the cube public code crops MSRA hands with (e.g. FastV2C-HandNet,
  src/draw_MSRA.m, ``cubicSz = 200``); only a hint (``meta["cube_mm"]``).

Depth outside the bounding box is 0 (invalid); zeros inside the box are background too
(public loaders replace them by a far depth, e.g. V2V-PoseNet-pytorch). ``meta``:
frame_id ("P0/1/000000"), source, subject, gesture, bbox (x, y, w, h), cube_mm.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_core.data.base import DatasetError, DepthFrame, SkipLog, skip_summary
from vvhand_core.skeletons import MSRA_21

MSRA_INTRINSICS = Intrinsics(fx=241.42, fy=241.42, cx=160.0, cy=120.0, width=320, height=240)
MSRA_SUBJECTS: tuple[str, ...] = tuple(f"P{i}" for i in range(9))
MSRA_GESTURES: tuple[str, ...] = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "I", "IP", "L",
                                  "MP", "RP", "T", "TIP", "Y")
MSRA_CUBE_MM = 200.0
_HEADER = struct.Struct("<6I")


def msra_depth_name(frame_index: int) -> str:
    """File name of 0-based frame ``frame_index`` of a gesture: ``000000_depth.bin``."""
    return f"{frame_index:06d}_depth.bin"


def read_msra_bin(path: str | Path, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    """Read one ``*_depth.bin`` -> (H, W) float32 depth mm, 0 outside the box.

    ``size`` = (width, height) expected in the header. Raises DatasetError naming the file
    when it is missing, shorter or longer than its header says, or its box leaves the image
    (:func:`read_msra_bin_box` also returns the box).
    """
    depth, _ = read_msra_bin_box(path, size)
    return depth


def read_msra_bin_box(path: str | Path, size: tuple[int, int] = (320, 240)
                      ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """As :func:`read_msra_bin`, also returning the box (left, top, right, bottom) pixels."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "file not found")
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        raise DatasetError(path, f"{len(data)} bytes, shorter than the 24-byte header")
    w, h, left, top, right, bottom = _HEADER.unpack_from(data)
    if (w, h) != tuple(size):
        raise DatasetError(path, f"header says {w}x{h}, expected {size[0]}x{size[1]}")
    if not (left < right <= w and top < bottom <= h):
        raise DatasetError(path, f"bad box left {left} top {top} right {right} bottom {bottom} "
                                 f"for a {w}x{h} image")
    count = (right - left) * (bottom - top)
    if len(data) != _HEADER.size + 4 * count:
        raise DatasetError(path, f"{len(data)} bytes; the box needs {_HEADER.size + 4 * count}")
    box = np.frombuffer(data, dtype="<f4", offset=_HEADER.size, count=count)
    depth = np.zeros((h, w), np.float32)
    depth[top:bottom, left:right] = box.reshape(bottom - top, right - left)
    depth[~np.isfinite(depth) | (depth < 0)] = 0.0
    return depth, (left, top, right, bottom)


def read_joint_file(path: str | Path) -> np.ndarray:
    """Read a gesture's joint.txt -> (F, 21, 3) camera-frame mm (x right, y down, z forward).

    DatasetError naming the file and line for a missing file, a bad count line, a line
    without 63 finite numbers, a frame count other than the first line's, or z >= 0.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "file not found")
    lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()
             if ln.strip()]
    if not lines:
        raise DatasetError(path, "empty (the first line must be the frame count)")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise DatasetError(f"{path}:1", "the first line must be the frame count") from None
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        try:
            values = np.array([float(t) for t in line.split()], dtype=np.float64)
        except ValueError:
            raise DatasetError(f"{path}:{lineno}", "non-numeric value") from None
        if values.size != 63 or not np.all(np.isfinite(values)):
            raise DatasetError(f"{path}:{lineno}", f"expected 63 finite numbers, got "
                                                   f"{values.size}")
        joints = values.reshape(21, 3)
        if np.any(joints[:, 2] >= 0):
            raise DatasetError(f"{path}:{lineno}", "z >= 0: MSRA files store z negative "
                                                   "(was this file converted?)")
        rows.append(joints * np.array([1.0, -1.0, -1.0]))  # y up, z negative -> optical
    if len(rows) != count:
        raise DatasetError(path, f"first line says {count} frames, found {len(rows)}")
    return np.asarray(rows, dtype=np.float64).reshape(count, 21, 3)


class MSRADataset:
    """MSRA 2015 frames of some subjects (see the module docstring), in the community order.

    subjects: names ("P3") or numbers (3); None = every ``P0..P8`` folder under ``root``
    (DatasetError naming ``root`` when there is none). ``on_missing``: "error" raises
    DatasetError for a missing gesture folder, joint.txt or depth file; "skip" records them
    in ``skipped``. A malformed joint.txt always raises; a malformed .bin raises when read.
    """

    def __init__(self, root: str | Path, subjects: Sequence[str | int] | None = None,
                 on_missing: str = "error") -> None:
        """Read every joint.txt and check that each frame's depth file exists."""
        self.root = Path(root)
        self.skeleton = MSRA_21
        self.intrinsics = MSRA_INTRINSICS
        self.subjects = self._subjects(subjects)
        log = SkipLog(on_missing)
        self._frames: list[tuple[str, str, int, np.ndarray]] = []
        for subject in self.subjects:
            for gesture in MSRA_GESTURES:
                folder = self.root / subject / gesture
                if not (folder / "joint.txt").is_file():
                    log.problem(folder / "joint.txt", "file not found")
                    continue
                for i, joints in enumerate(read_joint_file(folder / "joint.txt")):
                    if not (folder / msra_depth_name(i)).is_file():
                        log.problem(folder / msra_depth_name(i), "depth file missing")
                        continue
                    self._frames.append((subject, gesture, i, joints))
        self.skipped = log.skipped

    def _subjects(self, subjects: Sequence[str | int] | None) -> tuple[str, ...]:
        if subjects is None:
            found = tuple(s for s in MSRA_SUBJECTS if (self.root / s).is_dir())
            if not found:
                raise DatasetError(self.root, "no subject folder P0..P8")
            return found
        names = tuple(s if isinstance(s, str) and s.startswith("P") else f"P{s}"
                      for s in subjects)
        for s in names:
            if s not in MSRA_SUBJECTS:
                raise ValueError(f"unknown MSRA subject {s!r}; known: {', '.join(MSRA_SUBJECTS)}")
            if not (self.root / s).is_dir():
                raise DatasetError(self.root / s, "subject folder not found")
        return names

    def __len__(self) -> int:
        """Number of frames that will be yielded (skipped ones excluded)."""
        return len(self._frames)

    def summary(self) -> str:
        """One line: frame count and skips."""
        return skip_summary(f"msra {','.join(self.subjects)}", len(self), self.skipped)

    def __getitem__(self, index: int) -> DepthFrame:
        """Frame ``index`` (0-based among the frames kept)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        subject, gesture, i, joints = self._frames[index]
        path = self.root / subject / gesture / msra_depth_name(i)
        size = (self.intrinsics.width, self.intrinsics.height)
        depth, (left, top, right, bottom) = read_msra_bin_box(path, size)
        return DepthFrame(
            depth_mm=depth,
            intrinsics=self.intrinsics,
            joints_mm=joints.astype(np.float32),
            skeleton=self.skeleton,
            meta={"frame_id": f"{subject}/{gesture}/{i:06d}", "source": str(path),
                  "subject": subject, "gesture": gesture,
                  "bbox": (left, top, right - left, bottom - top), "cube_mm": MSRA_CUBE_MM},
        )
