"""Training the hand detector on synthetic scenes (CPU, minutes).

Loss: the penalty-reduced focal loss of CenterNet (Zhou et al. 2019: alpha = 2, beta = 4,
normalised by the number of hand centres) on the heat-map, plus L1 on ``dz`` at the
cells near a centre (target heat >= 0.5). Adam with a cosine learning rate over a fixed
number of steps; deterministic per seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from vvhand_core.detector.data import Examples, TrainingCrops
from vvhand_core.detector.net import DetectorConfig, HandDetectorNet


@dataclass
class DetectorTrainConfig:
    """Optimisation of the detector (steps of ``batch_size`` random crops)."""

    steps: int = 3000
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    dz_weight: float = 1.0
    crop_h: int = 96
    crop_w: int = 128
    seed: int = 0
    device: str = "cpu"  # torch device the network trains on ("cuda": crops still on CPU)


def focal_loss(logits: Tensor, target: Tensor) -> Tensor:
    """CenterNet focal loss: logits and target (B, H, W), target 1 at centres."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target >= 0.999
    pos_loss = -((1 - p) ** 2) * torch.log(p)
    neg_loss = -((1 - target) ** 4) * (p**2) * torch.log(1 - p)
    num = pos.sum().clamp(min=1)
    return (torch.where(pos, pos_loss, neg_loss)).sum() / num


def detector_loss(out: Tensor, heat: Tensor, dz: Tensor, dz_weight: float
                  ) -> tuple[Tensor, dict[str, float]]:
    """Total loss and its parts for network output (B, 2, H, W) and targets (B, H, W)."""
    hl = focal_loss(out[:, 0], heat)
    near = (heat >= 0.5) & torch.isfinite(dz)
    if near.any():
        dl = (out[:, 1][near] - dz[near]).abs().mean()
    else:
        dl = out[:, 1].sum() * 0.0
    return hl + dz_weight * dl, {"heat": float(hl.detach()), "dz": float(dl.detach())}


def train_detector(ex: Examples, net_cfg: DetectorConfig, cfg: DetectorTrainConfig,
                   progress=None, net: HandDetectorNet | None = None,
                   frame_weights: np.ndarray | None = None,
                   checkpoint: Callable[[HandDetectorNet, int], None] | None = None,
                   checkpoint_s: float = 600.0) -> tuple[HandDetectorNet, list[dict]]:
    """Train a detector on ``ex``; returns it (eval mode) and the loss history.

    ``net``: trained further from its weights (its config must be ``net_cfg``); None: a
    new network. ``frame_weights`` (N,): how often each frame is drawn, relative (None:
    uniformly). ``progress``: optional callable(step, losses) after each step.
    ``checkpoint``: optional callable(net, step), called after the first step that ends
    ``checkpoint_s`` seconds or more after the last call (or the start); the network is
    in training mode then and must be left so (it is on ``cfg.device`` there). The
    network returned is on the CPU.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = HandDetectorNet(net_cfg) if net is None else net
    dev = torch.device(cfg.device)
    net.to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / max(cfg.steps, 1))))
    crops = TrainingCrops(ex, (cfg.crop_h, cfg.crop_w), frame_weights=frame_weights)
    history = []
    t0 = last_checkpoint = time.perf_counter()
    net.train()
    for step in range(cfg.steps):
        b = {k: torch.from_numpy(v).to(dev) for k, v in crops.batch(rng, cfg.batch_size).items()}
        out = net(b["input"])
        loss, parts = detector_loss(out, b["heat"], b["dz"], cfg.dz_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        parts |= {"step": step + 1, "loss": loss.item(), "s": time.perf_counter() - t0}
        history.append(parts)
        if progress:
            progress(step + 1, parts)
        if checkpoint and time.perf_counter() - last_checkpoint >= checkpoint_s:
            checkpoint(net, step + 1)
            last_checkpoint = time.perf_counter()
    return net.cpu().eval(), history


def config_dict(cfg: DetectorTrainConfig) -> dict:
    """JSON-ready dict of the training config."""
    return asdict(cfg)
