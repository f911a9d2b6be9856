"""A small fully-convolutional hand detector on the whole depth image (CPU-fast).

Conventions (defined here, used by the detector's training and its localiser):

* Canonical image: every depth frame is resampled (nearest neighbour, no interpolation
  across depth edges) to the focal length ``DetectorConfig.focal_px`` (120 px by default),
  so a hand at depth z has the same size in pixels whatever the camera: 640x480 at
  fx = 475 becomes 162x121, 1280x720 at fx = 600 becomes 256x144. ``canonical_camera``
  gives the resampled camera (``Intrinsics.scaled``: pixel centres stay at integers).
* Input (3, H, W) float32: valid mask, depth in metres (0 where invalid), and depth
  behind the frame's nearest valid surface ((z - z_near) / 300 mm, clipped to [0, 3]).
* Output (2, H/4, W/4) at stride 4 (output cell (i, j) is centred on canonical pixel
  (4 i, 4 j)): a hand-centre heat-map logit and ``dz``: (z_centre - z_surface) /
  ``DZ_SCALE_MM``, where z_surface is ``surface_depth_mm`` of the canonical image around
  the cell (a low percentile of the valid depth nearby). The hand centre is the mean of
  the 21 ground-truth joints (``localise.oracle_centre``).

The numpy code of these conventions (resampling, encoding, surface depth, peaks) lives in
the torch-free :mod:`vvhand_core.detector.ops` and is re-exported here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vvhand_core.detector.ops import (  # noqa: F401 - re-exported: the conventions' code
    DZ_SCALE_MM,
    NEAR_PERCENTILE,
    REL_DEPTH_MM,
    STRIDE,
    DetectorConfig,
    Peak,
    canonical_camera,
    canonical_depth,
    canonical_index,
    encode_input,
    find_peaks,
    nearest_surface_mm,
    percentile_linear,
    surface_depth_mm,
)


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class HandDetectorNet(nn.Module):
    """(B, 3, H, W) canonical input -> (B, 2, ceil(H/4), ceil(W/4)): heat logit, dz.

    Stride-2 stem, a stride-4 stage, a dilated stride-8 stage for context (the arm, the
    body), upsampled and added back at stride 4, then a 1x1 head.
    """

    def __init__(self, cfg: DetectorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg or DetectorConfig()
        c = self.config.width
        self.stem = _block(3, c, stride=2)
        self.s4 = nn.Sequential(_block(c, 2 * c, stride=2), _block(2 * c, 2 * c))
        self.s8 = nn.Sequential(_block(2 * c, 4 * c, stride=2), _block(4 * c, 4 * c, dilation=2),
                                _block(4 * c, 4 * c, dilation=4))
        self.lateral = nn.Conv2d(4 * c, 2 * c, 1)
        self.head = nn.Sequential(_block(2 * c, 2 * c), nn.Conv2d(2 * c, 2, 1))
        with torch.no_grad():
            self.head[-1].bias.copy_(torch.tensor([-4.0, 0.0]))  # start with "no hand" everywhere

    def forward(self, x: Tensor) -> Tensor:
        """Heat-map logits and dz, (B, 2, H4, W4)."""
        f4 = self.s4(self.stem(x))
        f8 = self.s8(f4)
        up = F.interpolate(self.lateral(f8), size=f4.shape[-2:], mode="nearest")
        return self.head(f4 + up)


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """Fold every BatchNorm into the convolution before it (inference only, in place).

    Works on any module built of (Conv2d, BatchNorm2d, activation) Sequential blocks (the
    detector and the refiner).

    conv(x) * g / sqrt(var + eps) + (b - mean * g / sqrt(var + eps)) is one convolution;
    the folded network gives the same output in eval mode with a third fewer passes.
    """
    for block in net.modules():
        if not (isinstance(block, nn.Sequential) and len(block) == 3
                and isinstance(block[1], nn.BatchNorm2d)):
            continue
        conv, bn = block[0], block[1]
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                          conv.padding, conv.dilation, bias=True)
        with torch.no_grad():
            fused.weight.copy_(conv.weight * scale[:, None, None, None])
            fused.bias.copy_(bn.bias.detach() - bn.running_mean * scale)
        block[0], block[1] = fused, nn.Identity()
    return net.eval()
