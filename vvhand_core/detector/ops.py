"""The hand detector's numpy steps around its two networks (no torch).

Everything :class:`~vvhand_core.detector.localiser.DetectorLocaliser` does besides running
the heat-map network and the refiner, so that the detector runs on an onnxruntime-only
install: the canonical camera and its resampling, the heat-map network's input encoding,
surface depths, heat-map peaks, and the refiner's patches and offsets. The conventions
are documented where they are used for training: :mod:`vvhand_core.detector.net` (canonical
image, input, output at stride 4) and :mod:`vvhand_core.detector.refine` (patches,
offsets); both re-export these names.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

import numpy as np

from vvhand_core.camera import Intrinsics

# heat-map network (detector.net)
STRIDE = 4
DZ_SCALE_MM = 100.0
NEAR_PERCENTILE = 1.0
REL_DEPTH_MM = 300.0
# refiner (detector.refine)
PATCH = 48
UV_SCALE_PX = 8.0
REFINE_DZ_SCALE_MM = 100.0
REF_RADIUS = 8
REF_PERCENTILE = 20.0
# the canonical (working) image is at most this many times the input's size per axis: never
# larger than the input (at 2x, a 158 deg camera's first frame grew the node by 117 MB)
MAX_UPSCALE = 1.0


@dataclass
class DetectorConfig:
    """Shape of the detector network and its canonical camera.

    ``focal_px``: canonical focal length; ``width``: channels of the first stage (the
    second has 2x, the third 4x); ``context_blocks``: blocks of a stride-16 context stage
    (0: none, the network of the weights shipped before it existed); ``surface_radius``:
    half-size in canonical pixels of the window whose ``surface_percentile`` depth is the
    reference for ``dz``. :data:`NETWORK_FIELDS` shape only the network; the others also
    shape its training examples.
    """

    focal_px: float = 120.0
    width: int = 12
    surface_radius: int = 6
    surface_percentile: float = 5.0
    context_blocks: int = 0

    def __post_init__(self) -> None:
        """Validate."""
        if self.focal_px <= 0 or self.width < 1 or self.surface_radius < 1:
            raise ValueError("focal_px > 0, width >= 1 and surface_radius >= 1 are required")
        if self.context_blocks < 0:
            raise ValueError("context_blocks must be >= 0")
        if not 0 <= self.surface_percentile <= 100:
            raise ValueError("surface_percentile must be in [0, 100]")

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


# the DetectorConfig fields that shape only the heat-map network, not its training examples
NETWORK_FIELDS = ("width", "context_blocks")


def canonical_camera(intr: Intrinsics, focal_px: float) -> Intrinsics:
    """The camera of the canonical image of a frame taken with ``intr``.

    Focal lengths ``focal_px`` (the canonical image's size follows the field of view), but
    never more than MAX_UPSCALE times the input image's own size per axis: a focal length
    below ``focal_px / MAX_UPSCALE`` (a wide field of view at a small image size) scales
    both axes down alike, so the working image is never larger than the input (its hands
    then look smaller than the detector was trained on).
    """
    sx, sy = focal_px / intr.fx, focal_px / intr.fy
    shrink = min(1.0, MAX_UPSCALE / max(sx, sy))
    return intr.scaled(sx * shrink, sy * shrink)


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


@dataclass(frozen=True)
class RefineConfig:
    """Shape of the refiner (:class:`~vvhand_core.detector.refine.RefineNet`).

    ``width``: channels of its first stage; ``border``: a fourth input channel, 1 where
    the patch pixel lies inside the image and 0 outside it, so that the network can tell
    the image border (a hand may go on beyond it) from depth the sensor did not measure
    (:func:`patch_at`). Weights saved before this config existed are (16, False).
    """

    width: int = 16
    border: bool = False

    def __post_init__(self) -> None:
        """Validate."""
        if self.width < 1:
            raise ValueError("RefineConfig.width must be >= 1")

    @property
    def channels(self) -> int:
        """Input channels of the patches: 3, or 4 with ``border``."""
        return 4 if self.border else 3

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def patch_at(depth_mm: np.ndarray, u0: int, v0: int, min_depth_mm: float,
             max_depth_mm: float, border: bool = False,
             image_box: tuple[int, int, int, int] | None = None
             ) -> tuple[np.ndarray, float] | None:
    """Refiner input (C, PATCH, PATCH) centred on integer pixel (u0, v0), and z_ref (mm).

    Channels: valid mask, (z - z_ref) / 100 mm clipped to [-3, 3] (0 where invalid),
    z_ref / 1000 mm, and with ``border`` (C = 4) 1 inside the image / 0 outside it.
    ``image_box`` (x0, y0, x1, y1), half-open: where the image lies in ``depth_mm``
    (training examples are padded); None: all of it. Outside the array counts as
    invalid. None when the central window has no valid depth.
    """
    h, w = depth_mm.shape
    half = PATCH // 2
    out = np.zeros((PATCH, PATCH), np.float32)
    y0, x0 = v0 - half, u0 - half
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + PATCH, h), min(x0 + PATCH, w)
    if ys < ye and xs < xe:
        out[ys - y0:ye - y0, xs - x0:xe - x0] = depth_mm[ys:ye, xs:xe]
    valid = (out >= min_depth_mm) & (out <= max_depth_mm)
    core = slice(half - REF_RADIUS, half + REF_RADIUS + 1)
    vals = out[core, core][valid[core, core]]
    if vals.size == 0:
        return None
    z_ref = percentile_linear(vals, REF_PERCENTILE)
    x = np.empty((4 if border else 3, PATCH, PATCH), np.float32)  # in place, float32
    x[0] = valid
    rel = x[1]
    np.subtract(out, z_ref, out=rel)
    np.divide(rel, 100.0, out=rel)
    np.clip(rel, -3.0, 3.0, out=rel)
    rel[~valid] = 0.0
    x[2] = z_ref / 1000.0
    if border:  # the part of the patch that lies inside the image
        bx0, by0, bx1, by1 = image_box or (0, 0, w, h)
        iy0, ix0 = max(y0, by0), max(x0, bx0)
        iy1, ix1 = min(y0 + PATCH, by1), min(x0 + PATCH, bx1)
        x[3] = 0.0
        if iy0 < iy1 and ix0 < ix1:
            x[3, iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = 1.0
    return x, z_ref


def apply_offsets(u0: int, v0: int, z_ref: float, offsets: np.ndarray
                  ) -> tuple[float, float, float]:
    """Canonical (u, v) and depth z (mm) of the centre from a patch's predicted offsets (3,)."""
    du, dv, dz = (float(x) for x in offsets)
    return u0 + du * UV_SCALE_PX, v0 + dv * UV_SCALE_PX, z_ref + dz * REFINE_DZ_SCALE_MM


@dataclass
class Peak:
    """One detected hand centre candidate in the canonical image."""

    score: float
    u: float  # canonical pixels
    v: float
    dz: float  # (z_centre - z_surface) / DZ_SCALE_MM


def _torch():
    """The torch module when this process has imported it already, else None."""
    return sys.modules.get("torch")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """float32 sigmoid: torch's where torch is loaded, else numpy's (float64, rounded).

    The two differ by at most 2 float32 ulps (1.2e-7): the heat-map scores, and through
    them the peaks' sub-pixel positions, of a process without torch (an onnxruntime-only
    install) differ from a torch process's by that much.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    torch = _torch()
    if torch is not None:
        return torch.sigmoid(torch.from_numpy(x)).numpy()
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def argsort_descending(scores: np.ndarray) -> np.ndarray:
    """Indices of ``scores`` (1-D) best first.

    Distinct scores have one order. Equal scores: torch's order where torch is loaded (the
    order of the torch code this replaced), else numpy's stable order (first index first).
    """
    if np.unique(scores).size == scores.size:
        return np.argsort(-scores)
    torch = _torch()
    if torch is not None:
        return torch.argsort(torch.from_numpy(scores), descending=True).numpy()
    return np.argsort(-scores, kind="stable")


def find_peaks(out: np.ndarray, threshold: float, max_peaks: int = 5) -> list[Peak]:
    """Local maxima (3x3) of the heat-map above ``threshold``, best first.

    ``out`` (2, H4, W4) network output of one frame (numpy, or a torch tensor). Each
    peak's position is the score-weighted mean over its 3x3 neighbourhood, in canonical
    pixels. The sigmoid and the order of equal scores: :func:`sigmoid`,
    :func:`argsort_descending`; the rest numpy (on these small arrays torch's per-call
    overhead dominated).
    """
    out = out.detach().cpu().numpy() if hasattr(out, "detach") else np.asarray(out)
    heat = sigmoid(out[0])
    h4, w4 = heat.shape
    pad = np.full((h4 + 2, w4 + 2), -np.inf, np.float32)  # 3x3 max pool, -inf outside
    pad[1:-1, 1:-1] = heat
    rows = np.maximum(np.maximum(pad[:, :-2], pad[:, 1:-1]), pad[:, 2:])
    pooled = np.maximum(np.maximum(rows[:-2], rows[1:-1]), rows[2:])
    ii, jj = np.nonzero((heat == pooled) & (heat >= threshold))
    if ii.size == 0:
        return []
    scores = heat[ii, jj]
    order = argsort_descending(scores)[:max_peaks]
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
