"""Scoring every estimated hand of a frame against every labelled hand (numpy only).

Used by `vvhand bench hands` and `vvhand replay` (bags with every hand labelled).

Per frame (:func:`score_frame`): estimated and labelled hands are matched greedily by the
distance of their joint means (closest pair first, one estimate per labelled hand), a
pair counting when closer than :data:`MATCH_MM`. A labelled hand without an estimate is
**missed**; an estimate without a labelled hand is **extra** (a phantom, or a second
estimate of one hand). A matched hand's error is the mean distance of its joints from the
labelled joints (mm, all joints). Its side counts when the estimate says left or right
and the label has a side. :func:`summarise` sums frames into percentages: reported =
matched / labelled, extra = extra / labelled, side right = right calls / calls.

Sides at other margins (:func:`side_at_margins`): given each estimate's side evidence
(log-odds that it is a right hand), a side is called only where the evidence's probability
reaches the margin and agrees with the side the estimate says; how many matched hands
are then called and how many of those calls are right, per margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vvhand_core.side import confident_side

MATCH_MM = 60.0  # an estimate whose joint mean is this close to a labelled hand's finds it


@dataclass
class FrameScore:
    """One frame: labelled hands, matched pairs' errors (mm), extras, side calls."""

    labelled: int
    errors_mm: list[float] = field(default_factory=list)
    extra: int = 0
    side_calls: int = 0
    side_right: int = 0
    # (evidence log-odds of right, the estimate's side, the label's side) of each matched
    # hand with a labelled side, when the evidence was given
    sides: list[tuple[float, str, str]] = field(default_factory=list)

    @property
    def matched(self) -> int:
        """Labelled hands with an estimate."""
        return len(self.errors_mm)


def match_hands(est_centres_mm: np.ndarray, lab_centres_mm: np.ndarray,
                radius_mm: float = MATCH_MM) -> list[tuple[int, int]]:
    """(estimate, labelled) index pairs within ``radius_mm``, closest pair first."""
    est = np.asarray(est_centres_mm, np.float64).reshape(-1, 3)
    lab = np.asarray(lab_centres_mm, np.float64).reshape(-1, 3)
    if len(est) == 0 or len(lab) == 0:
        return []
    d = np.linalg.norm(est[:, None] - lab[None], axis=-1)
    pairs, used_e, used_l = [], set(), set()
    for flat in np.argsort(d, axis=None, kind="stable"):
        i, j = divmod(int(flat), d.shape[1])
        if d[i, j] > radius_mm:
            break
        if i not in used_e and j not in used_l:
            pairs.append((i, j))
            used_e.add(i)
            used_l.add(j)
    return pairs


def score_frame(est_joints_mm: list[np.ndarray], est_sides: list[str],
                lab_joints_mm: list[np.ndarray], lab_sides: list[str | None],
                est_evidence: list[float] | None = None) -> FrameScore:
    """Score one frame (module doc). Joints (J, 3) mm per hand; sides "left"/"right"/...

    ``est_evidence``: each estimate's side evidence (log-odds of a right hand), kept in
    ``FrameScore.sides`` for :func:`side_at_margins`.
    """
    est = [np.asarray(j, np.float64) for j in est_joints_mm]
    lab = [np.asarray(j, np.float64) for j in lab_joints_mm]
    pairs = match_hands(np.array([j.mean(0) for j in est]).reshape(-1, 3),
                        np.array([j.mean(0) for j in lab]).reshape(-1, 3))
    score = FrameScore(labelled=len(lab), extra=len(est) - len(pairs))
    for i, j in pairs:
        score.errors_mm.append(float(np.linalg.norm(est[i] - lab[j], axis=1).mean()))
        if est_sides[i] in ("left", "right") and lab_sides[j] in ("left", "right"):
            score.side_calls += 1
            score.side_right += int(est_sides[i] == lab_sides[j])
        if est_evidence is not None and lab_sides[j] in ("left", "right"):
            score.sides.append((float(est_evidence[i]), est_sides[i], lab_sides[j]))
    return score


def side_at_margins(scores: list[FrameScore], margins: list[float]
                    ) -> list[tuple[float, float, float]]:
    """(margin, called % of the matched hands with a labelled side, right % of the calls).

    A side is called where the estimate says left or right and its evidence's probability
    (``FrameScore.sides``) reaches the margin on that same side (module doc).
    """
    records = [r for s in scores for r in s.sides]
    nan = float("nan")
    out = []
    for m in margins:
        called = [(side, truth) for ev, side, truth in records
                  if side in ("left", "right") and confident_side(ev, m) == side]
        right = sum(side == truth for side, truth in called)
        out.append((m, 100.0 * len(called) / len(records) if records else nan,
                    100.0 * right / len(called) if called else nan))
    return out


def summarise(scores: list[FrameScore]) -> dict[str, float]:
    """The frames' totals (keys below).

    Frames, labelled hands, matched, reported %, extra and extra % (of labelled), mean /
    median error mm, side calls (% of matched) and side right (% of calls).
    """
    labelled = sum(s.labelled for s in scores)
    errors = [e for s in scores for e in s.errors_mm]
    matched, calls = len(errors), sum(s.side_calls for s in scores)
    nan = float("nan")
    return {
        "frames": len(scores), "labelled": labelled, "matched": matched,
        "reported_pct": 100.0 * matched / labelled if labelled else nan,
        "extra": sum(s.extra for s in scores),
        "extra_pct": 100.0 * sum(s.extra for s in scores) / labelled if labelled else nan,
        "mean_error_mm": float(np.mean(errors)) if errors else nan,
        "median_error_mm": float(np.median(errors)) if errors else nan,
        "side_calls_pct": 100.0 * calls / matched if matched else nan,
        "side_right_pct": (100.0 * sum(s.side_right for s in scores) / calls if calls
                           else nan),
    }


__all__ = ["FrameScore", "MATCH_MM", "match_hands", "score_frame", "side_at_margins",
           "summarise"]
