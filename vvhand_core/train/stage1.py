"""Stage 1: A2J and the teacher trained jointly on all M rendered views (paper Eq. 5).

One step: a batch of B crops -> M views each (the candidate grid, or random views /
a random roll as augmentation) -> A2J on the B*M views -> L_A2J against every view's
ground truth in crop (u, v, d_n) -> the teacher on A2J's head outputs -> M logits per
frame -> top-N (N = M by default) -> softmax-weighted fusion of the N views' joints in
camera mm (jointspace + fusion) -> L = L_A2J + gamma * L_J. Nothing on the fusion path
is detached, so L_J's gradient reaches the teacher and A2J (through the fused joints
and through the teacher's input).

Validation runs teacher-select-N exactly as the pipeline's "teacher" selector does:
render the M grid views, A2J, teacher logits, top-N, fuse.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from vvhand_core.crop import CropConfig
from vvhand_core.fusion import fuse_joints, fusion_weights, gather_views, select_top_n
from vvhand_core.jointspace import crop_uvd_to_camera_mm
from vvhand_core.losses import LossConfig, a2j_loss, fusion_loss
from vvhand_core.models import A2J, Teacher, build_models, teacher_features
from vvhand_core.render import make_renderer
from vvhand_core.skeletons import get_skeleton
from vvhand_core.train.config import Stage1Config
from vvhand_core.train.loop import DistEnv, TrainingJob
from vvhand_core.train.samples import (
    TrainingSamples,
    batch_view_matrices,
    render_views,
)
from vvhand_core.train.splits import check_skeleton, open_split
from vvhand_core.views import invert_rigid, view_grid, view_matrices


def views_forward(a2j: A2J, teacher: Teacher, inputs: Tensor,
                  num_views: int) -> tuple[Any, Tensor, Tensor]:
    """A2J + teacher on rendered views.

    inputs (B*V, 1, S, S) normalised, frame-major. Returns the A2J output (B*V views),
    uvd (B, V, J, 3) crop (u, v) px + normalised depth, and view logits (B, V).
    """
    out = a2j(inputs)
    uvd = a2j.decode(out)[0]
    uvd = uvd.reshape(-1, num_views, *uvd.shape[1:])
    logits = teacher(teacher_features(out.teacher_input(), num_views))
    return out, uvd, logits


def fuse_top_n(uvd: Tensor, logits: Tensor, mats: Tensor, batch: dict[str, Tensor],
               n: int) -> Tensor:
    """Fused joints (B, J, 3) camera mm from the top-n of the logits (B, V).

    uvd (B, V, J, 3) per view in crop space; mats (B, V, 4, 4) the views' matrices;
    batch supplies t (B, 3, 3), k (B, 4), centre_mm (B, 3), cube_mm (B,).
    Differentiable in uvd and in the selected logits.
    """
    zc, cube = batch["centre_mm"][:, 2], batch["cube_mm"]
    joints_view = crop_uvd_to_camera_mm(uvd, batch["t"], batch["k"], zc, cube)
    idx = select_top_n(logits, n)
    weights = fusion_weights(gather_views(logits, idx), "confidence")
    return fuse_joints(gather_views(joints_view, idx), invert_rigid(gather_views(mats, idx)),
                       weights)


class Stage1Net(nn.Module):
    """A2J + teacher as one module (one DistributedDataParallel wrapper for both).

    ``forward(inputs (B*V,1,S,S), target_uvd (B,V,J,3), mats (B,V,4,4), batch)`` returns
    {"loss", "a2j", "fusion"} scalars and "fused" (B, J, 3) camera mm.
    """

    def __init__(self, a2j: A2J, teacher: Teacher, loss: LossConfig, top_n: int) -> None:
        super().__init__()
        self.a2j, self.teacher = a2j, teacher
        self.loss_cfg, self.top_n = loss, top_n

    def forward(self, inputs: Tensor, target_uvd: Tensor, mats: Tensor,
                batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Losses of one batch (see the class docstring)."""
        b, v, j, _ = target_uvd.shape
        out, uvd, logits = views_forward(self.a2j, self.teacher, inputs, v)
        part = a2j_loss(out, self.a2j.anchors, target_uvd.reshape(b * v, j, 3),
                        self.loss_cfg.a2j_lambda, self.a2j.depth_scale)
        fused = fuse_top_n(uvd, logits, mats, batch, self.top_n)
        l_joints = fusion_loss(fused, batch["joints_mm"])  # Eq. 3
        total = part.total + self.loss_cfg.fusion_gamma * l_joints  # Eq. 5
        return {"loss": total, "a2j": part.total, "fusion": l_joints, "fused": fused}


@torch.no_grad()
def predict_teacher(a2j: A2J, teacher: Teacher, renderer, grid_deg: Tensor,
                    batch: dict[str, Tensor], n: int) -> Tensor:
    """Teacher-select-N: render the M grid views, A2J, teacher, top-n, fuse -> (B, J, 3)."""
    mats = view_matrices(grid_deg, batch["centre_mm"])
    vb = render_views(renderer, batch, mats)
    _, uvd, logits = views_forward(a2j, teacher, vb.inputs, grid_deg.shape[0])
    return fuse_top_n(uvd, logits, mats, batch, n)


def build_job(cfg: Stage1Config, env: DistEnv) -> TrainingJob:
    """The stage-1 job: fresh networks (seeded), data splits, step and validation."""
    skeleton = get_skeleton(cfg.skeleton)
    torch.manual_seed(cfg.seed)
    a2j, student, teacher = build_models(cfg.model, skeleton)
    for net in (a2j, student, teacher):
        net.to(env.device)
    student.eval()
    net = Stage1Net(a2j, teacher, cfg.loss, cfg.fused_views)
    m = cfg.model.num_candidates
    grid = view_grid(m).to(env.device)
    renderer = make_renderer(cfg.renderer, device=env.device)
    crop = CropConfig(cfg.model.cube_mm, cfg.model.crop_size)
    train_frames, val_frames = open_split(cfg.data, "train"), open_split(cfg.data, "val")
    check_skeleton(train_frames, skeleton, "train")
    check_skeleton(val_frames, skeleton, "validation")

    def train_step(module: nn.Module, batch: dict[str, Tensor],
                   gen: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        mats = batch_view_matrices(batch, grid, cfg.augment, gen)
        vb = render_views(renderer, batch, mats)
        out = module(vb.inputs, vb.target_uvd, vb.mats, batch)
        return out["loss"], {"loss": out["loss"].item(), "a2j": out["a2j"].item(),
                             "fusion": out["fusion"].item()}

    def set_train_mode() -> None:
        a2j.train()
        teacher.train()
        student.eval()

    n_val = cfg.validation_views
    return TrainingJob(
        stage="stage1", config=cfg, a2j=a2j, student=student, teacher=teacher,
        model_config=cfg.model, skeleton=skeleton, trainable=net, train_step=train_step,
        predict=lambda batch: predict_teacher(a2j, teacher, renderer, grid, batch, n_val),
        set_train_mode=set_train_mode,
        train_samples=TrainingSamples(train_frames, crop, cfg.augment, cfg.seed),
        val_samples=TrainingSamples(val_frames, crop, None, cfg.seed),
        validation={"selector": "teacher", "num_views": n_val, "num_candidates": m,
                    "centre": "oracle (mean of ground-truth joints)",
                    "cube_mm": cfg.model.cube_mm},
        meta={"dataset": cfg.data.dataset, "train_frames": len(train_frames),
              "val_frames_total": len(val_frames)},
    )
