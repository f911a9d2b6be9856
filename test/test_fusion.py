"""Top-N selection, fusion weights, mapping back through M_i^-1, and gradient flow."""

import pytest
import torch

from vvhand_core.fusion import (
    fuse_camera_joints,
    fuse_joints,
    fusion_weights,
    gather_views,
    select_top_n,
    selection_score,
)
from vvhand_core.jointspace import camera_mm_to_views, crop_uvd_to_camera_mm
from vvhand_core.losses import fusion_loss
from vvhand_core.models import A2J, A2JConfig, Teacher, TeacherConfig, teacher_features
from vvhand_core.views import invert_rigid, view_grid, view_matrices


def test_select_top_n_and_gather():
    logits = torch.tensor([[0.1, 3.0, -1.0, 2.0], [5.0, 0.0, 6.0, 1.0]])
    idx = select_top_n(logits, 2)
    assert idx.dtype == torch.int64 and idx.tolist() == [[1, 3], [2, 0]]
    assert gather_views(logits, idx).tolist() == [[3.0, 2.0], [6.0, 5.0]]
    mats = torch.arange(2 * 4 * 16, dtype=torch.float32).reshape(2, 4, 4, 4)
    g = gather_views(mats, idx)
    assert torch.equal(g[1, 0], mats[1, 2]) and torch.equal(g[0, 1], mats[0, 3])
    with pytest.raises(ValueError):
        select_top_n(logits, 5)
    with pytest.raises(ValueError):
        select_top_n(logits, 0)


def test_fusion_weights_and_score():
    sel = torch.tensor([[2.0, 1.0, 0.0]])
    w = fusion_weights(sel, "confidence")
    e = torch.exp(torch.tensor([2.0, 1.0, 0.0]))
    assert torch.allclose(w[0], e / e.sum())
    assert torch.allclose(fusion_weights(sel, "average"), torch.full((1, 3), 1 / 3))
    with pytest.raises(ValueError, match="fusion"):
        fusion_weights(sel, "median")
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.125]]))
    assert torch.allclose(selection_score(logits, torch.tensor([[0, 2]])), torch.tensor([0.625]))
    assert torch.allclose(selection_score(logits, torch.arange(4)[None]), torch.tensor([1.0]))


def test_fuse_joints_maps_back_through_inverse_view():
    g = torch.Generator().manual_seed(0)
    b, n, j = 2, 3, 5
    centre = torch.tensor([[10.0, -20.0, 450.0], [-40.0, 5.0, 600.0]], dtype=torch.float64)
    gt = centre[:, None] + torch.randn(b, j, 3, generator=g, dtype=torch.float64) * 40
    angles = view_grid(25)[torch.tensor([0, 12, 19])]
    mats = view_matrices(angles, centre)  # (B, N, 4, 4)
    err = torch.randn(b, n, j, 3, generator=g, dtype=torch.float64) * 5  # per-view error
    # what each view would predict in its own frame: M_i (gt + e_i)
    pred_view = camera_mm_to_views(gt, mats)
    pred_view_err = torch.stack(
        [camera_mm_to_views(gt + err[:, i], mats[:, i:i + 1])[:, 0] for i in range(n)], dim=1)
    weights = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]], dtype=torch.float64)
    inv = invert_rigid(mats)
    assert torch.allclose(fuse_joints(pred_view, inv, weights), gt, atol=1e-9)
    fused = fuse_joints(pred_view_err, inv, weights)
    expected = gt + torch.einsum("bn,bnjk->bjk", weights, err)
    assert torch.allclose(fused, expected, atol=1e-9)
    # the views are really rotated: fusing without mapping back is wrong
    assert not torch.allclose(fuse_camera_joints(pred_view_err, weights), expected, atol=1.0)
    assert torch.allclose(fuse_camera_joints(gt[:, None].expand(b, n, j, 3), weights), gt)


def test_fusion_loss_gradient_reaches_a2j_backbone_and_teacher():
    torch.manual_seed(0)
    b, v, j = 1, 3, 4
    a2j = A2J(A2JConfig(num_joints=j, backbone="resnet18", width=0.125)).train()
    teacher = Teacher(TeacherConfig(num_joints=j, num_heads=2, head_dim=8, d_model=16,
                                    ff_dim=16)).train()
    centre = torch.tensor([[0.0, 0.0, 500.0]])
    k = torch.tensor([[475.0, 475.0, 320.0, 240.0]])
    t = torch.tensor([[[0.8, 0.0, -170.0], [0.0, 0.8, -104.0], [0.0, 0.0, 1.0]]])
    mats = view_matrices(view_grid(3), centre)
    out = a2j(torch.randn(b * v, 1, 176, 176))
    uvd = a2j.decode(out)[0].reshape(b, v, j, 3)
    logits = teacher(teacher_features(out.teacher_input(), v))
    joints_view = crop_uvd_to_camera_mm(uvd, t, k, centre[:, 2], 250.0)
    fused = fuse_joints(joints_view, invert_rigid(mats), fusion_weights(logits))
    gt = centre[:, None] + torch.randn(b, j, 3) * 30
    loss = fusion_loss(fused, gt)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    for p in (a2j.backbone.conv1.weight, a2j.backbone.layer4[0].conv1.weight,
              a2j.offset_head.out.weight, teacher.encoder[0].weight, teacher.out.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
