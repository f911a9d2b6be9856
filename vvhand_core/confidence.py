"""Per-joint confidence from the fused views' agreement.

The pipeline fuses N virtual views (joints_views_mm (N, J, 3), camera frame). Where the
views agree on a joint, its fused estimate is trustworthy; where they disagree, it is not.
The spread of joint j is the fusion-weighted RMS distance of the views' estimates from the
fused joint,

    spread_j = sqrt( sum_n w_n |p_nj - p_j|^2 )   [mm]   (w = the fusion weights, sum 1)

and the confidence maps it to (0, 1]: ``exp(-spread_j / scale_mm)`` (1 = all views agree;
``scale_mm`` is the spread at which confidence drops to 1/e). With one view (N = 1) there
is nothing to compare: the spread is NaN and no confidence is given. This is agreement,
not a calibrated probability: docs/results.md ("Per-joint confidence vs error") shows how
error grows as confidence falls on the synthetic test split (`vvhand bench confidence`).
"""

from __future__ import annotations

import numpy as np

DEFAULT_SCALE_MM = 20.0


def joint_spread_mm(views_mm: np.ndarray, fused_mm: np.ndarray,
                    weights: np.ndarray) -> np.ndarray:
    """Spread (J,) mm of views (N, J, 3) around fused (J, 3) under weights (N,); NaN if N < 2."""
    v = np.asarray(views_mm, dtype=np.float64)
    if v.ndim != 3 or v.shape[0] < 2:
        return np.full(np.shape(fused_mm)[0], np.nan, np.float32)
    w = np.asarray(weights, dtype=np.float64).reshape(-1, 1)
    w = w / w.sum() if w.sum() > 0 else np.full_like(w, 1.0 / len(w))
    d2 = ((v - np.asarray(fused_mm, dtype=np.float64)[None]) ** 2).sum(-1)  # (N, J)
    return np.sqrt((w * d2).sum(0)).astype(np.float32)


def spread_to_confidence(spread_mm: np.ndarray, scale_mm: float = DEFAULT_SCALE_MM) -> np.ndarray:
    """exp(-spread / scale) in (0, 1]; NaN spread -> NaN."""
    if not scale_mm > 0:
        raise ValueError(f"scale_mm must be > 0, got {scale_mm}")
    return np.exp(-np.asarray(spread_mm, dtype=np.float64) / scale_mm).astype(np.float32)


def binned_error(confidence: np.ndarray, error_mm: np.ndarray, bins: int = 5) -> list[dict]:
    """Equal-count confidence bins (lowest first): range, count, mean and median error [mm]."""
    c, e = np.asarray(confidence).ravel(), np.asarray(error_mm).ravel()
    keep = np.isfinite(c) & np.isfinite(e)
    c, e = c[keep], e[keep]
    order = np.argsort(c, kind="stable")
    rows = []
    for part in np.array_split(order, bins):
        if part.size == 0:
            continue
        rows.append({"conf_lo": float(c[part].min()), "conf_hi": float(c[part].max()),
                     "count": int(part.size), "mean_mm": float(e[part].mean()),
                     "median_mm": float(np.median(e[part]))})
    return rows


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two flat arrays (ties broken by order)."""
    ra = np.argsort(np.argsort(np.asarray(a).ravel())).astype(np.float64)
    rb = np.argsort(np.argsort(np.asarray(b).ravel())).astype(np.float64)
    return float(np.corrcoef(ra, rb)[0, 1])


__all__ = ["DEFAULT_SCALE_MM", "binned_error", "joint_spread_mm", "rank_correlation",
           "spread_to_confidence"]
