"""Two-hand depth frames for the multi-hand tests: a crossing sequence built from the
generator's pieces (there is no two-hand sequence generator).

Two hands (hand states drawn from the v1 generator, seed 4: articulation, orientation,
size) are placed with ``place_hand`` and ray-cast with ``render_geometry``; the frame is
the nearer surface of the two (a z-buffer), no background, no sensor noise. Path over
``n`` frames: first the hands swap depth while apart (A 420 -> 540 mm, B 540 -> 420 mm,
A on the left, B on the right), then they cross sideways (A to the right, B to the left)
with B in front: the nearest-first list order flips while each hand keeps its identity.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator, place_hand
from vvhand_core.data.synthetic.raycast import render_geometry

X_MM, Y_MM = 110.0, 35.0  # lateral half-distance, vertical offset of each hand
Z_NEAR, Z_FAR = 420.0, 540.0


def hand_centres(n: int) -> np.ndarray:
    """(n, 2, 3) the centres (joint means) of hands A and B in each frame, camera mm."""
    out = np.zeros((n, 2, 3))
    half = n // 2
    for i in range(n):
        if i < half:  # depth swap, apart
            t = i / max(half - 1, 1)
            xa, za = -X_MM, Z_NEAR + t * (Z_FAR - Z_NEAR)
        else:  # sideways crossing, A behind B
            t = (i - half + 1) / (n - half)
            xa, za = -X_MM + 2 * X_MM * t, Z_FAR
        xb, zb = -xa, Z_NEAR + Z_FAR - za
        out[i, 0] = (xa, -Y_MM, za)
        out[i, 1] = (xb, Y_MM, zb)
    return out


def two_hand_sequence(n: int = 12, seed: int = 4, which: tuple[int, ...] = (0, 1),
                      centres: np.ndarray | None = None):
    """(depth (n, H, W) float32 mm, joints (n, 2, 21, 3) mm, centres (n, 2, 3), intrinsics).

    ``which``: the hands drawn into the depth (the labels hold both); ``centres`` (n, 2, 3):
    other paths than :func:`hand_centres` (e.g. touching hands).
    """
    gen = SyntheticHandGenerator(SynthConfig(seed=seed, background="none"))
    rng = np.random.default_rng(seed)
    states = [gen.sample_state(rng), gen.sample_state(rng)]
    intr = gen.intrinsics
    centres = hand_centres(n) if centres is None else np.asarray(centres, np.float64)
    depths = np.zeros((n, intr.height, intr.width), np.float32)
    joints = np.zeros((n, 2, 21, 3))
    for i in range(n):
        frame = np.full((intr.height, intr.width), np.inf, np.float32)
        for k, state in enumerate(states):
            geom = place_hand(dataclasses.replace(state, center_mm=centres[i, k]), gen.shape)
            d, _ = render_geometry(geom, intr)
            if k in which:
                frame = np.where((d > 0) & (d < frame), d, frame)
            joints[i, k] = geom.joints
        depths[i] = np.where(np.isfinite(frame), frame, 0.0)
    return depths, joints, centres, intr


def identities(hands_centres_mm: list[np.ndarray], truth: np.ndarray, limit_mm: float = 60.0
               ) -> list[int | None]:
    """For each estimated centre: the index (0 = A, 1 = B) of the true hand within limit."""
    out = []
    for c in hands_centres_mm:
        d = np.linalg.norm(truth - np.asarray(c)[None], axis=1)
        out.append(int(d.argmin()) if d.min() < limit_mm else None)
    return out
