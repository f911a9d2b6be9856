"""Training samples: a labelled DepthFrame -> a hand crop with its geometry, then views.

Per frame (in the DataLoader, CPU): the oracle centre (mean of the ground-truth joints,
``localise.oracle_centre``) moved by the centre jitter, the cube edge scaled by the cube
augmentation, the crop (``crop.crop_depth``) and Gaussian depth noise on its foreground.
A sample is a dict of tensors (collated into a batch by the DataLoader):

    crop_mm (S, S)   t (3, 3)   k (4,)   centre_mm (3,)   cube_mm ()   joints_mm (J, 3)
    index () int64  (the frame's position in its split)

Per batch (on the training device): view matrices for the M views (the candidate grid
or random angles, optionally composed with a random roll), the rendered views, their
network inputs (normalised depth) and the ground-truth joints of every view in its
crop (u, v, d_n) space (``jointspace.camera_mm_to_view_uvd``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from vvhand_core.crop import CropConfig, crop_depth, normalise
from vvhand_core.data.base import DepthFrame
from vvhand_core.jointspace import camera_mm_to_view_uvd
from vvhand_core.localise import oracle_centre
from vvhand_core.train.config import AugmentConfig
from vvhand_core.views import GRID_MAX_DEG, random_roll, random_view_angles, view_matrices


def make_sample(frame: DepthFrame, crop: CropConfig, augment: AugmentConfig | None = None,
                rng: np.random.Generator | None = None) -> dict[str, Tensor]:
    """One training sample (see the module docstring) from a labelled frame.

    ``augment`` None (validation) uses the exact oracle centre and ``crop.cube_mm``; with
    an AugmentConfig, ``rng`` draws the cube scale, centre jitter and depth noise.
    """
    if frame.joints_mm is None:
        raise ValueError(f"frame {frame.meta.get('frame_id', '?')} has no joint labels")
    joints = torch.from_numpy(np.asarray(frame.joints_mm, dtype=np.float32))
    centre = oracle_centre(joints.double()).float()  # (3,)
    cube = float(crop.cube_mm)
    if augment is not None:
        if rng is None:
            raise ValueError("augmentation needs an rng")
        cube *= float(rng.uniform(*augment.cube_scale))
        if augment.centre_jitter_mm > 0:
            jitter = rng.uniform(-augment.centre_jitter_mm, augment.centre_jitter_mm, 3)
            centre = centre + torch.from_numpy(jitter.astype(np.float32))
    depth = torch.from_numpy(np.asarray(frame.depth_mm, dtype=np.float32))[None]
    k = frame.intrinsics.as_tensor()[None]
    crop_mm, t = crop_depth(depth, centre[None], k, CropConfig(cube, crop.crop_size))
    crop_mm = crop_mm[0]
    if augment is not None and augment.depth_noise_mm > 0:
        noise = rng.normal(0.0, augment.depth_noise_mm, crop_mm.shape).astype(np.float32)
        fg = crop_mm > 0
        crop_mm = torch.where(fg, (crop_mm + torch.from_numpy(noise)).clamp(min=1.0), crop_mm)
    return {
        "crop_mm": crop_mm,
        "t": t[0],
        "k": k[0],
        "centre_mm": centre,
        "cube_mm": torch.tensor(cube, dtype=torch.float32),
        "joints_mm": joints,
    }


class TrainingSamples(Dataset):
    """Samples of a frame source (anything with len and [i] -> DepthFrame).

    With ``augment``, sample i of epoch e is drawn from ``rng([seed, e, i])``: the same
    whatever the order, the worker or the process, so a resumed run sees what the
    original would have seen. Call :meth:`set_epoch` before each epoch.
    """

    def __init__(self, frames, crop: CropConfig, augment: AugmentConfig | None = None,
                 seed: int = 0) -> None:
        """Wrap ``frames``; ``augment`` None for validation."""
        self.frames = frames
        self.crop = crop
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Number of frames."""
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """Sample ``index`` (dict of tensors, see the module docstring)."""
        rng = None
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        sample = make_sample(self.frames[index], self.crop, self.augment, rng)
        sample["index"] = torch.tensor(int(index), dtype=torch.int64)
        return sample


def batch_to(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    """Move a collated batch to ``device`` (non-blocking where possible)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def batch_view_matrices(batch: dict[str, Tensor], grid_deg: Tensor,
                        augment: AugmentConfig | None = None,
                        generator: torch.Generator | None = None,
                        views_per_frame: int | None = None,
                        jitter_deg: float = 0.0) -> Tensor:
    """View matrices (B, V, 4, 4) for the batch's centres.

    grid_deg (M, 2) the candidate grid (azimuth, elevation). ``views_per_frame`` k: V = k
    views per frame drawn without replacement from the grid (None: V = M, the whole grid
    in order), each moved by a uniform +-``jitter_deg`` in azimuth and elevation. With
    ``augment``: random_views draws V random angles per frame instead, roll_deg > 0
    composes a random roll about the viewing ray (first the roll, then the view). Random
    draws use ``generator`` (a CPU generator).
    """
    centre = batch["centre_mm"]
    b, m = centre.shape[0], grid_deg.shape[0]
    v = m if views_per_frame is None else views_per_frame
    if not 1 <= v <= m:
        raise ValueError(f"views_per_frame must be in 1..{m}, got {v}")
    angles = grid_deg
    if augment is not None and augment.random_views:
        angles = random_view_angles(b, v, GRID_MAX_DEG, generator=generator)
    elif views_per_frame is not None:
        pick = torch.rand((b, m), generator=generator).argsort(dim=1)[:, :v]  # (B, k)
        angles = grid_deg.cpu()[pick]  # (B, k, 2)
        if jitter_deg > 0:
            angles = angles + (2 * torch.rand((b, v, 2), generator=generator) - 1) * jitter_deg
    mats = view_matrices(angles.to(centre.device), centre)
    if augment is not None and augment.roll_deg > 0:
        roll = random_roll(centre.cpu(), augment.roll_deg, generator=generator)
        mats = mats @ roll.to(mats)[:, None]
    return mats


@dataclass
class ViewBatch:
    """Rendered views of a batch and their targets.

    views_mm (B, V, S, S) depth mm (0 empty); inputs (B*V, 1, S, S) normalised network
    input, frame-major (views of a frame consecutive); target_uvd (B, V, J, 3) ground
    truth in each view's crop (u, v) px and normalised depth; mats (B, V, 4, 4).
    """

    views_mm: Tensor
    inputs: Tensor
    target_uvd: Tensor
    mats: Tensor


def render_views(renderer, batch: dict[str, Tensor], mats: Tensor) -> ViewBatch:
    """Render the batch's crops through ``mats`` (B, V, 4, 4) and build the targets."""
    crop, t, k = batch["crop_mm"], batch["t"], batch["k"]
    zc, cube = batch["centre_mm"][:, 2], batch["cube_mm"]
    with torch.no_grad():
        views = renderer.render(crop, t, k, mats)
    b, v, s, _ = views.shape
    inputs = normalise(views, zc, cube).reshape(b * v, 1, s, s)
    target = camera_mm_to_view_uvd(batch["joints_mm"], mats, t, k, zc, cube)
    return ViewBatch(views, inputs, target, mats)


def crop_input(batch: dict[str, Tensor]) -> Tensor:
    """The normalised original crop (B, 1, S, S): A2J's and the student's input format."""
    return normalise(batch["crop_mm"], batch["centre_mm"][:, 2], batch["cube_mm"])[:, None]
