"""Training examples for the hand detector: canonical depth images with their hand centres.

``build_examples`` renders frames of one or more synthetic datasets (in parallel worker
processes; frame i depends only on (seed, i)) and keeps, per frame, the canonical depth
(uint16 mm, zero-padded to one size) and up to ``MAX_HANDS`` hand centres in canonical
pixels with the ``dz`` target: the labelled hands, and v3 hands centred outside the image
that reach into it (:mod:`vvhand_core.detector.offimage`: their heat-map target is the
centre clamped into the image, the refiner's the true centre). A source whose dict carries
``"hand_free": True`` renders its scenes without hands (``generator.scene(i,
hands=False)``, scene versions 2 and 3): negatives. ``TrainingCrops`` cuts random
fixed-size crops with their stride-4 heat-map targets, mirrored half of the time.

The examples' file (save, load, reuse as the first sources of a larger set):
:mod:`vvhand_core.detector.examples_file`.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from vvhand_core.camera import Intrinsics, project_np
from vvhand_core.data.base import DepthFrame
from vvhand_core.detector.net import (
    DZ_SCALE_MM,
    STRIDE,
    DetectorConfig,
    canonical_camera,
    canonical_depth,
    encode_input,
    nearest_surface_mm,
    surface_depth_mm,
)
from vvhand_core.detector.offimage import (
    heat_point,
    reaching_centres,
    spec_hands,
)

MAX_HANDS = 3
COLUMNS = 7  # u, v, dz, sigma_cells, present, u_heat, v_heat
TARGETS = 2  # 1: five columns, labelled hands inside the canonical image only
HEAT_SIGMA_MM = 15.0
MIN_SIGMA_CELLS = 0.8
CLOSE_PAIR_PX = 40.0  # close_pair_frames: two hands' heat points nearer than this


def hand_centres_mm(frame: DepthFrame) -> list[np.ndarray]:
    """Centres (3,) mm of every hand of a synthetic frame, hand 0 (``joints_mm``) first.

    Scene version 3: the ``center_mm`` (joint mean) of every hand in ``meta["hands"]``.
    Versions 1 and 2: the labelled hand's joint mean, then a second hand from
    ``meta["second_hand_center_mm"]`` when the generator drew one (v2). A hand-free scene
    (``meta["hand_free"]``) has none.
    """
    if frame.meta.get("hand_free"):
        return []
    labelled = frame.meta.get("hands")
    if labelled is not None:
        return [np.asarray(h["center_mm"], np.float64) for h in labelled][:MAX_HANDS]
    out = [np.asarray(frame.joints_mm, np.float64).mean(axis=0)]
    second = frame.meta.get("second_hand_center_mm")
    if second is not None:
        out.append(np.asarray(second, np.float64))
    return out[:MAX_HANDS]


@dataclass
class Examples:
    """N canonical frames and their hands.

    depth (N, H, W) uint16 mm; near_mm (N,); hands (N, MAX_HANDS, COLUMNS) rows
    [u, v, dz, sigma_cells, present, u_heat, v_heat] in canonical pixels (hand 0 = the
    labelled one): (u, v) the centre (outside the image for a hand centred there),
    (u_heat, v_heat) its heat-map target (:func:`~vvhand_core.detector.offimage.
    heat_point`, = (u, v) inside the image), dz = (z_centre - surface depth at the heat
    point) / DZ_SCALE_MM (NaN: no valid depth there).
    """

    depth: np.ndarray
    near_mm: np.ndarray
    hands: np.ndarray
    # (N, 2) int: each frame's canonical image (height, width), the rest of depth[i] being
    # padding; None for examples saved before it was kept (:func:`frame_sizes` remakes it)
    sizes: np.ndarray | None = None

    def __post_init__(self) -> None:
        """Five-column rows (``TARGETS`` 1) get their heat point: the centre itself."""
        if self.hands.shape[-1] == 5:
            self.hands = np.concatenate([self.hands, self.hands[..., 0:2]], axis=-1)


def target_row(canon: np.ndarray, cam: Intrinsics, centre_mm: np.ndarray,
               cfg: DetectorConfig, min_depth_mm: float, max_depth_mm: float
               ) -> np.ndarray | None:
    """The :class:`Examples` row (COLUMNS,) of a hand centred at ``centre_mm`` (3,).

    ``canon`` (H, W) the canonical depth mm of camera ``cam`` (canonical pixels);
    None for a centre behind the camera.
    """
    c = np.asarray(centre_mm, np.float64)
    if c[2] <= 0:
        return None
    u, v = project_np(c, cam)
    hu, hv = heat_point(u, v, cam.width, cam.height)
    z_s = surface_depth_mm(canon, hu, hv, cfg, min_depth_mm, max_depth_mm)
    dz = np.nan if z_s is None else (c[2] - z_s) / DZ_SCALE_MM
    sigma = max(MIN_SIGMA_CELLS, HEAT_SIGMA_MM * cfg.focal_px / c[2] / STRIDE)
    return np.array([u, v, dz, sigma, 1.0, hu, hv], np.float32)


def _example(frame: DepthFrame, cfg: DetectorConfig, min_depth_mm: float,
             max_depth_mm: float, outside: list[np.ndarray] = ()
             ) -> tuple[np.ndarray, float, np.ndarray]:
    """Canonical depth, z_near and hand rows of a frame.

    ``outside``: centres of its unlabelled hands that reach into the image (rows after
    the labelled hands').
    """
    canon, cam = canonical_depth(frame.depth_mm, frame.intrinsics, cfg.focal_px)
    near = nearest_surface_mm(canon, min_depth_mm, max_depth_mm)
    hands = np.zeros((MAX_HANDS, COLUMNS), np.float32)
    for k, c in enumerate([*hand_centres_mm(frame), *outside][:MAX_HANDS]):
        row = target_row(canon, cam, c, cfg, min_depth_mm, max_depth_mm)
        if row is not None:
            hands[k] = row
    return np.clip(np.rint(canon), 0, 65535).astype(np.uint16), near, hands


def _outside(synth: dict, index: int, intr: Intrinsics | None = None) -> list[np.ndarray]:
    """Centres of frame ``index``'s unlabelled hands that reach into the image (v3)."""
    if synth.get("hand_free"):
        return []
    spec = spec_hands(synth, index)
    if spec is None:
        return []
    return reaching_centres(spec, intr)


def _render_chunk(args) -> list[tuple[np.ndarray, float, np.ndarray]]:
    synth_dict, indices, cfg_dict, lo, hi = args
    from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator

    synth = dict(synth_dict)
    free = bool(synth.pop("hand_free", False))
    gen = SyntheticHandGenerator(SynthConfig.from_dict(synth))
    cfg = DetectorConfig(**cfg_dict)
    out = []
    for i in indices:
        if free:
            out.append(_example(gen.scene(int(i), hands=False).frame, cfg, lo, hi))
        else:
            f = gen.frame(int(i))
            out.append(_example(f, cfg, lo, hi, _outside(synth, int(i), f.intrinsics)))
    return out


def build_examples(sources: list[tuple[dict, int]], cfg: DetectorConfig, workers: int = 2,
                   min_depth_mm: float = 200.0, max_depth_mm: float = 1200.0,
                   progress=None) -> Examples:
    """Render frames 0..n-1 of each (SynthConfig dict, n) source into :class:`Examples`.

    ``progress``: optional callable(num_done) after each chunk (e.g. a tqdm update).
    """
    jobs = []
    for synth, n in sources:
        for s in range(0, n, 32):
            jobs.append((synth, list(range(s, min(s + 32, n))), cfg.to_dict(), min_depth_mm,
                         max_depth_mm))
    rows: list[tuple[np.ndarray, float, np.ndarray]] = []
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for chunk in pool.map(_render_chunk, jobs):
                rows += chunk
                if progress:
                    progress(len(chunk))
    else:
        for job in jobs:
            chunk = _render_chunk(job)
            rows += chunk
            if progress:
                progress(len(chunk))
    h = max(r[0].shape[0] for r in rows)
    w = max(r[0].shape[1] for r in rows)
    depth = np.zeros((len(rows), h, w), np.uint16)
    for i, (d, _, _) in enumerate(rows):
        depth[i, :d.shape[0], :d.shape[1]] = d
    return Examples(depth, np.array([r[1] for r in rows], np.float32),
                    np.stack([r[2] for r in rows]),
                    np.array([r[0].shape for r in rows], np.int32).reshape(-1, 2))


def frame_sizes(sources: list[tuple[dict, int]], cfg: DetectorConfig,
                progress=None) -> np.ndarray:
    """(N, 2) canonical (height, width) of every frame of ``sources``, drawn, not rendered.

    What :func:`build_examples` keeps as ``Examples.sizes``, for examples saved without
    it: each frame's camera is drawn again (version 1: the config's; versions 2 and 3: the
    scene's, whose hand-free twin has the same camera; nothing is rendered, the time is in
    hand_detector.md). ``progress``: optional callable(1) per frame.
    """
    from vvhand_core.data.synthetic.generator import _STREAM_FRAME_V2, SynthConfig
    from vvhand_core.data.synthetic.scene_v2 import sample_scene_v2

    out = []
    for synth, count in sources:
        config = SynthConfig.from_dict({k: v for k, v in synth.items() if k != "hand_free"})
        for i in range(count):
            if config.scene_version == 3:
                intr = spec_hands(synth, i).intr
            elif config.scene_version == 2:
                rng = np.random.default_rng([config.seed, _STREAM_FRAME_V2, i])
                intr = sample_scene_v2(config, rng).intr
            else:
                intr = config.intrinsics()
            cam = canonical_camera(intr, cfg.focal_px)
            out.append((cam.height, cam.width))
            if progress:
                progress(1)
    return np.array(out, np.int32).reshape(-1, 2)


def concat_examples(a: Examples, b: Examples) -> Examples:
    """``a``'s frames then ``b``'s, the canonical images zero-padded to one size."""
    h = max(a.depth.shape[1], b.depth.shape[1])
    w = max(a.depth.shape[2], b.depth.shape[2])
    depth = np.zeros((len(a.depth) + len(b.depth), h, w), np.uint16)
    depth[:len(a.depth), :a.depth.shape[1], :a.depth.shape[2]] = a.depth
    depth[len(a.depth):, :b.depth.shape[1], :b.depth.shape[2]] = b.depth
    sizes = (None if a.sizes is None or b.sizes is None
             else np.concatenate([a.sizes, b.sizes]))
    return Examples(depth, np.concatenate([a.near_mm, b.near_mm]),
                    np.concatenate([a.hands, b.hands]), sizes)


def close_pair_frames(hands: np.ndarray, within_px: float = CLOSE_PAIR_PX) -> np.ndarray:
    """Which frames (N,) hold two hands whose heat points lie within ``within_px``.

    ``hands``: :class:`Examples` rows (N, MAX_HANDS, COLUMNS); any two present rows
    count (an unlabelled hand reaching into the image too). Canonical pixels: 40 px are
    about 170 mm at 0.5 m, where the two hands' heat-map blobs and the refiner's patches
    overlap.
    """
    present = hands[:, :, 4] > 0.5
    nearest = np.full(len(hands), np.inf)
    for a in range(hands.shape[1]):
        for b in range(a + 1, hands.shape[1]):
            d = np.hypot(hands[:, a, 5] - hands[:, b, 5], hands[:, a, 6] - hands[:, b, 6])
            nearest = np.where(present[:, a] & present[:, b], np.minimum(nearest, d), nearest)
    return nearest < within_px


def heat_target(hands: np.ndarray, h4: int, w4: int) -> tuple[np.ndarray, np.ndarray]:
    """Heat-map (h4, w4) (max of Gaussians, 1 at each centre's cell) and dz map (h4, w4).

    ``hands`` (K, 5) rows [u, v, dz, sigma_cells, present] in crop pixels; the dz map
    holds the dz of the nearest present hand, NaN where unknown.
    """
    heat = np.zeros((h4, w4), np.float32)
    dzmap = np.full((h4, w4), np.nan, np.float32)
    best = np.full((h4, w4), np.inf, np.float32)
    ii, jj = np.mgrid[0:h4, 0:w4].astype(np.float32)
    for u, v, dz, sigma, present in hands:
        if present < 0.5:
            continue
        d2 = (jj - u / STRIDE) ** 2 + (ii - v / STRIDE) ** 2
        g = np.exp(-d2 / (2 * sigma * sigma))
        ci, cj = int(round(v / STRIDE)), int(round(u / STRIDE))
        if 0 <= ci < h4 and 0 <= cj < w4:
            g[ci, cj] = 1.0
        heat = np.maximum(heat, g)
        closer = d2 < best
        best = np.where(closer, d2, best)
        dzmap = np.where(closer, np.float32(dz), dzmap)
    return heat, dzmap


class TrainingCrops:
    """Random (crop_h, crop_w) crops of :class:`Examples` with targets, drawn from an rng.

    With probability ``p_hand`` the crop contains the heat point of one of the frame's
    hands (drawn uniformly) at least ``margin`` pixels inside; otherwise it is placed uniformly
    (often a negative). Frames are drawn uniformly, or with probabilities proportional to
    ``frame_weights`` (N,) when given.
    """

    def __init__(self, ex: Examples, crop_hw: tuple[int, int] = (96, 128), p_hand: float = 0.85,
                 margin: int = 12, frame_weights: np.ndarray | None = None) -> None:
        """Wrap the examples (ValueError: weights of the wrong length or not positive)."""
        self.ex, self.crop_hw, self.p_hand, self.margin = ex, crop_hw, p_hand, margin
        self.cdf = None
        if frame_weights is not None:
            w = np.asarray(frame_weights, np.float64)
            if w.shape != (len(ex.depth),) or (w < 0).any() or w.sum() <= 0:
                raise ValueError("frame_weights: one non-negative weight per frame, some > 0")
            self.cdf = np.cumsum(w) / w.sum()

    def batch(self, rng: np.random.Generator, size: int, min_depth_mm: float = 200.0,
              max_depth_mm: float = 1200.0) -> dict[str, np.ndarray]:
        """A batch: input (B, 3, h, w), heat (B, h4, w4), dz (B, h4, w4) NaN = no target."""
        ch, cw = self.crop_hw
        n, big_h, big_w = self.ex.depth.shape
        h4, w4 = math.ceil(ch / STRIDE), math.ceil(cw / STRIDE)
        xs = np.zeros((size, 3, ch, cw), np.float32)
        heats = np.zeros((size, h4, w4), np.float32)
        dzs = np.zeros((size, h4, w4), np.float32)
        for b in range(size):
            i = (int(rng.integers(n)) if self.cdf is None
                 else min(int(np.searchsorted(self.cdf, rng.random(), side="right")), n - 1))
            hands = self.ex.hands[i].copy()
            present = np.flatnonzero(hands[:, 4] > 0.5)
            if present.size and rng.random() < self.p_hand:
                k = int(present[0] if present.size == 1 else rng.choice(present))
                u, v = hands[k, 5], hands[k, 6]  # the heat point: inside the image
                lo_x = int(np.clip(u - cw + self.margin, 0, big_w - cw))
                hi_x = int(np.clip(u - self.margin, 0, big_w - cw))
                lo_y = int(np.clip(v - ch + self.margin, 0, big_h - ch))
                hi_y = int(np.clip(v - self.margin, 0, big_h - ch))
                x0 = int(rng.integers(lo_x, max(hi_x, lo_x) + 1))
                y0 = int(rng.integers(lo_y, max(hi_y, lo_y) + 1))
            else:
                x0 = int(rng.integers(0, max(big_w - cw, 0) + 1))
                y0 = int(rng.integers(0, max(big_h - ch, 0) + 1))
            d = self.ex.depth[i, y0:y0 + ch, x0:x0 + cw].astype(np.float32)
            hands[:, [0, 5]] -= x0
            hands[:, [1, 6]] -= y0
            if rng.random() < 0.5:  # mirror: a left hand from a right one and vice versa
                d = d[:, ::-1]
                hands[:, [0, 5]] = (cw - 1) - hands[:, [0, 5]]
            xs[b] = encode_input(d, min_depth_mm, max_depth_mm, float(self.ex.near_mm[i]))
            heats[b], dzs[b] = heat_target(hands[:, [5, 6, 2, 3, 4]], h4, w4)
        return {"input": xs, "heat": heats, "dz": dzs}
