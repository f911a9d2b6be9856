"""ResNet-18/34/50 written here (no torchvision), with the A2J variant.

``ResNet(depth, in_channels, width, dilate_last)``: stem conv7x7/2 + maxpool/2, then
four stages of strides 1, 2, 2, 2. With ``dilate_last=True`` (A2J) the last stage keeps
stride 1 and uses dilation 2, so the output stride is 16 (176 -> 11x11). ``width``
multiplies every channel count (1.0 = the standard network).
"""

from __future__ import annotations

from torch import Tensor, nn

# depth -> (block kind, blocks per stage)
_LAYOUTS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}


def scaled_channels(channels: int, width: float) -> int:
    """Channel count after the width multiplier (at least 4)."""
    return max(4, int(round(channels * width)))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = nn.Conv2d(in_ch, planes, 3, stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, out_ch, 3, 1, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) -> (B, C_out, H/stride, W/stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, dilated), 1x1 expand x4 (ResNet-50)."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) -> (B, C_out, H/stride, W/stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


class ResNet(nn.Module):
    """ResNet trunk without the classifier.

    ``forward(x (B, C_in, H, W))`` returns ``(layer3 (B, C3, H/16, W/16),
    layer4 (B, C4, H/s, W/s))`` with s = 16 when ``dilate_last`` else 32.
    ``channels`` gives (C3, C4).
    """

    def __init__(self, depth: int = 50, in_channels: int = 1, width: float = 1.0,
                 dilate_last: bool = False) -> None:
        super().__init__()
        if depth not in _LAYOUTS:
            raise ValueError(f"unsupported ResNet depth {depth}; known: {sorted(_LAYOUTS)}")
        kind, blocks = _LAYOUTS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        stem = scaled_channels(64, width)
        self.conv1 = nn.Conv2d(in_channels, stem, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        in_ch = stem
        stages = []
        for i, (n_blocks, base) in enumerate(zip(blocks, (64, 128, 256, 512))):
            planes = scaled_channels(base, width)
            stride = 1 if i == 0 or (i == 3 and dilate_last) else 2
            dilation = 2 if (i == 3 and dilate_last) else 1
            layers = []
            for b in range(n_blocks):
                layers.append(block(in_ch, planes, stride if b == 0 else 1, dilation))
                in_ch = planes * block.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.channels = (
            scaled_channels(256, width) * block.expansion,
            scaled_channels(512, width) * block.expansion,
        )
        _init_weights(self)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C_in, H, W) -> (layer3 features, layer4 features)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        c3 = self.layer3(x)
        return c3, self.layer4(c3)


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def backbone_depth(name: str) -> int:
    """'resnet50' -> 50."""
    if not name.startswith("resnet") or not name[6:].isdigit() or int(name[6:]) not in _LAYOUTS:
        raise ValueError(f"unknown backbone {name!r}; known: resnet18, resnet34, resnet50")
    return int(name[6:])
