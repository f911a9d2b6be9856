"""Second stage of the detector: refine a detected centre from a patch around it.

The heat-map places a hand in (u, v) well, but its depth head sees the hand at a quarter
of the canonical resolution. The refiner looks at a ``PATCH`` x ``PATCH`` canonical patch
centred on a candidate (pixel (u0, v0), rounded) and regresses the offset to the hand
centre: du, dv in units of ``UV_SCALE_PX`` canonical pixels and dz in ``DZ_SCALE_MM``
relative to ``z_ref``, the 20th percentile of the valid depth in the patch's central
17 x 17 pixels. Input channels: valid mask, (z - z_ref) / 100 mm clipped to [-3, 3],
z_ref / 1000 mm (the hand's apparent size depends on it), and for a refiner with
``RefineConfig.border`` a fourth: 1 inside the image, 0 beyond its border. ``patch_at``,
``RefineConfig`` and ``apply_offsets`` live in the torch-free
:mod:`vvhand_core.detector.ops` (re-exported here).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from vvhand_core.detector.data import Examples
from vvhand_core.detector.ops import DZ_SCALE_MM as NET_DZ_SCALE_MM
from vvhand_core.detector.ops import (  # noqa: F401 - re-exported: the refiner's conventions
    PATCH,
    REF_PERCENTILE,
    REF_RADIUS,
    UV_SCALE_PX,
    DetectorConfig,
    RefineConfig,
    apply_offsets,
    patch_at,
    surface_depth_mm,
)
from vvhand_core.detector.ops import REFINE_DZ_SCALE_MM as DZ_SCALE_MM


class RefineNet(nn.Module):
    """(B, C, PATCH, PATCH) patches -> (B, 3) offsets (du, dv, dz), see the module doc.

    C = ``self.config.channels`` (3, or 4 with ``border``).
    """

    def __init__(self, width: int = 16, border: bool = False) -> None:
        super().__init__()
        self.config = RefineConfig(width, border)
        c = width

        def conv(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.features = nn.Sequential(conv(self.config.channels, c, 1), conv(c, 2 * c, 2),
                                      conv(2 * c, 2 * c, 2), conv(2 * c, 4 * c, 2),
                                      conv(4 * c, 4 * c, 2))
        self.head = nn.Linear(4 * c * 9, 3)

    def forward(self, x: Tensor) -> Tensor:
        """Offsets (B, 3)."""
        return self.head(self.features(x).flatten(1))


def add_border_input(net: RefineNet) -> RefineNet:
    """A copy of a refiner without the border channel, with it, computing the same function.

    The first convolution's weights for the new channel are zero, so the copy's offsets
    equal ``net``'s until training uses the channel. ValueError when ``net`` has it.
    """
    if net.config.border:
        raise ValueError("add_border_input: the refiner already has the border channel")
    out = RefineNet(net.config.width, border=True)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    w = state["features.0.0.weight"]
    state["features.0.0.weight"] = torch.cat([w, torch.zeros_like(w[:, :1])], dim=1)
    out.load_state_dict(state)
    return out.train(net.training)


def refiner_sample(depth_mm: np.ndarray, row: np.ndarray, cfg: DetectorConfig,
                   rng: np.random.Generator, jitter_px: float = 10.0,
                   min_depth_mm: float = 200.0, max_depth_mm: float = 1200.0,
                   border: bool = False, size: tuple[int, int] | None = None):
    """One training sample of the refiner for one hand, or None (no depth to use).

    ``depth_mm`` (H, W) canonical depth of an example; ``row`` its hand's
    :class:`~vvhand_core.detector.data.Examples` row. Mirrored half of the time (drawn
    from ``rng``); the patch centres on the hand's heat point moved by a uniform
    +-``jitter_px``. ``size``: the example's image (height, width) at the top left of
    ``depth_mm`` (the rest padding; None: all of it), for the ``border`` channel.
    Returns (patch (C, PATCH, PATCH), C = 4 with ``border``, else 3,
    offsets target [du, dv, dz],
    patch centre (u0, v0), true centre (u, v)), the last two in the mirrored image's
    pixels when mirrored.
    """
    u, v, hu, hv = (float(x) for x in row[[0, 1, 5, 6]])
    z_s = surface_depth_mm(depth_mm, hu, hv, cfg, min_depth_mm, max_depth_mm)
    if z_s is None:
        return None
    z_gt = z_s + float(row[2]) * NET_DZ_SCALE_MM
    d = depth_mm
    ih, iw = size or d.shape
    box = (0, 0, iw, ih)
    if rng.random() < 0.5:
        d = d[:, ::-1]
        u, hu = d.shape[1] - 1 - u, d.shape[1] - 1 - hu
        box = (d.shape[1] - iw, 0, d.shape[1], ih)
    u0 = int(round(hu + rng.uniform(-jitter_px, jitter_px)))
    v0 = int(round(hv + rng.uniform(-jitter_px, jitter_px)))
    got = patch_at(d, u0, v0, min_depth_mm, max_depth_mm, border, box)
    if got is None:
        return None
    x, z_ref = got
    return (x, [(u - u0) / UV_SCALE_PX, (v - v0) / UV_SCALE_PX, (z_gt - z_ref) / DZ_SCALE_MM],
            (u0, v0), (u, v))


def train_refiner(net: RefineNet, ex: Examples, cfg: DetectorConfig, steps: int,
                  batch_size: int = 64, lr: float = 3e-3, jitter_px: float = 10.0,
                  seed: int = 0, min_depth_mm: float = 200.0, max_depth_mm: float = 1200.0,
                  progress=None, frame_weights: np.ndarray | None = None,
                  device: str = "cpu") -> list[float]:
    """Train on detector examples (their hands; ``cfg``: the config they used).

    Each sample: a frame (uniformly among those with a hand, or in proportion to
    ``frame_weights`` (N,) when given; ValueError when no frame with a hand has weight > 0),
    the centre of one of its hands (drawn uniformly among those with
    a depth target) moved by a uniform +-jitter_px (the detector's typical error and
    more), mirrored half of the time. L1 on the offsets. The centre's depth is the
    examples' surface depth plus their dz target. For a hand centred outside the image the
    patch centres on its heat point (at the border, where the heat-map network puts its
    peak) and the offsets lead to the true centre outside
    (:mod:`vvhand_core.detector.offimage`). ``device``: where the network trains (the
    patches are cut on the CPU); it is back on the CPU, in eval mode, at the end.
    """
    depth, hands = ex.depth, ex.hands
    border = net.config.border
    if border and ex.sizes is None:
        raise ValueError("a refiner with the border channel needs the examples' image sizes "
                         "(Examples.sizes; detector.data.frame_sizes remakes them)")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    usable = (hands[:, :, 4] > 0.5) & np.isfinite(hands[:, :, 2])
    ok = np.flatnonzero(usable.any(axis=1))
    cdf = None
    if frame_weights is not None:
        w = np.asarray(frame_weights, np.float64)[ok]
        if w.sum() <= 0:
            raise ValueError("frame_weights: no frame with a hand has a weight > 0")
        cdf = np.cumsum(w) / w.sum()
    dev = torch.device(device)
    net.to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    losses = []
    net.train()
    for step in range(steps):
        xs, ys = [], []
        while len(xs) < batch_size:
            i = int(ok[rng.integers(ok.size) if cdf is None else
                       min(int(np.searchsorted(cdf, rng.random(), side="right")), ok.size - 1)])
            ks = np.flatnonzero(usable[i])
            k = int(ks[0] if ks.size == 1 else rng.choice(ks))
            got = refiner_sample(depth[i].astype(np.float32), hands[i, k], cfg, rng, jitter_px,
                                 min_depth_mm, max_depth_mm, border,
                                 None if ex.sizes is None else tuple(ex.sizes[i]))
            if got is not None:
                xs.append(got[0])
                ys.append(got[1])
        pred = net(torch.from_numpy(np.stack(xs)).to(dev))
        loss = (pred - torch.tensor(ys, dtype=torch.float32, device=dev)).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress:
            progress(step + 1, losses[-1])
    net.cpu().eval()
    return losses
