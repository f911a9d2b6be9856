"""Depth-sensor effects and backgrounds for synthetic frames.

* Gaussian depth noise growing with the square of distance: sigma(z) = sigma_500 (z/500)^2.
* Missing pixels at silhouette edges (depth jumps), where real sensors lose returns, plus
  a sprinkle of random dropouts.
* Quantisation to whole millimetres (uint16), as 16-bit depth images store them.
* Backgrounds: a wall behind the hand or a table below it (planes placed so that they
  never occlude the hand), or none.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BACKGROUNDS = ("none", "wall", "table", "random")


def silhouette_edges(depth_mm: np.ndarray, jump_mm: float) -> np.ndarray:
    """(H, W) bool: valid pixels with a 4-neighbour that is invalid or > jump_mm farther/nearer."""
    d = depth_mm.astype(np.float32)
    valid = d > 0
    edge = np.zeros_like(valid)
    for axis in (0, 1):
        diff = np.abs(np.diff(d, axis=axis))
        vn = np.logical_and(np.take(valid, range(d.shape[axis] - 1), axis),
                            np.take(valid, range(1, d.shape[axis]), axis))  # fmt: skip
        jump = (diff > jump_mm) | ~vn
        if axis == 0:
            edge[:-1] |= jump
            edge[1:] |= jump
        else:
            edge[:, :-1] |= jump
            edge[:, 1:] |= jump
    return edge & valid


def apply_sensor_effects(
    depth_mm: np.ndarray,
    rng: np.random.Generator,
    noise_sigma_mm: float,
    edge_dropout: float,
    edge_jump_mm: float,
    random_dropout: float,
    quantize: bool,
) -> np.ndarray:
    """Noisy sensor image from a clean depth (H, W) mm (0 = empty).

    Returns uint16 when ``quantize`` else float32; invalid pixels are 0. Draws from ``rng``
    in a fixed order, so the result is a pure function of the inputs and the rng state.
    """
    d = depth_mm.astype(np.float32)
    edges = silhouette_edges(d, edge_jump_mm)
    idx = np.flatnonzero(d > 0)  # random draws only where there is depth: fewer, faster
    z = d.reshape(-1)[idx]
    noisy = (
        z
        + rng.standard_normal(idx.size, dtype=np.float32)
        * np.float32(noise_sigma_mm)
        * (z / np.float32(500.0)) ** 2
    )
    drop = rng.random(idx.size, dtype=np.float32) < random_dropout
    drop |= edges.reshape(-1)[idx] & (rng.random(idx.size, dtype=np.float32) < edge_dropout)
    drop |= noisy <= 0
    out = np.zeros(d.size, dtype=np.float32)
    out[idx] = np.where(drop, np.float32(0.0), noisy)
    out = out.reshape(d.shape)
    if quantize:
        return np.clip(np.rint(out), 0, 65535).astype(np.uint16)
    return out


def background_planes(
    kind: str, rng: np.random.Generator, support: Callable[[np.ndarray], float]
) -> np.ndarray:
    """Planes (P, 4) rows [nx, ny, nz, h] (unit normal, n . p = h) for a background kind.

    ``support(n)`` is the largest n . p over what the planes must stay clear of (the hand,
    see ``HandGeometry.support``): each plane lies 60..400 mm (wall) or 30..150 mm (table)
    beyond it along its normal, with the camera on the hand's side (h > 0), so it can
    never occlude the hand. "random" picks none/wall/table uniformly.
    """
    if kind not in BACKGROUNDS:
        raise ValueError(f"background must be one of {BACKGROUNDS}, got {kind!r}")
    if kind == "random":
        kind = ("none", "wall", "table")[int(rng.integers(3))]
    if kind == "none":
        return np.zeros((0, 4))
    if kind == "wall":
        n = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), 1.0])
        gap = rng.uniform(60.0, 400.0)
    else:  # table seen from a camera pitched down by 15..60 deg: n = -(world up)
        pitch = np.radians(rng.uniform(15.0, 60.0))
        n = np.array([rng.uniform(-0.2, 0.2), np.cos(pitch), np.sin(pitch)])
        gap = rng.uniform(30.0, 150.0)
    n /= np.linalg.norm(n)
    h = float(support(n)) + gap
    if h <= 0.0:  # the camera would be behind the plane: it would hide the hand
        return np.zeros((0, 4))
    return np.array([[n[0], n[1], n[2], h]])
