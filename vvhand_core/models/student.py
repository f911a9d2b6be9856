"""Student confidence network: a ResNet on the normalised original crop -> M view logits."""

from __future__ import annotations

from torch import Tensor, nn

from vvhand_core.models.configs import StudentConfig
from vvhand_core.models.resnet import ResNet, backbone_depth


class Student(nn.Module):
    """``forward(crop (B, C_in, S, S))`` -> logits (B, M) for the M candidate views."""

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = ResNet(backbone_depth(config.backbone), config.in_channels, config.width,
                               dilate_last=False)
        self.fc = nn.Linear(self.backbone.channels[1], config.num_views)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C_in, S, S) -> (B, M)."""
        _, c4 = self.backbone(x)
        return self.fc(c4.mean(dim=(2, 3)))
