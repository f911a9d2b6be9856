"""The three phases of the phased recipe: what one step of each does, how each validates.

``build_phased_job(cfg, env)`` builds the networks, the frame cache of the training split
(``train/cache.py``), the validation samples (cropped from full frames, as the pipeline
does, kept in memory) and the three :class:`Phase` objects:

- ``a2j``: k views per frame (``batch_view_matrices(..., views_per_frame=k)``) -> A2J ->
  L_A2J. Validates A2J alone on the original crop (one view).
- ``teacher``: the M grid views -> A2J (frozen and without gradient, or trained at a
  reduced rate) -> the teacher on A2J's detached head outputs -> top-N fusion ->
  gamma * L_J (+ L_A2J when A2J trains). Validates teacher-select-N (``stage1``).
- ``student``: the teacher's M logits of the first ``frames`` training frames are computed
  once (:meth:`Phase.prepare`, saved in the run folder) -> the student on augmented crops
  of those frames -> smoothL1(beta * c_student, beta * c_teacher). Validates
  student-select-N (``stage2``), the deployed mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from vvhand_core.checkpoint import load_checkpoint
from vvhand_core.crop import CropConfig
from vvhand_core.jointspace import crop_uvd_to_camera_mm
from vvhand_core.losses import a2j_loss, distillation_loss, fusion_loss
from vvhand_core.models import Student, Teacher, build_models, teacher_features
from vvhand_core.render import make_renderer
from vvhand_core.skeletons import Skeleton, get_skeleton
from vvhand_core.train.cache import CachedSamples, FrameCache, open_cache
from vvhand_core.train.config import ConfigError
from vvhand_core.train.dist import DistEnv
from vvhand_core.train.phased_config import PhasedConfig
from vvhand_core.train.samples import (
    TrainingSamples,
    batch_to,
    batch_view_matrices,
    crop_input,
    render_views,
)
from vvhand_core.train.splits import check_skeleton, open_split
from vvhand_core.train.stage1 import fuse_top_n, predict_teacher
from vvhand_core.train.stage2 import predict_student
from vvhand_core.views import view_grid

TEACHER_LOGITS = "teacher_logits.npy"

Step = Callable[[dict[str, Tensor], torch.Generator], tuple[Tensor, dict[str, float]]]


@dataclass
class Phase:
    """One phase: its networks' parameter groups, its step and its validation forward.

    groups: (parameters, lr multiplier) pairs for Adam. views_per_frame: A2J views per
    training frame (0: the step runs no A2J). num_frames: the frame pool (its first
    num_frames cached frames). validation: how ``predict`` selects views (recorded).
    """

    index: int
    name: str
    share: float
    batch_size: int
    lr_scale: float
    views_per_frame: int
    num_frames: int
    groups: Callable[[], list[tuple[list[nn.Parameter], float]]]
    set_mode: Callable[[], None]
    step: Step
    predict: Callable[[dict[str, Tensor]], Tensor]
    validation: dict[str, Any]
    prepare: Callable[[Path], None] = lambda out: None


@dataclass
class PhasedJob:
    """Everything a phased run trains and validates (see the module docstring)."""

    config: PhasedConfig
    a2j: nn.Module
    student: Student
    teacher: Teacher
    skeleton: Skeleton
    cache: FrameCache
    train_samples: CachedSamples
    val_samples: Any
    phases: list[Phase]
    meta: dict[str, Any] = field(default_factory=dict)

    def networks(self) -> tuple[nn.Module, nn.Module, nn.Module]:
        """(a2j, student, teacher)."""
        return self.a2j, self.student, self.teacher

    def eval_mode(self) -> None:
        """Every network in eval mode."""
        for net in self.networks():
            net.eval()


class MemoSamples:
    """A sample source whose items are computed once and kept (the validation split)."""

    def __init__(self, samples) -> None:
        """Wrap ``samples`` (len, [i])."""
        self.samples, self.memo = samples, {}

    def __len__(self) -> int:
        """Number of samples."""
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        """Sample i (computed on first access)."""
        if i not in self.memo:
            self.memo[i] = self.samples[i]
        return self.memo[i]


@torch.no_grad()
def predict_a2j(a2j: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """A2J alone on the original crop -> joints (B, J, 3) camera mm."""
    uvd = a2j.predict(crop_input(batch))
    return crop_uvd_to_camera_mm(uvd, batch["t"], batch["k"], batch["centre_mm"][:, 2],
                                 batch["cube_mm"])


@torch.no_grad()
def teacher_logits_table(a2j: nn.Module, teacher: Teacher, renderer, grid: Tensor,
                         samples, num_frames: int, batch_size: int,
                         device: torch.device) -> np.ndarray:
    """The teacher's M logits (num_frames, M) of the un-augmented samples 0..num_frames-1."""
    a2j.eval()
    teacher.eval()
    m = grid.shape[0]
    loader = DataLoader(torch.utils.data.Subset(samples, range(num_frames)),
                        batch_size=batch_size, shuffle=False)
    out = []
    for batch in loader:
        b = batch_to(batch, device)
        vb = render_views(renderer, b, batch_view_matrices(b, grid))
        head = a2j(vb.inputs)
        out.append(teacher(teacher_features(head.teacher_input(), m)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, m), np.float32)


def warm_start(nets: tuple[nn.Module, nn.Module, nn.Module], cfg: PhasedConfig
               ) -> dict[str, Any]:
    """Load ``cfg.init_from``'s (a2j, student, teacher) into ``nets``; its record for meta."""
    loaded = load_checkpoint(cfg.init_from, "cpu")
    if loaded.model_config != cfg.model:
        raise ConfigError(f"init_from {cfg.init_from}: its model config {loaded.model_config} "
                          f"differs from this run's model {cfg.model}")
    for mine, theirs in zip(nets, (loaded.a2j, loaded.student, loaded.teacher)):
        mine.load_state_dict({k: v.float() for k, v in theirs.state_dict().items()})
    keys = ("stage", "phase", "steps", "run_time_s", "val_mean_error_mm", "init_from")
    return {"init_from": {"path": str(cfg.init_from),
                          **{k: loaded.meta[k] for k in keys if k in loaded.meta}}}


def build_phased_job(cfg: PhasedConfig, env: DistEnv, progress: bool = True) -> PhasedJob:
    """Networks (seeded), the frame cache, validation samples and the three phases."""
    skeleton = get_skeleton(cfg.skeleton)
    torch.manual_seed(cfg.seed)
    a2j, student, teacher = build_models(cfg.model, skeleton)
    init = warm_start((a2j, student, teacher), cfg) if cfg.init_from else {}
    dev = env.device
    for net in (a2j, student, teacher):
        net.to(dev)
    m = cfg.model.num_candidates
    grid = view_grid(m).to(dev)
    renderer = make_renderer(cfg.renderer, device=dev)
    crop = CropConfig(cfg.model.cube_mm, cfg.model.crop_size)
    train_frames, val_frames = open_split(cfg.data, "train"), open_split(cfg.data, "val")
    check_skeleton(train_frames, skeleton, "train")
    check_skeleton(val_frames, skeleton, "validation")
    cache = open_cache(train_frames, cfg.data, cfg.cache.window_mm, cfg.cache.px,
                       cfg.cache.dir, progress=progress)
    train = CachedSamples(cache, crop, cfg.augment, cfg.seed)
    val = MemoSamples(TrainingSamples(val_frames, crop, None, cfg.seed))
    lam, gamma = cfg.loss.a2j_lambda, cfg.loss.fusion_gamma
    pa, pt, ps = cfg.phases.a2j, cfg.phases.teacher, cfg.phases.student
    n_val, top_n = cfg.val_num_views, pt.top_n or m
    common = {"centre": "oracle (mean of ground-truth joints)", "cube_mm": cfg.model.cube_mm,
              "num_candidates": m}

    def a2j_step(batch: dict[str, Tensor], gen: torch.Generator):
        mats = batch_view_matrices(batch, grid, cfg.augment, gen, pa.views_per_frame,
                                   pa.view_jitter_deg)
        vb = render_views(renderer, batch, mats)
        b, v, j, _ = vb.target_uvd.shape
        part = a2j_loss(a2j(vb.inputs), a2j.anchors, vb.target_uvd.reshape(b * v, j, 3), lam,
                        a2j.depth_scale)
        return part.total, {"loss": part.total.item(), "uv": part.uv.item(),
                            "depth": part.depth.item()}

    a2j_trains = pt.a2j_lr_scale > 0

    def teacher_step(batch: dict[str, Tensor], gen: torch.Generator):
        mats = batch_view_matrices(batch, grid, cfg.augment, gen)
        vb = render_views(renderer, batch, mats)
        b, v, j, _ = vb.target_uvd.shape
        with torch.set_grad_enabled(a2j_trains):
            out = a2j(vb.inputs)
            uvd = a2j.decode(out)[0].reshape(b, v, j, 3)
        logits = teacher(teacher_features(out.teacher_input().detach(), v))
        l_joints = fusion_loss(fuse_top_n(uvd, logits, mats, batch, top_n), batch["joints_mm"])
        loss = gamma * l_joints
        parts = {"fusion": l_joints.item()}
        if a2j_trains:
            part = a2j_loss(out, a2j.anchors, vb.target_uvd.reshape(b * v, j, 3), lam,
                            a2j.depth_scale)
            loss = loss + part.total
            parts["a2j"] = part.total.item()
        return loss, {"loss": loss.item(), **parts}

    table: dict[str, Tensor] = {}

    def prepare_student(out: Path) -> None:
        path, n = out / TEACHER_LOGITS, min(ps.frames, len(cache))
        logits = np.load(path) if path.is_file() else None
        if logits is None or logits.shape != (n, m):
            plain = CachedSamples(cache, crop, None, cfg.seed)
            logits = teacher_logits_table(a2j, teacher, renderer, grid, plain, n,
                                          max(1, 100 // m), dev)
            np.save(path, logits)
        table["logits"] = torch.from_numpy(logits).to(dev)

    def student_step(batch: dict[str, Tensor], gen: torch.Generator):
        target = table["logits"][batch["index"]]
        s_logits = student(crop_input(batch))
        loss = distillation_loss(s_logits, target, cfg.loss.distill_beta)
        gap = (s_logits.detach() - target).abs().mean()
        return loss, {"loss": loss.item(), "logit_gap": gap.item()}

    def modes(train: tuple[nn.Module, ...]) -> Callable[[], None]:
        def set_mode() -> None:
            for net in (a2j, student, teacher):
                net.train(net in train)
        return set_mode

    def params(net: nn.Module) -> list[nn.Parameter]:
        return [p for p in net.parameters() if p.requires_grad]

    phases = [
        Phase(0, "a2j", pa.share, pa.batch_size, pa.lr_scale, pa.views_per_frame, len(cache),
              lambda: [(params(a2j), 1.0)], modes((a2j,)), a2j_step,
              lambda b: predict_a2j(a2j, b),
              {"selector": "a2j on the crop", "num_views": 1, **common}),
        Phase(1, "teacher", pt.share, pt.batch_size, pt.lr_scale, m, len(cache),
              lambda: [(params(teacher), 1.0)] + ([(params(a2j), pt.a2j_lr_scale)]
                                                  if a2j_trains else []),
              modes((teacher, a2j) if a2j_trains else (teacher,)), teacher_step,
              lambda b: predict_teacher(a2j, teacher, renderer, grid, b, n_val),
              {"selector": "teacher", "num_views": n_val, **common}),
        Phase(2, "student", ps.share, ps.batch_size, ps.lr_scale, 0, min(ps.frames, len(cache)),
              lambda: [(params(student), 1.0)], modes((student,)), student_step,
              lambda b: predict_student(a2j, student, renderer, grid, b, n_val),
              {"selector": "student", "num_views": n_val, **common}, prepare_student),
    ]
    meta = {"dataset": cfg.data.dataset, "train_frames": len(train_frames),
            "val_frames_total": len(val_frames), "cache": str(cache.folder), **init}
    return PhasedJob(cfg, a2j, student, teacher, skeleton, cache, train, val, phases, meta)
