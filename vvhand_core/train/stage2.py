"""Stage 2: the student distilled from a frozen stage-1 checkpoint (paper Eq. 4).

One step: a batch of B crops -> the M candidate-grid views (optionally all turned by a
random roll) -> the frozen A2J + teacher give M logits per frame (no gradient) -> the
student sees only the normalised original crop (the grid's identity view, i.e. the crop
itself, or its rolled version) -> L = smoothL1(beta * c_student, beta * c_teacher).

Validation runs student-select-N exactly as the pipeline's "student" selector does:
student logits on the crop, top-N, render only those N views, A2J, fuse with a softmax
over the N selected student logits. The checkpoints hold all three networks: the
stage-2 best.pt is the deployable model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vvhand_core.checkpoint import load_checkpoint
from vvhand_core.crop import CropConfig
from vvhand_core.fusion import fuse_joints, fusion_weights, gather_views, select_top_n
from vvhand_core.jointspace import crop_uvd_to_camera_mm
from vvhand_core.losses import distillation_loss
from vvhand_core.models import A2J, Student
from vvhand_core.render import make_renderer
from vvhand_core.train.config import ConfigError, Stage2Config
from vvhand_core.train.loop import DistEnv, TrainingJob
from vvhand_core.train.samples import (
    TrainingSamples,
    batch_view_matrices,
    crop_input,
    render_views,
)
from vvhand_core.train.splits import check_skeleton, open_split
from vvhand_core.train.stage1 import views_forward
from vvhand_core.views import identity_index, invert_rigid, view_grid, view_matrices


@torch.no_grad()
def predict_student(a2j: A2J, student: Student, renderer, grid_deg: Tensor,
                    batch: dict[str, Tensor], n: int) -> Tensor:
    """Student-select-N: logits on the crop, render the top-n views only, A2J, fuse.

    Returns joints (B, J, 3) camera mm.
    """
    logits = student(crop_input(batch))  # (B, M)
    idx = select_top_n(logits, n)
    mats = gather_views(view_matrices(grid_deg, batch["centre_mm"]), idx)  # (B, n, 4, 4)
    vb = render_views(renderer, batch, mats)
    uvd = a2j.predict(vb.inputs)
    uvd = uvd.reshape(-1, n, *uvd.shape[1:])
    zc, cube = batch["centre_mm"][:, 2], batch["cube_mm"]
    joints_view = crop_uvd_to_camera_mm(uvd, batch["t"], batch["k"], zc, cube)
    weights = fusion_weights(gather_views(logits, idx), "confidence")
    return fuse_joints(joints_view, invert_rigid(mats), weights)


def distill_step(a2j: A2J, teacher: nn.Module, student: nn.Module, renderer,
                 grid_deg: Tensor, batch: dict[str, Tensor], beta: float,
                 augment=None, generator: torch.Generator | None = None
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """Distillation loss of one batch: (loss, student logits (B, M), teacher logits (B, M)).

    a2j and teacher run without gradient; ``student`` may be a DDP wrapper.
    """
    m = grid_deg.shape[0]
    mats = batch_view_matrices(batch, grid_deg, augment, generator)
    vb = render_views(renderer, batch, mats)
    with torch.no_grad():
        _, _, t_logits = views_forward(a2j, teacher, vb.inputs, m)
    s = vb.inputs.shape[-1]
    s_in = vb.inputs.reshape(-1, m, 1, s, s)[:, identity_index(m)]  # the (rolled) crop
    s_logits = student(s_in)
    return distillation_loss(s_logits, t_logits, beta), s_logits, t_logits


def build_job(cfg: Stage2Config, env: DistEnv) -> TrainingJob:
    """The stage-2 job: frozen A2J + teacher from the stage-1 checkpoint, a fresh student."""
    loaded = load_checkpoint(cfg.teacher_checkpoint, env.device)
    mc = loaded.model_config
    m = mc.num_candidates
    if m not in (1, 3, 9, 15, 25, 81):
        raise ConfigError(f"{cfg.teacher_checkpoint}: num_candidates {m} is not a view grid")
    a2j, teacher = loaded.a2j, loaded.teacher
    for net in (a2j, teacher):
        net.eval()
        net.requires_grad_(False)
    torch.manual_seed(cfg.seed)
    student = Student(mc.student).to(env.device)
    grid = view_grid(m).to(env.device)
    renderer = make_renderer(cfg.renderer, device=env.device)
    crop = CropConfig(mc.cube_mm, mc.crop_size)
    train_frames, val_frames = open_split(cfg.data, "train"), open_split(cfg.data, "val")
    check_skeleton(train_frames, loaded.skeleton, "train")
    check_skeleton(val_frames, loaded.skeleton, "validation")
    if cfg.val_num_views > m:
        raise ConfigError(f"val_num_views {cfg.val_num_views} > the checkpoint's {m} views")

    def train_step(module: nn.Module, batch: dict[str, Tensor],
                   gen: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        loss, s_logits, t_logits = distill_step(a2j, teacher, module, renderer, grid, batch,
                                                cfg.loss.distill_beta, cfg.augment, gen)
        gap = (s_logits.detach() - t_logits).abs().mean()
        return loss, {"loss": loss.item(), "logit_gap": gap.item()}

    def set_train_mode() -> None:
        student.train()
        a2j.eval()
        teacher.eval()

    n_val = cfg.val_num_views
    stage1 = {k: v for k, v in loaded.meta.items() if k != "stage1"}  # its config, run, ...
    return TrainingJob(
        stage="stage2", config=cfg, a2j=a2j, student=student, teacher=teacher,
        model_config=mc, skeleton=loaded.skeleton, trainable=student, train_step=train_step,
        predict=lambda batch: predict_student(a2j, student, renderer, grid, batch, n_val),
        set_train_mode=set_train_mode,
        train_samples=TrainingSamples(train_frames, crop, cfg.augment, cfg.seed),
        val_samples=TrainingSamples(val_frames, crop, None, cfg.seed),
        validation={"selector": "student", "num_views": n_val, "num_candidates": m,
                    "centre": "oracle (mean of ground-truth joints)", "cube_mm": mc.cube_mm},
        meta={"dataset": cfg.data.dataset, "train_frames": len(train_frames),
              "val_frames_total": len(val_frames),
              "teacher_checkpoint": str(cfg.teacher_checkpoint), "stage1": stage1},
    )
