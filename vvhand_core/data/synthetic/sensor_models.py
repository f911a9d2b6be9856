"""Depth-camera models of scene version 2: structured light and time of flight.

Both turn a clean depth (H, W) mm (0 = nothing) into what such a camera returns, drawing
every random effect from ``rng`` in a fixed order:

* structured light (RealSense D4xx, Kinect v1, Orbbec): depth from disparity
  D = f b / z (focal length f px, baseline b mm). Projector shadows: background pixels
  beside a nearer surface that the projector cannot see (on the side away from the
  projector, D_fg - D_bg pixels wide) return nothing; more dropouts at depth edges;
  disparity noise and quantisation to ``disparity_step_px`` (depth step ~ z^2 step / (f b),
  so the step grows with the square of the distance); holes where the surface is grazing
  (angle between its normal and the viewing ray above ``grazing_max_deg``).
* time of flight (Azure Kinect, Kinect v2, Helios): flying pixels at depth edges (the
  pixel mixes the returns of both surfaces: a depth between the nearest and the farthest
  of it and its 4 neighbours), fewer dropouts at edges,
  a smooth positive multipath bias, noise growing with distance, grazing holes.

Both: nothing nearer than ``min_range_mm`` or farther than ``max_range_mm``, a sprinkle
of random dropouts, whole millimetres (uint16) when quantised. ``ideal``: exact depth
within the range (``vvhand synth --clean``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtri

from vvhand_core.camera import Intrinsics

SENSORS = ("structured_light", "tof")
SENSOR_CHOICES = ("random", *SENSORS, "ideal")


@dataclass
class SensorModel:
    """One frame's camera model (see the module doc). Ranges and jumps in mm."""

    kind: str
    min_range_mm: float
    max_range_mm: float
    edge_jump_mm: float = 20.0
    edge_dropout: float = 0.0
    random_dropout: float = 0.0
    grazing_max_deg: float = 90.0
    baseline_mm: float = 0.0  # structured light
    disparity_step_px: float = 0.0
    disparity_noise_px: float = 0.0
    projector_side: int = 1  # +1: projector right of the camera (shadows left of objects)
    noise_mm_at_1m: float = 0.0  # time of flight
    flying_prob: float = 0.0
    multipath_mm: float = 0.0

    def to_meta(self) -> dict:
        """JSON-ready parameters (exact: they reproduce the model)."""
        return {k: float(v) if isinstance(v, float) else v for k, v in asdict(self).items()}


def sample_sensor(rng: np.random.Generator, kind: str, max_range_mm: float) -> SensorModel:
    """Draw a model of ``kind`` (one of ``SENSOR_CHOICES``; random = either, 50/50)."""
    if kind not in SENSOR_CHOICES:
        raise ValueError(f"sensor must be one of {SENSOR_CHOICES}, got {kind!r}")
    if kind == "random":
        kind = SENSORS[int(rng.random() < 0.5)]
    u = rng.uniform
    if kind == "ideal":
        return SensorModel("ideal", 1.0, max_range_mm)
    if kind == "structured_light":
        return SensorModel(
            kind, u(200.0, 300.0), max_range_mm, edge_dropout=u(0.3, 0.8),
            random_dropout=u(0.001, 0.005), grazing_max_deg=u(72.0, 80.0),
            baseline_mm=u(40.0, 75.0), disparity_step_px=u(0.06, 0.125),
            disparity_noise_px=u(0.02, 0.06), projector_side=1 if rng.random() < 0.5 else -1,
        )  # fmt: skip
    return SensorModel(
        kind, u(150.0, 280.0), max_range_mm, edge_dropout=u(0.05, 0.3),
        random_dropout=u(0.001, 0.005), grazing_max_deg=u(78.0, 85.0),
        noise_mm_at_1m=u(1.0, 3.0), flying_prob=u(0.4, 0.9), multipath_mm=u(0.0, 8.0),
    )  # fmt: skip


def grazing_mask(depth_mm: np.ndarray, intr: Intrinsics, max_deg: float, jump_mm: float,
                 stride: int = 2) -> np.ndarray:  # fmt: skip
    """(H, W) bool: surfaces seen at more than ``max_deg`` from their normal.

    Normal from central differences of the depth: with g_u = fx dz/du, g_v = fy dz/dv
    and the ray r = (a, b, 1), a = (u - cx) / fx, the normal is (-g_u, -g_v,
    a g_u + b g_v + z) and cos(angle) = z / (|n| |r|). Evaluated on every ``stride``-th
    pixel (neighbours ``stride`` apart) and spread over its stride x stride block, so
    holes come in blocks (4x cheaper at stride 2). Pixels whose neighbours are missing or
    whose depth profile bends by more than ``jump_mm`` per stride (a depth edge rather
    than a steep surface) are left to the edge models (False).
    """
    d = depth_mm.astype(np.float32, copy=False)
    h, w = d.shape
    k = stride
    g = d[::k, ::k]
    gh, gw = g.shape
    out = np.zeros((gh, gw), dtype=bool)
    if gh < 3 or gw < 3:
        return np.zeros((h, w), dtype=bool)
    z = g[1:-1, 1:-1]
    left, right, up, down = g[1:-1, :-2], g[1:-1, 2:], g[:-2, 1:-1], g[2:, 1:-1]
    du, dv = right - left, down - up
    ok = (z > 0) & (left > 0) & (right > 0) & (up > 0) & (down > 0)
    # a depth edge bends the profile (one side flat, the other jumps); a steep surface
    # does not: compare the second difference, not the slope
    lim = np.float32(k * jump_mm)
    z2 = z + z
    ok &= (np.abs(right + left - z2) < lim) & (np.abs(down + up - z2) < lim)
    gu = np.float32(0.5 * intr.fx / k) * du
    gv = np.float32(0.5 * intr.fy / k) * dv
    a = ((np.arange(1, gw - 1, dtype=np.float32) * k - np.float32(intr.cx)) / np.float32(intr.fx))
    b = ((np.arange(1, gh - 1, dtype=np.float32) * k - np.float32(intr.cy)) / np.float32(intr.fy))
    nz = a[None] * gu + b[:, None] * gv + z
    n2 = gu * gu + gv * gv + nz * nz
    r2 = (a * a)[None] + (b * b + np.float32(1.0))[:, None]
    cos_max = np.float32(np.cos(np.radians(max_deg)))
    out[1:-1, 1:-1] = ok & (z * z < cos_max * cos_max * n2 * r2)
    if k == 1:
        return out
    return np.repeat(np.repeat(out, k, axis=0), k, axis=1)[:h, :w]


def projector_shadow(disparity_px: np.ndarray, side: int) -> np.ndarray:
    """(H, W) bool: valid pixels the projector cannot see (structured-light shadows).

    disparity_px (H, W) = f b / z (0 = no surface). With the projector to the right
    (side +1) of the camera, pixel u lies on projector column u - D(u); it is shadowed
    when a pixel to its right lies on a projector column more than half a pixel to the
    left (a nearer surface blocks the projector's ray): shadows fall left of nearer
    surfaces, D_near - D_far pixels wide. side -1 mirrors this.
    """
    disp = disparity_px[:, ::-1] if side < 0 else disparity_px
    valid = disp > 0
    proj = np.arange(disp.shape[1], dtype=np.float32)[None, :] - disp
    np.copyto(proj, np.float32(np.inf), where=~valid)
    runmin = np.minimum.accumulate(proj[:, ::-1], axis=1)[:, ::-1]
    shadow = np.zeros_like(valid)
    shadow[:, :-1] = valid[:, :-1] & (proj[:, :-1] > runmin[:, 1:] + np.float32(0.5))
    return shadow[:, ::-1] if side < 0 else shadow


def depth_edges(depth_mm: np.ndarray, jump_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Depth edges of the valid pixels: (at_jump, at_hole) (H, W) bool.

    at_jump: a valid 4-neighbour more than ``jump_mm`` away; at_hole: a missing one.
    """
    d = depth_mm.astype(np.float32, copy=False)
    valid = d > 0
    at_jump = np.zeros_like(valid)
    at_hole = np.zeros_like(valid)
    for axis in (0, 1):
        lo = (slice(None, -1), slice(None)) if axis == 0 else (slice(None), slice(None, -1))
        hi = (slice(1, None), slice(None)) if axis == 0 else (slice(None), slice(1, None))
        big = (np.abs(d[hi] - d[lo]) > np.float32(jump_mm)) & valid[hi] & valid[lo]
        at_jump[hi] |= big
        at_jump[lo] |= big
        one = valid[hi] ^ valid[lo]
        at_hole[hi] |= one
        at_hole[lo] |= one
    return at_jump, at_hole & valid


def neighbour_range(depth_mm: np.ndarray, flat_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest and farthest valid depth, (near, far) (N,) float32, around some pixels.

    Over each of the (valid) pixels ``flat_idx`` (N,) and its 4 neighbours in the image.
    """
    d = depth_mm.astype(np.float32, copy=False)
    h, w = d.shape
    flat = d.reshape(-1)
    near = flat[flat_idx].copy()
    far = near.copy()
    row, col = np.divmod(flat_idx, w)
    for ok, step in ((col > 0, -1), (col < w - 1, 1), (row > 0, -w), (row < h - 1, w)):
        nb = flat[np.where(ok, flat_idx + step, flat_idx)]
        np.minimum(near, np.where(nb > 0, nb, near), out=near)
        np.maximum(far, nb, out=far)
    return near, far


def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: tuple[int, int] = (3, 4)):
    """(H, W) float32 smooth random field >= 0: |N(0, 1)| on a coarse grid, bilinear."""
    coarse = np.abs(rng.standard_normal(cells)).astype(np.float32)
    wy = np.stack([np.interp(np.linspace(0, cells[0] - 1, h), np.arange(cells[0]), e)
                   for e in np.eye(cells[0])], axis=1).astype(np.float32)  # fmt: skip
    wx = np.stack([np.interp(np.linspace(0, cells[1] - 1, w), np.arange(cells[1]), e)
                   for e in np.eye(cells[1])], axis=0).astype(np.float32)  # fmt: skip
    return wy @ coarse @ wx


def _uniform16(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count,) uint16 uniform over 0..65535 (much cheaper than float draws)."""
    return rng.integers(0, 65536, count, dtype=np.uint16)


# standard normal quantiles at (k + 0.5) / 65536: a uint16 draw indexes a N(0, 1) sample
_NORMAL_TABLE = ndtri((np.arange(65536) + 0.5) / 65536).astype(np.float32)


def _normal(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count,) float32 N(0, 1) samples (quantised to 2^16 levels, tails cut at 4.3)."""
    return _NORMAL_TABLE[_uniform16(rng, count)]


def _pick(rng: np.random.Generator, count: int, prob: float) -> np.ndarray:
    """Indices into ``count`` items, each picked with probability ``prob``."""
    if count == 0 or prob <= 0:
        return np.zeros(0, dtype=np.intp)
    if prob >= 1:
        return np.arange(count)
    return np.flatnonzero(_uniform16(rng, count) < min(int(round(prob * 65536)), 65535))


def apply_sensor(
    depth_mm: np.ndarray,
    intr: Intrinsics,
    model: SensorModel,
    rng: np.random.Generator,
    quantize: bool = True,
) -> np.ndarray:
    """What ``model`` returns for a clean depth (H, W) mm.

    uint16 when ``quantize`` else float32, 0 = no return. A pure function of the inputs
    and the rng state.
    """
    d = depth_mm.astype(np.float32)
    h, w = d.shape
    valid = d > 0
    flat_valid = valid.reshape(-1)
    out = d.reshape(-1).copy()
    drop = np.zeros(h * w, dtype=bool)
    if model.kind != "ideal":
        stride = max(1, round(w / 400))  # grazing holes in blocks of ~1/400 of the width
        drop |= grazing_mask(d, intr, model.grazing_max_deg, model.edge_jump_mm,
                             stride).reshape(-1)  # fmt: skip
        at_jump, at_hole = depth_edges(d, model.edge_jump_mm)
        e_idx = np.flatnonzero(at_jump | at_hole)
        drop[e_idx[_pick(rng, e_idx.size, model.edge_dropout)]] = True
    idx = np.flatnonzero(flat_valid)
    if model.kind == "structured_light":
        fb = np.float32(intr.fx * model.baseline_mm)
        disp = np.zeros((h, w), dtype=np.float32)
        np.divide(fb, d, out=disp, where=valid)
        drop |= projector_shadow(disp, model.projector_side).reshape(-1)
        noisy = disp.reshape(-1)[idx] + _normal(rng, idx.size) * np.float32(
            model.disparity_noise_px)
        step = np.float32(model.disparity_step_px)
        out[idx] = fb / (np.maximum(np.rint(noisy / step), np.float32(1.0)) * step)
    elif model.kind == "tof":
        j_idx = np.flatnonzero(at_jump)
        fly = j_idx[_pick(rng, j_idx.size, model.flying_prob)]
        near, far = neighbour_range(d, fly)
        alpha = rng.uniform(0.15, 0.85, fly.size).astype(np.float32)
        out[fly] = near + alpha * (far - near)
        bias = _smooth_field(rng, h, w).reshape(-1)[idx] * np.float32(model.multipath_mm)
        z = out[idx]
        noise = _normal(rng, idx.size) * np.float32(model.noise_mm_at_1m)
        out[idx] = z + bias + noise * (z / np.float32(1000.0))
    if model.random_dropout > 0:
        drop[idx[_pick(rng, idx.size, model.random_dropout)]] = True
    drop |= out < model.min_range_mm  # missing pixels too (0)
    drop |= out > model.max_range_mm
    out[drop] = 0.0
    out = out.reshape(h, w)
    if quantize:  # 0 <= out <= max_range_mm: no clipping needed
        return np.rint(out, out=out).astype(np.uint16)
    return out
