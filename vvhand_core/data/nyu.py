"""NYU hand pose dataset loader (Tompson et al. 2014), 14 evaluation joints, kinect 1.

Supported on-disk layout (the released one)::

    <root>/<split>/joint_data.mat          # split = "train" or "test"
    <root>/<split>/depth_1_0000001.png     # kinect 1, 1-based frame index, 7 digits

* ``joint_data.mat`` (MATLAB v5, read with scipy.io.loadmat) holds ``joint_xyz`` and
  ``joint_uvd`` shaped (kinects, frames, 36, 3). Kinect 1 (index 0) is used; the 14
  evaluation joints are NYU indices [0,3,6,9,12,15,18,21,24,25,27,30,31,32] (order of
  ``NYU_14``). NYU's ``joint_xyz`` has y up: y is negated into the camera convention
  (y down). A MATLAB v7.3 (HDF5) file is rejected with an error naming it.
* Depth PNGs are RGB with depth mm = (G << 8) | B, 640x480.
* Camera: ``NYU_INTRINSICS`` (fx 588.03, fy 587.07, cx 320, cy 240), the community
  evaluation convention.

``meta``: frame_id (0-based), source, ``joints_uvd`` (14, 3) as stored in the file, cube_mm
(280; 5/6 of that for test frames >= 2440, as the authors do).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from vvhand_core.camera import Intrinsics
from vvhand_core.data.base import (
    DatasetError,
    DepthFrame,
    SkipLog,
    read_rgb_packed_depth_png,
    skip_summary,
)
from vvhand_core.skeletons import NYU_14

NYU_INTRINSICS = Intrinsics(fx=588.03, fy=587.07, cx=320.0, cy=240.0, width=640, height=480)
NYU_EVAL_JOINTS: tuple[int, ...] = (0, 3, 6, 9, 12, 15, 18, 21, 24, 25, 27, 30, 31, 32)
NYU_CUBE_MM = 280.0
NYU_SMALL_CUBE_FROM_TEST_FRAME = 2440  # authors shrink the cube to 5/6 from this test frame on
SPLITS = ("train", "test")


def nyu_depth_name(frame_index: int, kinect: int = 1) -> str:
    """File name of 0-based frame ``frame_index``: ``depth_<kinect>_<index+1:07d>.png``."""
    return f"depth_{kinect}_{frame_index + 1:07d}.png"


def load_joint_data(mat_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Kinect-1 eval joints from joint_data.mat: (xyz_mm (F, 14, 3) y down, uvd (F, 14, 3))."""
    mat_path = Path(mat_path)
    if not mat_path.is_file():
        raise DatasetError(mat_path, "file not found")
    try:
        mat = scipy.io.loadmat(str(mat_path), variable_names=["joint_xyz", "joint_uvd"])
    except (NotImplementedError, ValueError, OSError, TypeError) as exc:
        raise DatasetError(mat_path, f"cannot read MATLAB file ({exc})") from exc
    out = []
    for key in ("joint_xyz", "joint_uvd"):
        if key not in mat:
            raise DatasetError(mat_path, f"no variable {key!r}")
        arr = np.asarray(mat[key], dtype=np.float64)
        if arr.ndim != 4 or arr.shape[2] != 36 or arr.shape[3] != 3:
            raise DatasetError(mat_path, f"{key} has shape {arr.shape}, expected (K, F, 36, 3)")
        out.append(arr[0][:, list(NYU_EVAL_JOINTS), :])
    xyz, uvd = out
    if xyz.shape[0] != uvd.shape[0]:
        raise DatasetError(mat_path, "joint_xyz and joint_uvd have different frame counts")
    xyz = xyz.copy()
    xyz[..., 1] *= -1.0  # NYU stores y up; the camera frame has y down
    return xyz, uvd


class NYUDataset:
    """NYU frames of one split with the 14 evaluation joints (see the module docstring).

    ``on_missing``: "error" raises DatasetError for a missing depth PNG; "skip" drops the
    frame and records it in ``skipped``. A depth PNG that exists but cannot be decoded
    raises DatasetError naming it when the frame is read.
    """

    def __init__(self, root: str | Path, split: str = "test", on_missing: str = "error") -> None:
        """Index ``<root>/<split>``; reads joint_data.mat and checks that each PNG exists."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.skeleton = NYU_14
        self.split = split
        self.directory = Path(root) / split
        self.intrinsics = NYU_INTRINSICS
        log = SkipLog(on_missing)
        self._xyz, self._uvd = load_joint_data(self.directory / "joint_data.mat")
        self._frames: list[int] = []
        for i in range(self._xyz.shape[0]):
            path = self.directory / nyu_depth_name(i)
            if not path.is_file():
                log.problem(path, "depth image missing")
                continue
            self._frames.append(i)
        self.skipped = log.skipped

    def __len__(self) -> int:
        """Number of frames that will be yielded (skipped ones excluded)."""
        return len(self._frames)

    def summary(self) -> str:
        """One line: frame count and skips."""
        return skip_summary(f"nyu {self.split}", len(self), self.skipped)

    def cube_mm(self, frame_id: int) -> float:
        """Crop cube edge hint for a frame (authors' convention)."""
        if self.split == "test" and frame_id >= NYU_SMALL_CUBE_FROM_TEST_FRAME:
            return NYU_CUBE_MM * 5.0 / 6.0
        return NYU_CUBE_MM

    def __getitem__(self, index: int) -> DepthFrame:
        """Frame ``index`` (0-based among the frames kept)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        frame_id = self._frames[index]
        path = self.directory / nyu_depth_name(frame_id)
        depth = read_rgb_packed_depth_png(path, (self.intrinsics.width, self.intrinsics.height))
        return DepthFrame(
            depth_mm=depth,
            intrinsics=self.intrinsics,
            joints_mm=self._xyz[frame_id].astype(np.float32),
            skeleton=self.skeleton,
            meta={
                "frame_id": frame_id,
                "source": str(path),
                "joints_uvd": self._uvd[frame_id].astype(np.float32),
                "cube_mm": self.cube_mm(frame_id),
            },
        )
