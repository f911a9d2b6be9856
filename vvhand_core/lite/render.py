"""Numpy twin of the torch renderer (:mod:`vvhand_core.render.torch_backend`).

Every foreground crop pixel (j, i) with depth z is lifted to the camera (T^-1, K^-1),
moved by the view matrix, projected again and rounded to the nearest crop pixel; each
target pixel keeps the smallest depth (z-buffer, ``np.minimum.at``); untouched pixels
are 0. As in :mod:`vvhand_core.render.common`, the per-view homographies

    h = z * (G (j, i, 1)) + b,   G = K_c R K_c^-1,   b = K_c t,   K_c = T K

are computed in float64 and rounded once to float32; h itself is evaluated in float32
as one product G (j z, i z, z) + b, like the torch renderer on CPU. Only the 3-term
sum's order may differ from torch's BLAS call, so a pixel whose target lies within a
float32 ulp of a rounding boundary can land one pixel over (rare; measured by
``test/test_lite.py``). The identity view reproduces the crop exactly.
"""

from __future__ import annotations

import numpy as np

from vvhand_core.lite.geometry import crop_intrinsics


def view_homographies(t: np.ndarray, k: np.ndarray, view_mats: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """G (B, V, 3, 3) and b (B, V, 3) float32 from T (B, 3, 3), K (B, 4), M (B, V, 4, 4).

    Computed in float64 and rounded once to float32.
    """
    kc = crop_intrinsics(t.astype(np.float64), k.astype(np.float64))  # (B, 4)
    b = len(kc)
    kmat = np.zeros((b, 3, 3))
    kinv = np.zeros((b, 3, 3))
    kmat[:, 0, 0], kmat[:, 1, 1] = kc[:, 0], kc[:, 1]
    kmat[:, 0, 2], kmat[:, 1, 2], kmat[:, 2, 2] = kc[:, 2], kc[:, 3], 1.0
    kinv[:, 0, 0], kinv[:, 1, 1] = 1.0 / kc[:, 0], 1.0 / kc[:, 1]
    kinv[:, 0, 2], kinv[:, 1, 2], kinv[:, 2, 2] = -kc[:, 2] / kc[:, 0], -kc[:, 3] / kc[:, 1], 1.0
    m = view_mats.astype(np.float64)
    g = kmat[:, None] @ m[..., :3, :3] @ kinv[:, None]
    bvec = (kmat[:, None] @ m[..., :3, 3:4])[..., 0]
    return g.astype(np.float32), bvec.astype(np.float32)


def render_views(crop_mm: np.ndarray, t: np.ndarray, k: np.ndarray,
                 view_mats: np.ndarray) -> np.ndarray:
    """Render crops (B, S, S) mm through views (B, V, 4, 4) -> (B, V, S, S) float32 mm.

    T (B, 3, 3) crop transforms, K (B, 4) intrinsics; 0 = empty (in and out).
    """
    crop = np.asarray(crop_mm, np.float32)
    if crop.ndim != 3 or crop.shape[1] != crop.shape[2]:
        raise ValueError(f"crop_mm must be (B, S, S), got {crop.shape}")
    b, s = crop.shape[0], crop.shape[-1]
    if t.shape != (b, 3, 3) or k.shape != (b, 4) or view_mats.ndim != 4 \
            or view_mats.shape[0] != b or view_mats.shape[2:] != (4, 4):
        raise ValueError(f"need T ({b}, 3, 3), K ({b}, 4), view_mats ({b}, V, 4, 4); got "
                         f"{t.shape}, {k.shape}, {view_mats.shape}")
    v = view_mats.shape[1]
    g, bvec = view_homographies(t, k, view_mats)
    out = np.full((b * v * s * s,), np.inf, np.float32)
    for f in range(b):  # frames have different foreground sizes: one frame at a time
        pix = np.flatnonzero(crop[f] > 0)  # (N,) flat pixel index
        if pix.size == 0:
            continue
        z = crop[f].ravel()[pix]
        jj = (pix % s).astype(np.float32)  # column
        ii = (pix // s).astype(np.float32)  # row
        q = np.stack((jj * z, ii * z, z))  # (3, N)
        h = g[f] @ q + bvec[f][:, :, None]  # (V, 3, N)
        hx, hy, hz = h[:, 0], h[:, 1], h[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.round(hx / hz)
            w = np.round(hy / hz)
        ok = (hz > 0) & (u >= 0) & (u <= s - 1) & (w >= 0) & (w <= s - 1)
        view_i, n_i = np.nonzero(ok)
        target = ((f * v + view_i) * s + w[view_i, n_i].astype(np.intp)) * s \
            + u[view_i, n_i].astype(np.intp)
        np.minimum.at(out, target, hz[view_i, n_i])
    out[np.isinf(out)] = 0
    return out.reshape(b, v, s, s)


__all__ = ["render_views", "view_homographies"]
