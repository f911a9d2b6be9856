"""Training losses: A2J (Eq. 1), multi-view fusion (Eq. 3), distillation (Eq. 4).

Every smooth-L1 uses the switch point 1.0 (quadratic below, linear above). Losses are
means over their elements (frames, views, joints); see each function for the units.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from vvhand_core.models.a2j import A2JOutput, decode

SMOOTH_L1_BETA = 1.0


@dataclass
class LossConfig:
    """Loss weights: lambda of Eq. 1, gamma of Eq. 5, beta of Eq. 4."""

    a2j_lambda: float = 3.0
    fusion_gamma: float = 0.1
    distill_beta: float = 100.0


@dataclass
class A2JLoss:
    """The parts of the A2J loss (scalars): total = info + lambda * (0.5 * uv + depth)."""

    total: Tensor
    info: Tensor
    uv: Tensor
    depth: Tensor


def a2j_loss(out: A2JOutput, anchors: Tensor, target_uvd: Tensor,
             lam: float = 3.0, depth_scale: float = 1.0) -> A2JLoss:
    """Eq. 1 on N crops.

    out: A2J head outputs for N crops; anchors (A, 2) (x, y); target_uvd (N, J, 3) with
    (u, v) in crop pixels and depth normalised (d_n = (z - z_c) / (cube/2)).
    depth_scale: the network's ``A2J.depth_scale``; the depth term compares the head's
    depth with d_n * depth_scale (in pixel-like units for depth_units "pixels").
    L_info = smoothL1(sum_a w_a * anchor_a, uv_gt) (informative anchors around joints);
    L_obj = 0.5 * smoothL1(uv, uv_gt) + smoothL1(d, d_gt); total = L_info + lam * L_obj.
    """
    uvd, anchor_uv = decode(out, anchors)  # depth in the head's units
    info = F.smooth_l1_loss(anchor_uv, target_uvd[..., :2], beta=SMOOTH_L1_BETA)
    uv = F.smooth_l1_loss(uvd[..., :2], target_uvd[..., :2], beta=SMOOTH_L1_BETA)
    depth = F.smooth_l1_loss(uvd[..., 2], target_uvd[..., 2] * depth_scale,
                             beta=SMOOTH_L1_BETA)
    return A2JLoss(info + lam * (0.5 * uv + depth), info, uv, depth)


def smooth_l1_distance(pred: Tensor, target: Tensor) -> Tensor:
    """Smooth-L1 of the Euclidean distance ||pred - target|| over the last axis.

    (..., 3), (..., 3) -> (...). Written from the squared distance so that the gradient
    is finite (zero) at pred == target: 0.5 * d^2 for d < 1, d - 0.5 otherwise.
    """
    sq = (pred - target).pow(2).sum(dim=-1)
    near = sq < SMOOTH_L1_BETA**2
    far = torch.sqrt(torch.where(near, torch.ones_like(sq), sq)) - 0.5 * SMOOTH_L1_BETA
    return torch.where(near, 0.5 * sq / SMOOTH_L1_BETA, far)


def fusion_loss(fused_mm: Tensor, target_mm: Tensor) -> Tensor:
    """Eq. 3: smooth-L1 of each fused joint's 3D error in mm, mean over frames and joints.

    fused_mm, target_mm (B, J, 3) camera mm -> scalar (the paper's sum over the K joints
    divided by K).
    """
    return smooth_l1_distance(fused_mm, target_mm).mean()


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor,
                      beta: float = 100.0) -> Tensor:
    """Eq. 4: smoothL1(beta * c_student, beta * c_teacher) on raw logits (B, M), mean.

    The teacher's logits are detached (the teacher is frozen while the student learns).
    """
    return F.smooth_l1_loss(beta * student_logits, beta * teacher_logits.detach(),
                            beta=SMOOTH_L1_BETA)


def view_selection_loss(a2j_part: Tensor, fused_mm: Tensor, target_mm: Tensor,
                        gamma: float = 0.1) -> Tensor:
    """Eq. 5: L_A2J (over all views) + gamma * L_J (fusion loss)."""
    return a2j_part + gamma * fusion_loss(fused_mm, target_mm)
