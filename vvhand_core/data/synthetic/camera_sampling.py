"""Per-frame depth cameras of scene version 2: real resolutions, plausible fields of view.

A frame's camera is drawn from ``rng``: an image size from :data:`RESOLUTIONS` (the sizes
depth cameras stream: RealSense, Azure Kinect, Orbbec), a horizontal field of view in
``HFOV_RANGE_DEG``, turned into a focal length fx = fy = (W / 2) / tan(hfov / 2) clipped to
``FOCAL_RANGE_PX``, and a principal point within ``PRINCIPAL_JITTER`` x size of the centre.
"""

from __future__ import annotations

import numpy as np

from vvhand_core.camera import Intrinsics

RESOLUTIONS: tuple[tuple[int, int], ...] = (
    (320, 240),  # Orbbec, Kinect v1 (QVGA)
    (320, 288),  # Azure Kinect NFOV binned
    (424, 240),  # RealSense D4xx
    (640, 360),  # RealSense D4xx
    (640, 480),  # Orbbec, Kinect v1, RealSense
    (640, 576),  # Azure Kinect NFOV unbinned
    (848, 480),  # RealSense D4xx (recommended)
    (1280, 720),  # RealSense D4xx
)  # (width, height) pixels, drawn uniformly
HFOV_RANGE_DEG = (55.0, 90.0)
FOCAL_RANGE_PX = (200.0, 650.0)
PRINCIPAL_JITTER = 0.02


def focal_from_hfov(width: int, hfov_deg: float) -> float:
    """Focal length (px) of a pinhole camera ``width`` px wide with horizontal FOV hfov_deg."""
    return 0.5 * width / np.tan(np.radians(hfov_deg) / 2.0)


def sample_camera(rng: np.random.Generator) -> tuple[Intrinsics, dict]:
    """One camera: (intrinsics, meta dict with its hfov_deg as drawn before clipping f).

    The focal length is clipped to ``FOCAL_RANGE_PX``, so the recorded ``hfov_deg`` is the
    field of view the clipped focal length gives.
    """
    width, height = RESOLUTIONS[int(rng.integers(len(RESOLUTIONS)))]
    hfov = float(rng.uniform(*HFOV_RANGE_DEG))
    f = float(np.clip(focal_from_hfov(width, hfov), *FOCAL_RANGE_PX))
    cx = (width - 1) / 2.0 + float(rng.uniform(-1, 1)) * PRINCIPAL_JITTER * width
    cy = (height - 1) / 2.0 + float(rng.uniform(-1, 1)) * PRINCIPAL_JITTER * height
    intr = Intrinsics(f, f, cx, cy, width, height)
    hfov_clipped = float(np.degrees(2.0 * np.arctan(0.5 * width / f)))
    return intr, {"hfov_deg": round(hfov_clipped, 3)}
