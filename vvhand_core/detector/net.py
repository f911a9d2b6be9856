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


def _context_stage(c4: int, blocks: int) -> nn.Sequential:
    """``blocks`` blocks at stride 16 (the first one strides, the others dilate 2)."""
    return nn.Sequential(_block(c4, c4, stride=2),
                         *[_block(c4, c4, dilation=2) for _ in range(blocks - 1)])


class HandDetectorNet(nn.Module):
    """(B, 3, H, W) canonical input -> (B, 2, ceil(H/4), ceil(W/4)): heat logit, dz.

    Stride-2 stem, a stride-4 stage, a dilated stride-8 stage for context (the arm, the
    body), upsampled and added back at stride 4, then a 1x1 head. With
    ``config.context_blocks`` > 0 a stride-16 stage (the whole forearm, objects and the
    table around a hand) is added back at stride 8 through ``lateral16``, a 1x1
    convolution that starts at zero: a new context stage does not change the function.
    """

    def __init__(self, cfg: DetectorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg or DetectorConfig()
        c = self.config.width
        self.stem = _block(3, c, stride=2)
        self.s4 = nn.Sequential(_block(c, 2 * c, stride=2), _block(2 * c, 2 * c))
        self.s8 = nn.Sequential(_block(2 * c, 4 * c, stride=2), _block(4 * c, 4 * c, dilation=2),
                                _block(4 * c, 4 * c, dilation=4))
        if self.config.context_blocks:
            self.s16 = _context_stage(4 * c, self.config.context_blocks)
            self.lateral16 = nn.Conv2d(4 * c, 4 * c, 1)
            nn.init.zeros_(self.lateral16.weight)
            nn.init.zeros_(self.lateral16.bias)
        self.lateral = nn.Conv2d(4 * c, 2 * c, 1)
        self.head = nn.Sequential(_block(2 * c, 2 * c), nn.Conv2d(2 * c, 2, 1))
        with torch.no_grad():
            self.head[-1].bias.copy_(torch.tensor([-4.0, 0.0]))  # start with "no hand" everywhere

    def forward(self, x: Tensor) -> Tensor:
        """Heat-map logits and dz, (B, 2, H4, W4)."""
        f4 = self.s4(self.stem(x))
        f8 = self.s8(f4)
        if self.config.context_blocks:
            f16 = self.lateral16(self.s16(f8))
            f8 = f8 + F.interpolate(f16, size=f8.shape[-2:], mode="nearest")
        up = F.interpolate(self.lateral(f8), size=f4.shape[-2:], mode="nearest")
        return self.head(f4 + up)


def deepen(net: HandDetectorNet, context_blocks: int) -> HandDetectorNet:
    """A copy of ``net`` with a new stride-16 context stage of ``context_blocks`` blocks.

    Every trained weight is copied; the new stage starts at random and its ``lateral16``
    at zero, so the copy computes the same function until training moves it. ValueError
    when ``net`` already has a context stage or ``context_blocks`` < 1.
    """
    if net.config.context_blocks:
        raise ValueError("deepen: the network already has a context stage")
    if context_blocks < 1:
        raise ValueError("deepen: context_blocks must be >= 1")
    deep = HandDetectorNet(DetectorConfig(**{**net.config.to_dict(),
                                             "context_blocks": context_blocks}))
    missing, unexpected = deep.load_state_dict(net.state_dict(), strict=False)
    if unexpected or any(not k.startswith(("s16.", "lateral16.")) for k in missing):
        raise RuntimeError(f"deepen: state mismatch ({missing}, {unexpected})")
    return deep.train(net.training)


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


def widen(net: HandDetectorNet, width: int, noise: float = 0.01, seed: int = 0
          ) -> HandDetectorNet:
    """A copy of ``net`` with first-stage ``width`` channels, computing the same function.

    Net2Net widening (Chen et al. 2016): new channel j of a stage copies old channel
    ``j mod c`` (c the old channel count of that stage); the next layer's weights from a
    copied channel are divided by the number of copies, so the output is unchanged up to
    ``noise`` x each weight tensor's standard deviation added (Gaussian, ``seed``) to the
    widened layers' weights, which lets the copies of a channel learn apart. ValueError
    when ``width`` is smaller than the network's.
    """
    c = net.config.width
    if width < c:
        raise ValueError(f"widen: width {width} < the network's {c}")
    wide = HandDetectorNet(DetectorConfig(**{**net.config.to_dict(), "width": width}))
    gen = torch.Generator().manual_seed(seed)
    maps = {n: torch.arange(n * width) % (n * c) for n in (1, 2, 4)}
    maps[0] = torch.arange(3)  # the input's channels
    out_head = torch.arange(2)

    def copy_conv(new: nn.Conv2d, old: nn.Conv2d, m_in: Tensor, m_out: Tensor) -> None:
        counts = torch.bincount(m_in, minlength=old.in_channels).float()
        w = old.weight.detach()[m_out][:, m_in] / counts[m_in][None, :, None, None]
        if noise > 0 and new.out_channels > old.out_channels:
            w = w + noise * w.std() * torch.randn(w.shape, generator=gen)
        new.weight.copy_(w)
        if old.bias is not None:
            new.bias.copy_(old.bias.detach()[m_out])

    def copy_block(new: nn.Sequential, old: nn.Sequential, m_in: Tensor, m_out: Tensor) -> None:
        copy_conv(new[0], old[0], m_in, m_out)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new[1], name).copy_(getattr(old[1], name).detach()[m_out])

    with torch.no_grad():
        copy_block(wide.stem, net.stem, maps[0], maps[1])
        copy_block(wide.s4[0], net.s4[0], maps[1], maps[2])
        copy_block(wide.s4[1], net.s4[1], maps[2], maps[2])
        copy_block(wide.s8[0], net.s8[0], maps[2], maps[4])
        for k in (1, 2):
            copy_block(wide.s8[k], net.s8[k], maps[4], maps[4])
        for k in range(net.config.context_blocks):
            copy_block(wide.s16[k], net.s16[k], maps[4], maps[4])
        if net.config.context_blocks:
            copy_conv(wide.lateral16, net.lateral16, maps[4], maps[4])
        copy_conv(wide.lateral, net.lateral, maps[4], maps[2])
        copy_block(wide.head[0], net.head[0], maps[2], maps[2])
        copy_conv(wide.head[1], net.head[1], maps[2], out_head)
    return wide.train(net.training)
