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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vvhand_core.camera import Intrinsics

STRIDE = 4
DZ_SCALE_MM = 100.0
NEAR_PERCENTILE = 1.0
REL_DEPTH_MM = 300.0


@dataclass
class DetectorConfig:
    """Shape of the detector network and its canonical camera.

    ``focal_px``: canonical focal length; ``width``: channels of the first stage (the
    second has 2x, the third 4x); ``surface_radius``: half-size in canonical pixels of the
    window whose ``surface_percentile`` depth is the reference for ``dz``.
    """

    focal_px: float = 120.0
    width: int = 12
    surface_radius: int = 6
    surface_percentile: float = 5.0

    def __post_init__(self) -> None:
        """Validate."""
        if self.focal_px <= 0 or self.width < 1 or self.surface_radius < 1:
            raise ValueError("focal_px > 0, width >= 1 and surface_radius >= 1 are required")
        if not 0 <= self.surface_percentile <= 100:
            raise ValueError("surface_percentile must be in [0, 100]")

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def canonical_camera(intr: Intrinsics, focal_px: float) -> Intrinsics:
    """The camera of the canonical image of a frame taken with ``intr``."""
    return intr.scaled(focal_px / intr.fx, focal_px / intr.fy)


def canonical_index(intr: Intrinsics, focal_px: float, shape: tuple[int, ...]
                    ) -> tuple[np.ndarray, Intrinsics]:
    """Where the canonical image samples a depth image of ``shape`` taken with ``intr``.

    Returns (flat indices (H', W') into the depth image, row-major) and the canonical
    camera; ``canonical_depth`` takes them to skip this work for every frame of a camera.
    """
    cam = canonical_camera(intr, focal_px)
    sx, sy = cam.fx / intr.fx, cam.fy / intr.fy
    cols = np.clip(np.rint((np.arange(cam.width) + 0.5) / sx - 0.5), 0, intr.width - 1)
    rows = np.clip(np.rint((np.arange(cam.height) + 0.5) / sy - 0.5), 0, intr.height - 1)
    h, w = shape
    rows, cols = rows.astype(np.intp), cols.astype(np.intp)
    if rows[-1] >= h or cols[-1] >= w:
        raise IndexError(f"depth image {h}x{w} is smaller than its camera's "
                         f"{intr.height}x{intr.width}")
    return rows[:, None] * w + cols[None, :], cam


def canonical_depth(depth_mm: np.ndarray, intr: Intrinsics, focal_px: float,
                    index: tuple[np.ndarray, Intrinsics] | None = None
                    ) -> tuple[np.ndarray, Intrinsics]:
    """Nearest-neighbour resample of depth (H, W) mm to the canonical focal length.

    Returns (depth (H', W') float32 mm, 0 = invalid; NaN becomes 0) and its camera.
    ``index``: ``canonical_index`` of this camera and image shape (computed when None).
    """
    depth = np.asarray(depth_mm)
    flat, cam = index or canonical_index(intr, focal_px, depth.shape)
    d = depth.ravel().take(flat).astype(np.float32, copy=False)
    if depth.dtype.kind not in "biu" and not np.isfinite(d).all():
        d = np.where(np.isfinite(d), d, np.float32(0))
    return d, cam


def percentile_linear(vals: np.ndarray, q: float) -> float:
    """``float(np.percentile(vals, q))`` of a non-empty 1-D array of finite values, faster.

    numpy's default ("linear") method step by step: ``np.partition`` at the two order
    statistics around the virtual index (n - 1) q / 100, then numpy's interpolation in
    the array's dtype, so the result is the same number without np.percentile's
    overhead (about 0.1 ms a call). ``vals`` is not changed.
    """
    n = vals.size
    vi = (n - 1) * (q / 100.0)
    if vi >= n - 1:
        return float(vals.max())
    lo = int(np.floor(vi))
    part = np.partition(vals, (lo, lo + 1))
    a, b = part[lo], part[lo + 1]
    t = vi - lo
    diff = b - a
    return float(b - diff * (1 - t)) if t >= 0.5 else float(a + diff * t)


def nearest_surface_mm(depth_mm: np.ndarray, min_depth_mm: float, max_depth_mm: float
                       ) -> float:
    """z_near of a canonical depth image: a low percentile of its valid depth (0 if none)."""
    d = np.asarray(depth_mm)
    vals = d[(d >= min_depth_mm) & (d <= max_depth_mm)]
    return percentile_linear(vals, NEAR_PERCENTILE) if vals.size else 0.0


def encode_input(depth_mm: np.ndarray, min_depth_mm: float, max_depth_mm: float,
                 near_mm: float | None = None) -> np.ndarray:
    """Network input (3, H, W) float32 from a canonical depth (H, W) mm (see module doc).

    ``near_mm``: z_near of the whole canonical image when ``depth_mm`` is a crop of it
    (training); None computes it from ``depth_mm``. Written in place into one array, in
    float32 throughout.
    """
    d = np.asarray(depth_mm, dtype=np.float32)
    valid = (d >= min_depth_mm) & (d <= max_depth_mm)
    if near_mm is None:
        vals = d[valid]
        near = percentile_linear(vals, NEAR_PERCENTILE) if vals.size else 0.0
    else:
        near = float(near_mm)
    x = np.zeros((3, *d.shape), np.float32)
    x[0] = valid
    z, rel = x[1], x[2]
    np.copyto(z, d, where=valid)  # 0 where invalid
    np.subtract(z, near, out=rel)
    np.divide(rel, REL_DEPTH_MM, out=rel)
    np.clip(rel, 0.0, 3.0, out=rel)
    if near < 0:  # else (0 - near) / 300 is already clipped to 0 where invalid
        rel[~valid] = 0.0
    np.divide(z, np.float32(1000.0), out=z)
    return x


def surface_depth_mm(depth_mm: np.ndarray, u: float, v: float, cfg: DetectorConfig,
                     min_depth_mm: float, max_depth_mm: float) -> float | None:
    """Reference depth near canonical pixel (u, v): a low percentile of the valid depth.

    The window is +-``cfg.surface_radius`` pixels; None when it holds no valid depth.
    """
    h, w = depth_mm.shape
    r = cfg.surface_radius
    iu, iv = int(round(u)), int(round(v))
    win = depth_mm[max(iv - r, 0):min(iv + r + 1, h), max(iu - r, 0):min(iu + r + 1, w)]
    vals = win[(win >= min_depth_mm) & (win <= max_depth_mm)]
    if vals.size == 0:
        return None
    return percentile_linear(vals, cfg.surface_percentile)


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


@dataclass
class Peak:
    """One detected hand centre candidate in the canonical image."""

    score: float
    u: float  # canonical pixels
    v: float
    dz: float  # (z_centre - z_surface) / DZ_SCALE_MM


def find_peaks(out: Tensor | np.ndarray, threshold: float, max_peaks: int = 5) -> list[Peak]:
    """Local maxima (3x3) of the heat-map above ``threshold``, best first.

    ``out`` (2, H4, W4) network output of one frame. Each peak's position is the
    score-weighted mean over its 3x3 neighbourhood, in canonical pixels. The sigmoid and
    the order of equal scores are torch's, the rest numpy: on these small arrays torch's
    per-call overhead dominated.
    """
    out = out.detach().cpu().numpy() if isinstance(out, Tensor) else np.asarray(out)
    heat = torch.sigmoid(torch.from_numpy(np.ascontiguousarray(out[0]))).numpy()
    h4, w4 = heat.shape
    pad = np.full((h4 + 2, w4 + 2), -np.inf, np.float32)  # 3x3 max pool, -inf outside
    pad[1:-1, 1:-1] = heat
    rows = np.maximum(np.maximum(pad[:, :-2], pad[:, 1:-1]), pad[:, 2:])
    pooled = np.maximum(np.maximum(rows[:-2], rows[1:-1]), rows[2:])
    ii, jj = np.nonzero((heat == pooled) & (heat >= threshold))
    if ii.size == 0:
        return []
    scores = heat[ii, jj]
    if np.unique(scores).size == scores.size:  # distinct scores: one order
        order = np.argsort(-scores)[:max_peaks]
    else:  # equal scores: in torch's order (the order of the torch code this replaced)
        order = torch.argsort(torch.from_numpy(scores), descending=True)[:max_peaks]
    peaks = []
    for k in order.tolist():
        i, j = int(ii[k]), int(jj[k])
        i0, i1, j0, j1 = max(i - 1, 0), min(i + 2, h4), max(j - 1, 0), min(j + 2, w4)
        win = heat[i0:i1, j0:j1]
        tot = win.sum()
        v = float((win * np.arange(i0, i1, dtype=np.float32)[:, None]).sum() / tot) * STRIDE
        u = float((win * np.arange(j0, j1, dtype=np.float32)[None, :]).sum() / tot) * STRIDE
        peaks.append(Peak(float(scores[k]), u, v, float(out[1, i, j])))
    return peaks
