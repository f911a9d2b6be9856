"""A2J (anchor-to-joint) pose network on one normalised depth crop.

Anchors: every 16-px cell of the S x S crop holds 4 x 4 anchors at offsets 2, 6, 10,
14 px in x and y (1,936 anchors for S = 176). Anchor index
``a = ((cell_y * W_c + cell_x) * 4 + iy) * 4 + ix`` and anchor coordinates are (x, y)
= (u, v) crop pixels, like every target. Per joint j the network gives a response,
an (x, y) offset in crop pixels and a depth for each anchor, in the units of
``A2JConfig.depth_units`` (d_n * ``jointspace.depth_scale``, d_n = (z - z_c) / (cube/2));
``decode`` turns them into (u, v, d_n) by a softmax over anchors.

Head output channel layout (also used by the teacher): response/depth channel
``k * J + j`` and offset channel ``(k * J + j) * 2 + c`` for in-cell anchor k,
joint j, coordinate c (0 = x, 1 = y).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vvhand_core.jointspace import depth_scale
from vvhand_core.models.configs import A2JConfig
from vvhand_core.models.resnet import ResNet, backbone_depth, scaled_channels

ANCHOR_STRIDE = 16
ANCHOR_OFFSETS = (2.0, 6.0, 10.0, 14.0)
ANCHORS_PER_CELL = len(ANCHOR_OFFSETS) ** 2


def make_anchors(crop_size: int = 176, stride: int = ANCHOR_STRIDE,
                 offsets: tuple[float, ...] = ANCHOR_OFFSETS,
                 device: torch.device | str | None = None) -> Tensor:
    """Anchor points (A, 2) in (x, y) crop pixels, A = (crop_size/stride)^2 * len(offsets)^2."""
    cells = crop_size // stride
    c = torch.arange(cells, dtype=torch.float32, device=device) * stride
    o = torch.tensor(offsets, dtype=torch.float32, device=device)
    k = len(offsets)
    # index order (cell_y, cell_x, iy, ix)
    x = (c.view(1, cells, 1, 1) + o.view(1, 1, 1, k)).expand(cells, cells, k, k)
    y = (c.view(cells, 1, 1, 1) + o.view(1, 1, k, 1)).expand(cells, cells, k, k)
    return torch.stack((x.reshape(-1), y.reshape(-1)), dim=-1)


@dataclass
class A2JOutput:
    """Per-anchor head outputs of A2J for N crops.

    response (N, A, J) logits; offsets (N, A, J, 2) crop px (x, y); depth (N, A, J)
    normalised; grid (H_c, W_c) the anchor-cell grid (A = H_c * W_c * 16).
    """

    response: Tensor
    offsets: Tensor
    depth: Tensor
    grid: tuple[int, int]

    def teacher_input(self) -> Tensor:
        """(N, J, 64, H_c, W_c): per joint, 16 anchors x {response, dx, dy, depth} maps."""
        n, _a, j = self.response.shape
        h, w = self.grid
        k = ANCHORS_PER_CELL

        def maps(t: Tensor) -> Tensor:  # (N, A, J) -> (N, J, 16, H_c, W_c)
            return t.reshape(n, h, w, k, j).permute(0, 4, 3, 1, 2)

        return torch.cat((maps(self.response), maps(self.offsets[..., 0]),
                          maps(self.offsets[..., 1]), maps(self.depth)), dim=2)


def decode(out: A2JOutput, anchors: Tensor,
           depth_scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """Softmax anchor aggregation.

    Returns ``uvd (N, J, 3)`` = (u, v) crop px and depth (the head's depth divided by
    ``depth_scale``: normalised d_n for the network's own scale, the head's units for
    1.0), and the anchor-only estimate ``anchor_uv (N, J, 2)`` = sum_a w_a * anchor_a
    used by the informative-anchor loss. ``anchors`` is (A, 2) (x, y).
    """
    w = torch.softmax(out.response, dim=1)  # (N, A, J)
    anchor_uv = torch.einsum("naj,ak->njk", w, anchors.to(w.dtype))
    uv = anchor_uv + torch.einsum("naj,najk->njk", w, out.offsets)
    d = (w * out.depth).sum(dim=1)
    if depth_scale != 1.0:
        d = d / depth_scale
    return torch.cat((uv, d.unsqueeze(-1)), dim=-1), anchor_uv


class _Head(nn.Module):
    """``layers`` x [conv3x3, BN, ReLU] then a 3x3 output convolution."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int, layers: int) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        for i in range(layers):
            mods += [nn.Conv2d(in_ch if i == 0 else mid_ch, mid_ch, 3, padding=1, bias=False),
                     nn.BatchNorm2d(mid_ch), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*mods)
        self.out = nn.Conv2d(mid_ch if layers else in_ch, out_ch, 3, padding=1)
        for m in self.body.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
        nn.init.normal_(self.out.weight, std=0.01)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) -> (N, out_ch, H, W)."""
        return self.out(self.body(x))


class A2J(nn.Module):
    """A2J: dilated ResNet trunk (output stride 16) + response/offset/depth heads.

    ``forward(x (N, C_in, S, S))`` -> :class:`A2JOutput`; ``predict(x)`` -> uvd (N, J, 3).
    The response head reads layer3 features, the offset and depth heads layer4.
    """

    def __init__(self, config: A2JConfig) -> None:
        super().__init__()
        self.config = config
        j, k = config.num_joints, ANCHORS_PER_CELL
        self.backbone = ResNet(backbone_depth(config.backbone), config.in_channels,
                               config.width, dilate_last=True)
        c3, c4 = self.backbone.channels
        mid = scaled_channels(config.head_channels, config.width)
        self.response_head = _Head(c3, mid, k * j, config.head_layers)
        self.offset_head = _Head(c4, mid, k * j * 2, config.head_layers)
        self.depth_head = _Head(c4, mid, k * j, config.head_layers)
        self.register_buffer("anchors", make_anchors(config.crop_size), persistent=False)
        self.depth_scale = depth_scale(config.depth_units, config.crop_size)

    @property
    def num_joints(self) -> int:
        """J."""
        return self.config.num_joints

    def forward(self, x: Tensor) -> A2JOutput:
        """Head outputs for crops x (N, C_in, S, S)."""
        c3, c4 = self.backbone(x)
        n, _, h, w = c4.shape
        if c3.shape[-2:] != c4.shape[-2:]:
            raise RuntimeError(f"layer3 {tuple(c3.shape)} and layer4 {tuple(c4.shape)} differ")
        j, k = self.config.num_joints, ANCHORS_PER_CELL
        a = h * w * k
        resp = self.response_head(c3).view(n, k, j, h, w).permute(0, 3, 4, 1, 2)
        off = self.offset_head(c4).view(n, k, j, 2, h, w).permute(0, 4, 5, 1, 2, 3)
        dep = self.depth_head(c4).view(n, k, j, h, w).permute(0, 3, 4, 1, 2)
        return A2JOutput(resp.reshape(n, a, j), off.reshape(n, a, j, 2), dep.reshape(n, a, j),
                         (h, w))

    def decode(self, out: A2JOutput) -> tuple[Tensor, Tensor]:
        """See :func:`decode`; this network's anchors and depth scale: uvd holds d_n."""
        if out.response.shape[1] != self.anchors.shape[0]:
            raise ValueError(f"{out.response.shape[1]} anchors in the output, "
                             f"{self.anchors.shape[0]} for crop size {self.config.crop_size}")
        return decode(out, self.anchors, self.depth_scale)

    def predict(self, x: Tensor) -> Tensor:
        """Joints uvd (N, J, 3): (u, v) crop px, normalised depth."""
        return self.decode(self.forward(x))[0]
