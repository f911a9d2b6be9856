"""Where a labelled hand is lost between the localiser and the reported hands (issue 27).

``run_hands`` (:mod:`vvhand_core.hands`) takes each hand through: the localiser's
candidates -> a crop and the network's estimate per candidate -> the overlap
(duplicate) rule -> the hand-model fit, whose residual limit drops phantoms -> the
reported hands, scored by :func:`vvhand_core.hand_scores.score_frame` (an estimate's joint
mean within 60 mm of the labelled joint mean). :func:`lost_stages` says, for every
labelled hand of a frame, the first stage at which it was lost (:data:`STAGES`, in
pipeline order), or "reported":

1. **localiser** (no candidate within :data:`~vvhand_core.detector.evaluate_hands.
   FOUND_MM` = 30 mm of the hand's joint mean; candidates and hands matched greedily as
   ``vvhand bench localiser`` does), split by :func:`why_not_localised` from the
   detector's raw peaks: no peak near the hand at all, a peak only below ``threshold``,
   a peak cut by ``relative_threshold`` (x the frame's best), by ``max_hands``, or by
   another rule (merged into another detection);
2. **crop** empty (the candidate's estimate is invalid: no depth in its crop);
3. **network** estimate (before the fit) whose joint mean is > 60 mm off the hand;
4. **duplicate**: the overlap rule took the estimate for a hand already kept;
5. **fit limit**: the fit's residual was above ``max_residual_mm`` (a phantom for the
   pipeline);
6. **fit moved**: reported, but the fitted joints' mean lies > 60 mm off;
7. **matching**: reported within 60 mm, but the greedy matching gave that estimate to
   another labelled hand.

A hand no candidate found within 30 mm, but whose estimate from another candidate (30 mm
or more off) lands within 60 mm, follows that candidate through stages 4-7: it was not
lost by the localiser. A hand reported through any candidate counts as reported: the
stages only explain hands that ``score_frame`` does not match. Numpy only (the detector's rules are
imported when :func:`why_not_localised` runs).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vvhand_core.hand_scores import MATCH_MM, match_hands

FOUND_MM = 30.0  # as detector.evaluate_hands.FOUND_MM: a candidate this close finds a hand
REPORTED = "reported"
STAGES = ("localiser: no detector peak", "localiser: peak below threshold",
          "localiser: relative threshold", "localiser: max_hands", "localiser: other rule",
          "crop empty", "network estimate > 60 mm off", "duplicate rule", "fit limit",
          "fit moved > 60 mm", "matching")


@dataclass
class CandidateTrace:
    """One candidate of ``run_hands``: crop centre (3,) mm, the network's joints, its fate.

    ``network_joints_mm`` (J, 3) mm before the fit, None when the crop held no depth;
    ``fate``: "reported", "duplicate", "fit limit" or "empty"; ``final_joints_mm`` (J, 3)
    mm: the reported joints (None unless reported); ``residual_mm``: the fit's residual
    (None without a fit).
    """

    centre_mm: np.ndarray
    network_joints_mm: np.ndarray | None
    fate: str
    final_joints_mm: np.ndarray | None = None
    residual_mm: float | None = None


def _mean_mm(joints_mm) -> np.ndarray:
    return np.asarray(joints_mm, np.float64).reshape(-1, 3).mean(axis=0)


def why_not_localised(centre_mm: np.ndarray, peaks: list[tuple[float, np.ndarray]],
                      cfg) -> str:
    """Which localiser stage lost a hand centred at ``centre_mm`` (3,) mm (module doc, 1).

    ``peaks``: the detector's (score, centre (3,) mm) at a threshold below ``cfg.
    threshold`` (``DetectorLocaliser.candidates``); ``cfg``: its DetectorLocaliserConfig.
    A rule is blamed when ``hands_without_tracks`` with that rule relaxed (relative
    threshold 0, or max_hands 8) finds the hand within 30 mm.
    """
    from vvhand_core.detector.localiser import hands_without_tracks

    centre = np.asarray(centre_mm, np.float64)
    near = [s for s, c in peaks if np.linalg.norm(np.asarray(c) - centre) <= FOUND_MM]
    if not near:
        return STAGES[0]
    if max(near) < cfg.threshold:
        return STAGES[1]

    def finds(c) -> bool:
        return any(np.linalg.norm(h.centre_mm - centre) <= FOUND_MM
                   for h in hands_without_tracks(peaks, c))
    if finds(replace(cfg, relative_threshold=0.0)):
        return STAGES[2]
    if finds(replace(cfg, max_hands=8)):
        return STAGES[3]
    return STAGES[4]


def lost_stages(lab_joints_mm: list[np.ndarray], traces: list[CandidateTrace],
                localiser_why=None, match_mm: float = MATCH_MM) -> list[str]:
    """Per labelled hand (joints (J, 3) mm): "reported" or the stage it was lost at.

    ``traces``: every candidate of the frame (:class:`CandidateTrace`); the reported
    hands are those with ``fate`` "reported", matched to the labels exactly as
    ``score_frame`` does. ``localiser_why(centre_mm) -> str``: a localiser stage for a
    hand no candidate found (default: "localiser: other rule").
    """
    labs = [_mean_mm(j) for j in lab_joints_mm]
    lab_c = np.array(labs).reshape(-1, 3)
    shown = [t for t in traces if t.fate == "reported"]
    final = match_hands(np.array([_mean_mm(t.final_joints_mm) for t in shown]).reshape(-1, 3),
                        lab_c, match_mm)
    out = [REPORTED if any(j == jj for _, jj in final) else "" for j in range(len(labs))]
    found = dict((j, i) for i, j in match_hands(
        np.array([t.centre_mm for t in traces], np.float64).reshape(-1, 3), lab_c, FOUND_MM))
    # a hand no candidate found within 30 mm, but whose estimate from a free candidate
    # farther off lands within match_mm, follows that candidate
    free = [i for i, t in enumerate(traces)
            if i not in found.values() and t.network_joints_mm is not None]
    rest = [j for j in range(len(labs)) if not out[j] and j not in found]
    for a, b in match_hands(np.array([_mean_mm(traces[i].network_joints_mm) for i in free]
                                     ).reshape(-1, 3), lab_c[rest], match_mm):
        found[rest[b]] = free[a]
    for j, lab in enumerate(labs):
        if out[j]:
            continue
        if j not in found:
            out[j] = localiser_why(lab) if localiser_why else STAGES[4]
            continue
        t = traces[found[j]]
        if t.network_joints_mm is None or t.fate == "empty":
            out[j] = STAGES[5]
        elif np.linalg.norm(_mean_mm(t.network_joints_mm) - lab) > match_mm:
            out[j] = STAGES[6]
        elif t.fate == "duplicate":
            out[j] = STAGES[7]
        elif t.fate == "fit limit":
            out[j] = STAGES[8]
        elif np.linalg.norm(_mean_mm(t.final_joints_mm) - lab) > match_mm:
            out[j] = STAGES[9]
        else:
            out[j] = STAGES[10]
    return out


def trace_run_hands(pipe, depth_mm: np.ndarray, intrinsics):
    """``pipe.run_hands(depth_mm, intrinsics)`` and a :class:`CandidateTrace` per candidate.

    Runs the pipeline unchanged; the network's estimates are recorded by wrapping the
    pipeline's ``_estimate_at`` for the call (an instance attribute). Returns (HandsResult,
    traces).
    """
    seen: list = []
    original = pipe._estimate_at

    def estimate_at(*args, **kwargs):
        results = original(*args, **kwargs)
        seen.extend((r, np.array(r.joints_mm, np.float64) if r.valid else None)
                    for r in results)
        return results

    pipe._estimate_at = estimate_at
    try:
        out = pipe.run_hands(depth_mm, intrinsics)
    finally:
        del pipe._estimate_at
    reported = {id(h): h for h in out.hands}
    traces = []
    for r, net in seen:
        centre = np.asarray(r.centre_mm, np.float64)
        gone = [d for d in out.dropped if d.centre_mm is not None
                and np.allclose(d.centre_mm, centre, atol=1e-6)]
        fit = getattr(reported.get(id(r), gone[0] if gone else r), "fit", None)
        residual = None if fit is None else float(fit.residual_mm)
        if net is None:
            fate = "empty"
        elif id(r) in reported:
            fate = "reported"
        elif any(d.message.startswith("not taken for a hand") for d in gone):
            fate = "fit limit"
        elif any(d.message.startswith("not reported: the same hand") for d in gone):
            fate = "duplicate"
        else:
            raise RuntimeError(f"candidate at {centre} neither reported nor dropped")
        traces.append(CandidateTrace(centre, net, fate, np.array(r.joints_mm, np.float64)
                                     if fate == "reported" else None, residual))
    return out, traces


def count_stages(stages: list[list[str]]) -> dict[str, int]:
    """{stage: hands} over frames' :func:`lost_stages` (every stage, "reported" last)."""
    flat = [s for frame in stages for s in frame]
    return {k: flat.count(k) for k in (*STAGES, REPORTED)}


__all__ = ["CandidateTrace", "REPORTED", "STAGES", "count_stages", "lost_stages",
           "trace_run_hands", "why_not_localised"]
