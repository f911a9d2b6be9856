"""`vvhand bench hands --sheet`: labelled hands the node lost at the fit limit, side by side.

For the ``node`` and ``alternate`` variants of one run (the same frames, each a new
stream), the first hands (frame order) that the node's defaults drop as phantoms (fit
residual above the limit) and the alternate model's run reports: left the default model's
fitted hand that was dropped (its residual in the title), right the reported hand (which
model's estimate the fit took). Ground truth dashed (:mod:`vvhand_core.contact_sheet`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vvhand_core.contact_sheet import Panel, write_pair_sheet
from vvhand_core.hand_scores import MATCH_MM


def _nearest(candidates: list[tuple[np.ndarray, object]], centre_mm: np.ndarray):
    """The (joints, result) whose joint mean is nearest ``centre_mm`` within MATCH_MM."""
    best, best_d = None, MATCH_MM
    for joints, r in candidates:
        d = float(np.linalg.norm(np.asarray(joints).mean(0) - centre_mm))
        if d < best_d:
            best, best_d = (joints, r), d
    return best


def rescued_pairs(frames, node_outs, alternate_outs, limit: int = 8
                  ) -> list[tuple[Panel, Panel]]:
    """(dropped by the node, reported with the alternate) panels of up to ``limit`` hands.

    ``node_outs`` / ``alternate_outs``: the two runs' HandsResult per frame.
    """
    pairs = []
    for i, (f, a, b) in enumerate(zip(frames, node_outs, alternate_outs, strict=True)):
        dropped = [(r.fit.joints_mm, r) for r in a.dropped
                   if r.fit is not None and "residual" in r.message]
        kept = [(r.joints_mm, r) for r in a.hands]
        reported = [(r.joints_mm, r) for r in b.hands]
        for h in f.meta["hands"]:
            gt = np.asarray(h["joints_mm"], np.float64)
            lost = _nearest(dropped, gt.mean(0))
            found = _nearest(reported, gt.mean(0))
            if lost is None or found is None or _nearest(kept, gt.mean(0)) is not None:
                continue
            which = "grasp model" if found[1].alternate_chosen else "default model"
            pairs.append((
                Panel(f.depth_mm, f.intrinsics, np.asarray(lost[0]), gt,
                      f"frame {i}: dropped, residual {lost[1].fit.residual_mm:.1f} mm"),
                Panel(f.depth_mm, f.intrinsics, np.asarray(found[0]), gt,
                      f"with the alternate ({which})")))
            if len(pairs) >= limit:
                return pairs
    return pairs


def write_rescued_sheet(frames, node_outs, alternate_outs, skeleton, path: str | Path,
                        split: str) -> Path | None:
    """The sheet of :func:`rescued_pairs` (None when no hand qualifies)."""
    pairs = rescued_pairs(frames, node_outs, alternate_outs)
    if not pairs:
        return None
    return write_pair_sheet(pairs, skeleton, path, f"v3 {split} split: hands the node's fit "
                            "drops as phantoms (left), reported with alternate_model grasp "
                            "(right); ground truth dashed")


def sheet_of_runs(frames, runs: dict, skeleton, path: str | Path, split: str) -> str:
    """`vvhand bench hands --sheet`: the picture of a run's node and alternate variants.

    ``runs``: (max_hands, variant) -> HandsResult per frame; the first max_hands value's
    ``node`` and ``alternate`` runs are drawn. Returns the line to print.
    """
    m = next(iter(runs))[0]
    if (m, "node") not in runs or (m, "alternate") not in runs:
        return "--sheet needs the variants node and alternate: no picture"
    out = write_rescued_sheet(frames, runs[(m, "node")], runs[(m, "alternate")], skeleton,
                              path, split)
    return (f"picture: {out}" if out else
            "no hand dropped by the node and reported with the alternate: no picture")
