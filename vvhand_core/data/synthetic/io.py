"""On-disk layout of a synthetic dataset, its writer and its loader.

Layout (written by ``vvhand synth``)::

    DIR/meta.json            format, version, num_frames, skeleton, intrinsics, config
    DIR/annotations.jsonl    one JSON object per frame, in frame order:
                             {"frame": i, "depth": "depth/000000.png",
                              "joints_mm": [[x, y, z] x 21], "visible": [21 bools],
                              "center_mm": [x, y, z], "cube_mm": c, ...}
    DIR/depth/000000.png     16-bit PNG, depth in mm, 0 = no return

Joints are camera-frame millimetres in ``hands2019_21`` order. meta.json is written last,
so a directory whose writing was interrupted is rejected rather than read short. Frames
whose camera differs from the first frame's (scene version 2 draws one per frame) carry
their own ``"intrinsics": {fx, fy, cx, cy, width, height}`` in their annotation line;
meta.json's ``intrinsics`` is the first frame's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_core.data.base import (
    DatasetError,
    DepthFrame,
    SkipLog,
    read_depth_png,
    skip_summary,
    write_depth_png,
)
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.skeletons import get_skeleton

FORMAT = "vvhand-synthetic"
VERSION = 1  # 2 when some frames carry their own intrinsics (readers before that ignore them)
_META_KEYS = ("center_mm", "cube_mm", "visible", "scale", "articulation_deg", "background",
              "scene_version", "side", "sensor", "parts", "body_gap_mm")  # fmt: skip
_INTR_KEYS = ("fx", "fy", "cx", "cy", "width", "height")


def depth_name(index: int) -> str:
    """Relative path of frame ``index``'s depth image."""
    return f"depth/{index:06d}.png"


def write_frames(out_dir: str | Path, frames: Iterable[DepthFrame], extra: dict | None = None):
    """Write frames (any source, one skeleton) in the layout above; returns the count.

    ``extra`` is merged into meta.json (e.g. the generating config).
    """
    out = Path(out_dir)
    (out / "depth").mkdir(parents=True, exist_ok=True)
    meta_path = out / "meta.json"
    if meta_path.exists():
        meta_path.unlink()  # re-written last; its absence marks an incomplete dataset
    count = 0
    intr = skeleton = None
    per_frame_cameras = False
    with open(out / "annotations.jsonl", "w", encoding="utf-8") as ann:
        for frame in frames:
            if intr is None:
                intr, skeleton = frame.intrinsics, frame.skeleton
            elif frame.skeleton.name != skeleton.name:
                raise ValueError("all frames of a dataset must share the skeleton")
            rel = depth_name(count)
            write_depth_png(out / rel, frame.depth_mm)
            record = {"frame": count, "depth": rel}
            if frame.intrinsics != intr:
                per_frame_cameras = True
                record["intrinsics"] = {k: getattr(frame.intrinsics, k) for k in _INTR_KEYS}
            if frame.joints_mm is not None:
                record["joints_mm"] = np.round(frame.joints_mm.astype(np.float64), 4).tolist()
            record |= {k: frame.meta[k] for k in _META_KEYS if k in frame.meta}
            ann.write(json.dumps(record) + "\n")
            count += 1
    if intr is None:
        raise ValueError("no frames to write")
    meta = {
        "format": FORMAT,
        "version": 2 if per_frame_cameras else VERSION,
        "num_frames": count,
        "skeleton": skeleton.name,
        "intrinsics": {k: getattr(intr, k) for k in _INTR_KEYS},
    } | (extra or {})
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return count


def write_dataset(out_dir: str | Path, config: SynthConfig, num_frames: int, progress=True) -> int:
    """Generate frames 0..num_frames-1 of ``config`` into ``out_dir``; returns the count."""
    if num_frames <= 0:
        raise ValueError("num_frames must be > 0")
    gen = SyntheticHandGenerator(config)
    indices: Iterable[int] = range(num_frames)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="synth", unit="frame")
    frames = (gen.frame(i) for i in indices)
    return write_frames(out_dir, frames, {"config": config.to_dict()})


class SyntheticDataset:
    """Reads a directory written by :func:`write_frames` / ``vvhand synth``.

    ``on_missing``: "error" raises DatasetError naming a missing depth image; "skip"
    records it in ``skipped``. A missing/invalid meta.json, or an annotation count that
    differs from meta.json's ``num_frames``, always raises.
    """

    def __init__(self, directory: str | Path, on_missing: str = "error") -> None:
        """Read meta.json and annotations.jsonl and check the depth images exist."""
        self.directory = Path(directory)
        meta_path = self.directory / "meta.json"
        if not meta_path.is_file():
            raise DatasetError(meta_path, "not found (not a dataset, or writing was interrupted)")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT:
                raise ValueError(f"format is {meta.get('format')!r}, expected {FORMAT!r}")
            self.intrinsics = Intrinsics(**meta["intrinsics"])
            self.skeleton = get_skeleton(meta["skeleton"])
            num_frames = int(meta["num_frames"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(meta_path, f"invalid ({exc})") from exc
        self.meta = meta
        self.config = SynthConfig.from_dict(meta["config"]) if "config" in meta else None
        ann_path = self.directory / "annotations.jsonl"
        if not ann_path.is_file():
            raise DatasetError(ann_path, "file not found")
        records = []
        for lineno, line in enumerate(ann_path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if "joints_mm" in rec:
                    joints = np.asarray(rec["joints_mm"], dtype=np.float32)
                    if joints.shape != (self.skeleton.num_joints, 3):
                        raise ValueError(f"joints_mm has shape {joints.shape}")
                rec["depth"] = str(rec["depth"])
                if "intrinsics" in rec:
                    rec["intrinsics"] = Intrinsics(**rec["intrinsics"])
            except (ValueError, KeyError, TypeError) as exc:
                raise DatasetError(f"{ann_path}:{lineno}", f"bad annotation ({exc})") from exc
            records.append(rec)
        if len(records) != num_frames:
            raise DatasetError(
                ann_path, f"has {len(records)} frames but meta.json says {num_frames}"
            )
        log = SkipLog(on_missing)
        self._records = []
        for rec in records:
            if not (self.directory / rec["depth"]).is_file():
                log.problem(self.directory / rec["depth"], "depth image missing")
                continue
            self._records.append(rec)
        self.skipped = log.skipped

    def __len__(self) -> int:
        """Number of frames that will be yielded (skipped ones excluded)."""
        return len(self._records)

    def summary(self) -> str:
        """One line: frame count and skips."""
        return skip_summary(f"synthetic {self.directory}", len(self), self.skipped)

    def __getitem__(self, index: int) -> DepthFrame:
        """Frame ``index`` (0-based among the frames kept)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        rec = self._records[index]
        path = self.directory / rec["depth"]
        intr = rec.get("intrinsics", self.intrinsics)
        depth = read_depth_png(path, (intr.width, intr.height))
        joints = rec.get("joints_mm")
        meta = {"frame_id": rec["frame"], "source": str(path)}
        meta |= {k: rec[k] for k in _META_KEYS if k in rec}
        return DepthFrame(
            depth_mm=depth,
            intrinsics=intr,
            joints_mm=None if joints is None else np.asarray(joints, dtype=np.float32),
            skeleton=self.skeleton,
            meta=meta,
        )
