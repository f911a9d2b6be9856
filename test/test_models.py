"""Shapes and layouts of the networks (ResNet, A2J, teacher, student)."""

import pytest
import torch

from vvhand_core.models import (
    A2J,
    A2JConfig,
    A2JOutput,
    ModelConfig,
    ResNet,
    Student,
    StudentConfig,
    Teacher,
    TeacherConfig,
    build_models,
    decode,
    make_anchors,
    teacher_features,
)
from vvhand_core.skeletons import HANDS2019_21, NYU_14


def test_anchor_layout():
    a = make_anchors(176)
    assert a.shape == (1936, 2)
    # first cell: x varies fastest, offsets 2, 6, 10, 14; (x, y) order
    assert a[:5].tolist() == [[2, 2], [6, 2], [10, 2], [14, 2], [2, 6]]
    assert a[15].tolist() == [14, 14]
    assert a[16].tolist() == [18, 2]  # next cell to the right
    assert a[11 * 16].tolist() == [2, 18]  # first cell of the second row
    assert a.min() == 2 and a.max() == 174
    assert len({tuple(p) for p in a.tolist()}) == 1936
    # anchor a sits in cell (y, x) = divmod(a // 16, 11)
    idx = torch.arange(1936)
    cy, cx = (idx // 16) // 11, (idx // 16) % 11
    assert torch.equal((a[:, 0] // 16).long(), cx) and torch.equal((a[:, 1] // 16).long(), cy)


@pytest.mark.parametrize("depth,c3,c4", [(18, 64, 128), (34, 64, 128), (50, 256, 512)])
def test_resnet_shapes_and_output_stride(depth, c3, c4):
    net = ResNet(depth, in_channels=2, width=0.25, dilate_last=True)
    assert net.channels == (c3, c4)
    f3, f4 = net(torch.zeros(1, 2, 176, 176))
    assert f3.shape == (1, c3, 11, 11) and f4.shape == (1, c4, 11, 11)
    plain = ResNet(depth, in_channels=1, width=0.125, dilate_last=False)
    _, g4 = plain(torch.zeros(1, 1, 160, 160))
    assert g4.shape[-2:] == (5, 5)


def test_full_size_resnet50_a2j_shapes_on_meta_device():
    with torch.device("meta"):
        net = A2J(A2JConfig(num_joints=21, backbone="resnet50", width=1.0))
        out = net(torch.empty(2, 1, 176, 176))
    assert net.backbone.channels == (1024, 2048)
    assert out.response.shape == (2, 1936, 21)
    assert out.offsets.shape == (2, 1936, 21, 2)
    assert out.depth.shape == (2, 1936, 21)
    assert net.response_head.body[0].in_channels == 1024
    assert net.offset_head.body[0].in_channels == 2048
    assert net.offset_head.body[0].out_channels == 256


@pytest.fixture(scope="module")
def small_a2j():
    torch.manual_seed(0)
    return A2J(A2JConfig(num_joints=5, backbone="resnet18", width=0.125)).eval()


def test_a2j_shapes_and_channel_layout(small_a2j):
    raw = {}
    hooks = [small_a2j.response_head.register_forward_hook(lambda m, i, o: raw.update(r=o)),
             small_a2j.offset_head.register_forward_hook(lambda m, i, o: raw.update(o=o)),
             small_a2j.depth_head.register_forward_hook(lambda m, i, o: raw.update(d=o))]
    with torch.no_grad():
        out = small_a2j(torch.randn(3, 1, 176, 176))
    for h in hooks:
        h.remove()
    j = 5
    assert out.response.shape == (3, 1936, j) and out.offsets.shape == (3, 1936, j, 2)
    assert out.grid == (11, 11)
    # documented layout: channel k*J + j at cell (cy, cx) is anchor (cy*11 + cx)*16 + k
    for n, k, jj, cy, cx in [(0, 0, 0, 0, 0), (1, 5, 3, 4, 7), (2, 15, 4, 10, 10)]:
        a = (cy * 11 + cx) * 16 + k
        assert out.response[n, a, jj] == raw["r"][n, k * j + jj, cy, cx]
        assert out.depth[n, a, jj] == raw["d"][n, k * j + jj, cy, cx]
        for c in range(2):
            assert out.offsets[n, a, jj, c] == raw["o"][n, (k * j + jj) * 2 + c, cy, cx]
    # teacher input: per joint 16 x {response, dx, dy, depth} maps in cell layout
    ti = out.teacher_input()
    assert ti.shape == (3, j, 64, 11, 11)
    n, k, jj, cy, cx = 1, 9, 2, 3, 8
    a = (cy * 11 + cx) * 16 + k
    assert ti[n, jj, k, cy, cx] == out.response[n, a, jj]
    assert ti[n, jj, 16 + k, cy, cx] == out.offsets[n, a, jj, 0]
    assert ti[n, jj, 32 + k, cy, cx] == out.offsets[n, a, jj, 1]
    assert ti[n, jj, 48 + k, cy, cx] == out.depth[n, a, jj]


def test_decode_perfect_outputs_gives_exact_joints():
    g = torch.Generator().manual_seed(1)
    anchors = make_anchors(176).double()
    n, j = 2, 4
    gt_uv = torch.rand(n, j, 2, generator=g, dtype=torch.float64) * 170 + 3
    gt_d = torch.rand(n, j, generator=g, dtype=torch.float64) * 2 - 1
    # every anchor votes exactly for the joint: any softmax weights give the joint
    offsets = gt_uv[:, None] - anchors[None, :, None]
    out = A2JOutput(torch.randn(n, 1936, j, generator=g, dtype=torch.float64), offsets,
                    gt_d[:, None].expand(n, 1936, j).clone(), (11, 11))
    uvd, anchor_uv = decode(out, anchors)
    assert torch.allclose(uvd[..., :2], gt_uv, atol=1e-9)
    assert torch.allclose(uvd[..., 2], gt_d, atol=1e-12)
    # one dominant anchor -> the anchor-only estimate is that anchor
    resp = torch.zeros(n, 1936, j, dtype=torch.float64)
    resp[:, 100] = 200.0
    out2 = A2JOutput(resp, torch.zeros_like(offsets), torch.zeros(n, 1936, j,
                                                                  dtype=torch.float64), (11, 11))
    _, anchor_uv = decode(out2, anchors)
    assert torch.allclose(anchor_uv, anchors[100].expand(n, j, 2))


def test_teacher_shapes_view_permutation_and_heads():
    torch.manual_seed(0)
    cfg = TeacherConfig(num_joints=3, num_heads=3, head_dim=8, d_model=32, ff_dim=32)
    teacher = Teacher(cfg).eval()
    feats = torch.randn(2, 5, 3, 64, 11, 11)
    with torch.no_grad():
        logits = teacher(feats)
        assert logits.shape == (2, 5)
        perm = torch.tensor([3, 0, 4, 1, 2])
        permuted = teacher(feats[:, perm])
        assert torch.allclose(permuted, logits[:, perm], atol=1e-5)  # no positional encoding
        assert teacher(feats[:, :2]).shape == (2, 2)  # any number of views
        # attention mixes views: changing one view changes another view's logit
        feats2 = feats.clone()
        feats2[:, 0] += 1.0
        assert not torch.allclose(teacher(feats2)[:, 1], logits[:, 1])
    assert teacher.attention.attn.qkv.out_features == 3 * 3 * 8
    with pytest.raises(ValueError):
        teacher(torch.randn(2, 3, 64, 11, 11))


def test_teacher_features_reshape():
    x = torch.arange(6 * 2 * 64 * 1 * 1, dtype=torch.float32).reshape(6, 2, 64, 1, 1)
    f = teacher_features(x, 3)
    assert f.shape == (2, 3, 2, 64, 1, 1)
    assert torch.equal(f[1, 2], x[5])
    with pytest.raises(ValueError):
        teacher_features(x, 4)


def test_student_shape():
    torch.manual_seed(0)
    s = Student(StudentConfig(num_views=25, width=0.125)).eval()
    with torch.no_grad():
        assert s(torch.randn(2, 1, 176, 176)).shape == (2, 25)


def test_model_config_round_trip_and_validation():
    cfg = ModelConfig.small(num_joints=14, width=0.125, num_candidates=9)
    d = cfg.to_dict()
    assert ModelConfig.from_dict(d) == cfg
    a2j, student, teacher = build_models(d, NYU_14)
    assert a2j.num_joints == 14 and student.fc.out_features == 9
    with pytest.raises(ValueError, match="joints"):
        build_models(d, HANDS2019_21)
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({**d, "bogus": 1})
    with pytest.raises(ValueError, match="backbone"):
        A2JConfig(backbone="resnet101")
    with pytest.raises(ValueError, match="multiple of 16"):
        A2JConfig(crop_size=170)


def test_gradient_reaches_backbone_from_teacher_and_joints():
    torch.manual_seed(0)
    a2j = A2J(A2JConfig(num_joints=2, backbone="resnet18", width=0.125)).train()
    teacher = Teacher(TeacherConfig(num_joints=2, num_heads=1, head_dim=8, d_model=16,
                                    ff_dim=16)).train()
    out = a2j(torch.randn(4, 1, 176, 176))
    uvd = a2j.decode(out)[0]
    logits = teacher(teacher_features(out.teacher_input(), 2))
    (uvd.sum() + logits.sum()).backward()
    for p in (a2j.backbone.conv1.weight, teacher.encoder[0].weight, teacher.out.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
