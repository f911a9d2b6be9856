"""Frame cache: each training frame cropped once, memory-mapped, re-cropped every epoch.

Generating a synthetic frame costs ~40 ms of CPU; a training step on a small CPU wants
tens of frames. So each frame is rendered once (by all CPU cores, in DataLoader workers)
into a wide crop around its hand centre (``cache.window_mm`` cube, ``cache.px`` pixels,
uint16 mm) and later epochs and phases re-crop it: a crop is itself a pinhole image with
intrinsics T_c K, so ``crop.crop_depth`` cuts the training crop (jittered centre, scaled
cube, any crop size) from the wide crop, and T = T_rel T_c maps full-image pixels to it.
Frames of any resolution or intrinsics (K is stored per frame) share one cache.

Layout of ``<cache.dir>/<key>/`` (written to a temporary folder, renamed when complete):

    crops.u16     (N, P, P) uint16 mm, raw, C order (np.memmap)
    geometry.npz  t (N, 3, 3) wide-crop transforms, k (N, 4), centre_mm (N, 3) oracle
                  centres, joints_mm (N, J, 3)
    meta.json     format, key, the key's inputs, N, P, window_mm, skeleton

The key hashes the cache format version, the frame source (for synthetic data the whole
SynthConfig dict with its seed, so a new generator field such as a scene version makes a
new cache), the frame count, window_mm and px.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from vvhand_core.crop import CropConfig, crop_depth, crop_intrinsics
from vvhand_core.localise import oracle_centre
from vvhand_core.train.config import AugmentConfig, DataConfig

CACHE_FORMAT = 1


def source_description(data: DataConfig) -> dict[str, Any]:
    """What identifies the training frames of ``data`` (JSON-able, part of the key)."""
    if data.dataset == "synthetic":
        from vvhand_core.data.synthetic.generator import SynthConfig

        synth = SynthConfig.from_dict({**data.synth, "seed": data.train_seed})
        if data.synth_mix:  # the mixture and its generators' configs (no key change without)
            return {"dataset": "synthetic", "synth": synth.to_dict(),
                    "mix": {str(v): float(s) for v, s in sorted(data.synth_mix.items())}}
        return {"dataset": "synthetic", "synth": synth.to_dict()}
    return {"dataset": data.dataset, "root": str(Path(data.root).resolve()),
            "val_root": str(Path(data.val_root).resolve()) if data.val_root else "",
            "val_fraction": data.val_fraction}


def cache_key(source: dict[str, Any], num_frames: int, window_mm: float, px: int) -> str:
    """16 hex digits of the SHA-256 of everything that makes the cached crops what they are."""
    blob = json.dumps({"format": CACHE_FORMAT, "source": source, "frames": int(num_frames),
                       "window_mm": float(window_mm), "px": int(px)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class _WideCrops(Dataset):
    """frames[i] -> its wide crop (uint16) and geometry (numpy), for the cache builder."""

    def __init__(self, frames, window_mm: float, px: int) -> None:
        self.frames, self.crop = frames, CropConfig(window_mm, px)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        frame = self.frames[i]
        if frame.joints_mm is None:
            raise ValueError(f"frame {frame.meta.get('frame_id', i)} has no joint labels")
        joints = torch.from_numpy(np.asarray(frame.joints_mm, dtype=np.float32))
        centre = oracle_centre(joints.double()).float()
        depth = torch.from_numpy(np.asarray(frame.depth_mm, dtype=np.float32))[None]
        k = frame.intrinsics.as_tensor()[None]
        crop, t = crop_depth(depth, centre[None], k, self.crop)
        crop_u16 = crop[0].round().clamp(0, 65535).numpy().astype(np.uint16)
        return {"crop": crop_u16, "t": t[0].numpy(), "k": k[0].numpy(),
                "centre_mm": centre.numpy(), "joints_mm": joints.numpy()}


def build_cache(frames, folder: str | Path, window_mm: float, px: int,
                meta: dict[str, Any] | None = None, num_workers: int | None = None,
                progress: bool = True) -> Path:
    """Crop every frame of ``frames`` into a new cache at ``folder`` (see the module doc).

    num_workers: DataLoader workers (None = one per CPU core). Returns ``folder``; when
    another process finished the same cache first, its copy is kept.
    """
    folder = Path(folder)
    n = len(frames)
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    workers = (os.cpu_count() or 1) if num_workers is None else num_workers
    loader = DataLoader(_WideCrops(frames, window_mm, px), batch_size=8, shuffle=False,
                        num_workers=workers)
    crops = np.memmap(tmp / "crops.u16", dtype=np.uint16, mode="w+", shape=(n, px, px))
    geo: dict[str, list[np.ndarray]] = {"t": [], "k": [], "centre_mm": [], "joints_mm": []}
    bar = tqdm(total=n, desc=f"frame cache {folder.name}", unit="frame", disable=not progress,
               mininterval=1.0 if sys.stderr.isatty() else 30.0, file=sys.stderr)
    i = 0
    for batch in loader:
        b = batch["crop"].shape[0]
        crops[i:i + b] = batch["crop"].numpy()
        for name in geo:
            geo[name].append(batch[name].numpy())
        i += b
        bar.update(b)
    bar.close()
    crops.flush()
    del crops
    np.savez(tmp / "geometry.npz", **{k: np.concatenate(v) for k, v in geo.items()})
    info = {"format": CACHE_FORMAT, "frames": n, "px": px, "window_mm": window_mm,
            "skeleton": getattr(frames.skeleton, "name", None), **(meta or {})}
    (tmp / "meta.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    try:
        os.rename(tmp, folder)
    except OSError:  # built meanwhile by another process: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


class FrameCache:
    """A complete cache folder: geometry in memory, crops memory-mapped on first use."""

    def __init__(self, folder: str | Path) -> None:
        """Open ``folder`` (ValueError when it is not a complete cache)."""
        self.folder = Path(folder)
        try:
            self.meta = json.loads((self.folder / "meta.json").read_text(encoding="utf-8"))
            geo = np.load(self.folder / "geometry.npz")
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.folder}: not a complete frame cache ({exc})") from None
        if self.meta.get("format") != CACHE_FORMAT:
            raise ValueError(f"{self.folder}: cache format {self.meta.get('format')}, this "
                             f"code reads {CACHE_FORMAT}")
        self.num_frames, self.px = int(self.meta["frames"]), int(self.meta["px"])
        self.t, self.k = geo["t"], geo["k"]
        self.centre_mm, self.joints_mm = geo["centre_mm"], geo["joints_mm"]
        self._crops: np.memmap | None = None

    def __len__(self) -> int:
        """Number of cached frames."""
        return self.num_frames

    def crop(self, i: int) -> np.ndarray:
        """Wide crop i (P, P) uint16 mm (a view of the memory map)."""
        if self._crops is None:  # opened lazily: each DataLoader worker maps its own
            self._crops = np.memmap(self.folder / "crops.u16", dtype=np.uint16, mode="r",
                                    shape=(self.num_frames, self.px, self.px))
        return self._crops[i]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the memory map (workers re-open it)."""
        return {**self.__dict__, "_crops": None}


def open_cache(frames, data: DataConfig, window_mm: float, px: int, root: str | Path,
               progress: bool = True) -> FrameCache:
    """The cache of ``frames`` (the training split of ``data``) under ``root``; built once."""
    source = source_description(data)
    key = cache_key(source, len(frames), window_mm, px)
    folder = Path(root) / key
    if not (folder / "meta.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        build_cache(frames, folder, window_mm, px, {"key": key, "source": source},
                    progress=progress)
    return FrameCache(folder)


class CachedSamples(Dataset):
    """Training samples cut from a :class:`FrameCache`, same dict as ``samples.make_sample``.

    ``samples[(tag, i)]`` (tag: any int, e.g. phase and epoch) draws the augmentation of
    frame i from ``rng([seed, tag, i])``, the same in any worker or process, so a resumed
    run sees what the original would have; ``samples[i]`` means tag 0. ``augment`` None:
    the exact centre and cube (no randomness). ``roll`` is never applied here (it belongs
    to the views).
    """

    def __init__(self, cache: FrameCache, crop: CropConfig,
                 augment: AugmentConfig | None = None, seed: int = 0) -> None:
        """Samples of ``crop`` size/cube from ``cache``."""
        self.cache, self.crop, self.augment, self.seed = cache, crop, augment, seed

    def __len__(self) -> int:
        """Number of frames."""
        return len(self.cache)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor]:
        """The sample of frame ``i`` (``key`` = i or (tag, i))."""
        tag, i = key if isinstance(key, tuple) else (0, key)
        c = self.cache
        centre = torch.from_numpy(c.centre_mm[i].copy())
        cube = float(self.crop.cube_mm)
        aug, rng = self.augment, None
        if aug is not None:
            rng = np.random.default_rng([self.seed, int(tag), int(i)])
            cube *= float(rng.uniform(*aug.cube_scale))
            if aug.centre_jitter_mm > 0:
                jitter = rng.uniform(-aug.centre_jitter_mm, aug.centre_jitter_mm, 3)
                centre = centre + torch.from_numpy(jitter.astype(np.float32))
        t_c = torch.from_numpy(c.t[i].copy())
        k = torch.from_numpy(c.k[i].copy())
        wide = torch.from_numpy(c.crop(i).astype(np.float32))[None]
        crop_mm, t_rel = crop_depth(wide, centre[None], crop_intrinsics(t_c[None], k[None]),
                                    CropConfig(cube, self.crop.crop_size))
        crop_mm = crop_mm[0]
        if aug is not None and aug.depth_noise_mm > 0:
            noise = rng.normal(0.0, aug.depth_noise_mm, crop_mm.shape).astype(np.float32)
            fg = crop_mm > 0
            crop_mm = torch.where(fg, (crop_mm + torch.from_numpy(noise)).clamp(min=1.0),
                                  crop_mm)
        return {"crop_mm": crop_mm, "t": t_rel[0] @ t_c, "k": k, "centre_mm": centre,
                "cube_mm": torch.tensor(cube, dtype=torch.float32),
                "joints_mm": torch.from_numpy(c.joints_mm[i].copy()),
                "index": torch.tensor(int(i), dtype=torch.int64)}
