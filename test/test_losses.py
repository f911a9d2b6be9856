"""Losses: zero at the ground truth, hand-computed values, gradients."""

import math

import torch

from vvhand_core.losses import (
    LossConfig,
    a2j_loss,
    distillation_loss,
    fusion_loss,
    smooth_l1_distance,
    view_selection_loss,
)
from vvhand_core.models import A2J, A2JConfig, A2JOutput, make_anchors

ANCHORS = make_anchors(176).double()


def _peaked_output(n, j, anchor_ids, offsets_xy, depth):
    """Head outputs whose softmax puts all weight on one anchor per joint."""
    resp = torch.zeros(n, 1936, j, dtype=torch.float64)
    off = torch.zeros(n, 1936, j, 2, dtype=torch.float64)
    dep = torch.zeros(n, 1936, j, dtype=torch.float64)
    for jj, a in enumerate(anchor_ids):
        resp[:, a, jj] = 500.0
        off[:, a, jj] = torch.tensor(offsets_xy[jj], dtype=torch.float64)
        dep[:, a, jj] = depth[jj]
    return A2JOutput(resp, off, dep, (11, 11))


def test_a2j_loss_zero_at_ground_truth():
    ids, depth = [0, 777, 1935], [0.3, -0.9, 0.0]
    out = _peaked_output(2, 3, ids, [(0, 0)] * 3, depth)
    gt = torch.cat([ANCHORS[ids], torch.tensor(depth, dtype=torch.float64)[:, None]], -1)
    loss = a2j_loss(out, ANCHORS, gt.expand(2, 3, 3))
    for part in (loss.total, loss.info, loss.uv, loss.depth):
        assert abs(part.item()) < 1e-12


def test_a2j_loss_parts_hand_computed():
    # joints off their anchor by (0.5, -2.0): uv exact, anchor-only estimate off
    ids, depth = [40, 41], [0.1, 0.2]
    off = [(0.5, -2.0), (0.5, -2.0)]
    out = _peaked_output(1, 2, ids, off, depth)
    uv = ANCHORS[ids] + torch.tensor(off, dtype=torch.float64)
    gt = torch.cat([uv, torch.tensor([[0.1], [0.7]], dtype=torch.float64)], -1)[None]
    loss = a2j_loss(out, ANCHORS, gt, lam=3.0)
    info = (0.5 * 0.5**2 + (2.0 - 0.5)) / 2  # mean over x, y elements (same for both joints)
    depth_l = (0.0 + 0.5 * 0.5**2) / 2
    assert math.isclose(loss.info.item(), info, rel_tol=1e-9)
    assert abs(loss.uv.item()) < 1e-12
    assert math.isclose(loss.depth.item(), depth_l, rel_tol=1e-9)
    assert math.isclose(loss.total.item(), info + 3.0 * depth_l, rel_tol=1e-9)


def test_a2j_loss_trains_the_network():
    torch.manual_seed(0)
    net = A2J(A2JConfig(num_joints=2, backbone="resnet18", width=0.125)).train()
    x = torch.randn(2, 1, 176, 176)
    gt = torch.tensor([[[60.0, 80.0, 0.1], [120.0, 90.0, -0.2]]]).expand(2, 2, 3)
    loss = a2j_loss(net(x), net.anchors, gt)
    loss.total.backward()
    assert loss.total.item() > 1.0
    assert net.backbone.conv1.weight.grad.abs().sum() > 0
    assert net.response_head.out.weight.grad.abs().sum() > 0


def test_smooth_l1_distance_values_and_gradient_at_zero():
    gt = torch.zeros(4, 3, dtype=torch.float64)
    pred = torch.tensor([[3.0, 4.0, 0.0], [0.6, 0.0, 0.8], [0.3, 0.0, 0.4], [0.0, 0.0, 0.0]],
                        dtype=torch.float64, requires_grad=True)
    d = smooth_l1_distance(pred, gt)
    assert torch.allclose(d, torch.tensor([4.5, 0.5, 0.125, 0.0], dtype=torch.float64))
    d.sum().backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[3].abs().sum() == 0
    # linear region: gradient is the unit direction
    assert torch.allclose(pred.grad[0], torch.tensor([0.6, 0.8, 0.0], dtype=torch.float64))


def test_fusion_loss_zero_at_ground_truth_and_mean():
    gt = torch.randn(2, 21, 3) * 50 + torch.tensor([0.0, 0.0, 500.0])
    assert fusion_loss(gt.clone(), gt).item() == 0.0
    pred = gt.clone()
    pred[0, 0, 2] += 10.0  # one joint 10 mm off -> (10 - 0.5) / (2 * 21)
    assert math.isclose(fusion_loss(pred, gt).item(), 9.5 / 42, rel_tol=1e-5)


def test_distillation_loss():
    t = torch.randn(3, 25)
    s = t.clone().requires_grad_(True)
    assert distillation_loss(s, t).item() == 0.0
    s2 = (t + 0.001).requires_grad_(True)  # beta * diff = 0.1 -> 0.5 * 0.01
    assert math.isclose(distillation_loss(s2, t, beta=100.0).item(), 0.005, rel_tol=1e-3)
    s3 = (t + 0.5).requires_grad_(True)
    t3 = t.clone().requires_grad_(True)
    distillation_loss(s3, t3).backward()
    assert t3.grad is None and s3.grad.abs().sum() > 0  # teacher frozen
    assert math.isclose(distillation_loss(t + 0.5, t).item(), 49.5, rel_tol=1e-5)


def test_view_selection_loss_and_config():
    cfg = LossConfig()
    assert (cfg.a2j_lambda, cfg.fusion_gamma, cfg.distill_beta) == (3.0, 0.1, 100.0)
    gt = torch.zeros(1, 1, 3)
    pred = torch.tensor([[[0.0, 0.0, 10.5]]])
    total = view_selection_loss(torch.tensor(2.0), pred, gt, gamma=cfg.fusion_gamma)
    assert math.isclose(total.item(), 2.0 + 0.1 * 10.0, rel_tol=1e-6)
