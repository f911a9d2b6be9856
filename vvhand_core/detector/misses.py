"""Why the detector's ``locate_all`` misses a labelled hand: one cause per missed hand.

For each labelled hand of a synthetic frame (:func:`~vvhand_core.detector.evaluate_hands.
frame_hands`), :func:`diagnose_frame` runs the detector once at a low threshold
(``LOW_SCORE``, the same ``max_peaks``) and rebuilds ``locate_all``'s answer without
tracking from those detections, so the hands it returns are exactly ``locate_all``'s.
A hand not found (no answer within ``FOUND_MM``, greedy matching) gets the first cause
that applies, in this order:

* ``taken by the other hand``: an answer within ``NEAR_MM`` of this hand was matched to
  another labelled hand (one peak for two hands close together);
* ``dropped: duplicate``: a detection within ``FOUND_MM`` existed but lay within
  ``merge_radius_mm`` of a stronger one (``tracks.merge_duplicates``);
* ``dropped: below threshold`` / ``dropped: below relative`` / ``dropped: max_hands``: a
  detection within ``FOUND_MM`` survived merging but scored under ``threshold``, under
  ``relative_threshold`` x the frame's best, or was cut by ``max_hands``;
* ``depth off``: a detection (any score >= ``LOW_SCORE``) on the hand's ray, i.e. within
  ``FOUND_MM`` of the centre once moved along its ray to the hand's depth, but none within
  ``FOUND_MM`` in 3D (the image place is right, the depth is wrong: the refiner);
* ``placed 30-60 mm off``: a detection within ``NEAR_MM`` in 3D, none on the ray (the
  heat-map peak and the refiner's offsets not precise enough);
* ``no peak``: no detection near the hand at all.

Each hand also gets one condition (first that applies): ``cut by image edge`` (centre
outside the image or at least ``EDGE_SHARE`` of its joints ``outside``), ``little depth
on the hand`` (under ``DEPTH_SHARE`` of its joints inside the image have valid depth at
their pixel: closer than the sensor's range, dropout), ``hidden by object`` (at least
``HIDDEN_SHARE`` of its joints' visibility ``object``), ``hidden by arm or other hand``
(at least ``HIDDEN_SHARE`` ``other``: an arm, the other hand, the body), ``near the other
hand`` (another labelled hand within ``CLOSE_MM``), else ``clear``. Versions 1 and 2 carry
no visibility codes and no per-hand joints besides ``joints_mm``: their hands are judged
on those.

A v3 frame's hands that its meta leaves out because their centre lies outside the image,
but which reach into it (:func:`~vvhand_core.detector.offimage.frame_offimage_hands`), are
scored too, after the labelled hands: found when an answer not matched to a labelled hand
lies within ``FOUND_MM`` of their (off-image) centre. Their outcomes carry
``labelled=False`` and the condition ``centre outside image (not labelled)``; they count
in no total of labelled hands (:func:`miss_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vvhand_core.data.base import DepthFrame
from vvhand_core.detector.evaluate_hands import FOUND_MM, NEAR_MM, frame_hands, match_greedy
from vvhand_core.detector.offimage import frame_offimage_hands
from vvhand_core.detector.tracks import merge_duplicates

LOW_SCORE = 0.05  # detections scoring at least this are looked at
EDGE_SHARE = 0.25
HIDDEN_SHARE = 0.5
DEPTH_SHARE = 0.5
CLOSE_MM = 100.0

CAUSES = ("taken by the other hand", "dropped: duplicate", "dropped: below threshold",
          "dropped: below relative", "dropped: max_hands", "depth off",
          "placed 30-60 mm off", "no peak")
CONDITIONS = ("cut by image edge", "little depth on the hand", "hidden by object",
              "hidden by arm or other hand", "near the other hand", "clear")
OFF_IMAGE = "centre outside image (not labelled)"


@dataclass(frozen=True)
class HandOutcome:
    """One labelled hand: found or why not (a :data:`CAUSES` entry), and its setting."""

    found: bool
    cause: str | None  # None when found
    condition: str  # a CONDITIONS entry
    placement: str | None
    grasp: str | None
    labelled: bool = True  # False: a hand centred outside the image (module doc)


def _joints(frame: DepthFrame, k: int) -> tuple[np.ndarray, list[str]]:
    """Hand ``k``'s joints (21, 3) mm and visibility codes ([] where the frame has none)."""
    hands_meta = frame.meta.get("hands")
    if hands_meta:
        h = hands_meta[k]
        return np.asarray(h["joints_mm"], np.float64), list(h.get("visibility", []))
    return np.asarray(frame.joints_mm, np.float64), []


def _depth_share(frame: DepthFrame, joints: np.ndarray) -> float:
    """Share of the joints inside the image whose pixel has valid depth (1.0 if none)."""
    intr, depth = frame.intrinsics, np.asarray(frame.depth_mm)
    h, w = depth.shape
    z = np.maximum(joints[:, 2], 1e-6)
    u = np.floor(joints[:, 0] / z * intr.fx + intr.cx).astype(int)
    v = np.floor(joints[:, 1] / z * intr.fy + intr.cy).astype(int)
    inside = (joints[:, 2] > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    if not inside.any():
        return 1.0
    d = depth[v[inside], u[inside]].astype(np.float64)
    return float(np.mean(np.isfinite(d) & (d > 0)))


def _condition(frame: DepthFrame, k: int, centre: np.ndarray, others: list[np.ndarray]
               ) -> str:
    intr = frame.intrinsics
    joints, codes = _joints(frame, k)
    u = centre[0] / centre[2] * intr.fx + intr.cx if centre[2] > 0 else -1.0
    v = centre[1] / centre[2] * intr.fy + intr.cy if centre[2] > 0 else -1.0
    inside = 0 <= u < intr.width and 0 <= v < intr.height
    if not inside or (codes and codes.count("outside") >= EDGE_SHARE * len(codes)):
        return CONDITIONS[0]
    if _depth_share(frame, joints) < DEPTH_SHARE:
        return CONDITIONS[1]
    if codes and codes.count("object") >= HIDDEN_SHARE * len(codes):
        return CONDITIONS[2]
    if codes and codes.count("other") >= HIDDEN_SHARE * len(codes):
        return CONDITIONS[3]
    if any(np.linalg.norm(o - centre) < CLOSE_MM for o in others):
        return CONDITIONS[4]
    return CONDITIONS[5]


def _on_ray(c: np.ndarray, centre: np.ndarray) -> float:
    """Distance (mm) from ``centre`` to detection ``c`` moved along its ray to centre's z."""
    if c[2] <= 0:
        return float("inf")
    return float(np.linalg.norm(c * (centre[2] / c[2]) - centre))


def _cause(k: int, centre: np.ndarray, raw: list, merged: list[int], answer: list[int],
           pairs: list[tuple[int, int]], cfg) -> str:
    """The first cause of the module docstring for missed hand ``k``."""
    for i, j in pairs:
        if j != k and np.linalg.norm(raw[answer[i]][1] - centre) <= NEAR_MM:
            return CAUSES[0]
    near = [m for m, (_, c) in enumerate(raw) if np.linalg.norm(c - centre) <= FOUND_MM]
    if near:
        kept = [m for m in near if m in merged]
        if not kept:
            return CAUSES[1]
        best = max((raw[m][0] for m in merged), default=0.0)
        s = max(raw[m][0] for m in kept)
        if s < cfg.threshold:
            return CAUSES[2]
        if s < cfg.relative_threshold * best:
            return CAUSES[3]
        return CAUSES[4]
    if any(_on_ray(c, centre) <= FOUND_MM for _, c in raw):
        return CAUSES[5]
    if any(np.linalg.norm(c - centre) <= NEAR_MM for _, c in raw):
        return CAUSES[6]
    return CAUSES[7]


def untracked_answer(det, frame: DepthFrame) -> tuple[list, list[int], list[int]]:
    """``locate_all``'s answer without tracking, rebuilt from low-scoring detections.

    Returns (raw: every (score, centre (3,) mm) scoring >= ``LOW_SCORE`` or the
    threshold, best first; merged: indices into raw kept by duplicate merging; answer:
    indices into raw that ``locate_all`` returns, best first).
    """
    cfg = det.cfg
    raw = det.candidates(frame.depth_mm, frame.intrinsics, min(LOW_SCORE, cfg.threshold))
    merged = merge_duplicates(raw, cfg.merge_radius_mm)
    best = max((raw[m][0] for m in merged), default=0.0)
    strong = [m for m in merged
              if raw[m][0] >= cfg.threshold and raw[m][0] >= cfg.relative_threshold * best]
    return raw, merged, strong[:cfg.max_hands]  # merge_duplicates: best first (select_new)


def diagnose_frame(det, frame: DepthFrame) -> list[HandOutcome]:
    """One :class:`HandOutcome` per labelled hand of ``frame`` for detector ``det``.

    ``det``: a :class:`~vvhand_core.detector.localiser.DetectorLocaliser` (its config's
    thresholds, ``merge_radius_mm`` and ``max_hands``; tracking is not used).
    """
    cfg = det.cfg
    labelled, _ = frame_hands(frame)
    if not labelled:
        return []
    raw, merged, answer = untracked_answer(det, frame)
    centres = np.array([h.centre_mm for h in labelled], np.float64)
    cands = np.array([raw[m][1] for m in answer], np.float64).reshape(-1, 3)
    pairs = match_greedy(cands, centres, FOUND_MM)
    found = {j for _, j in pairs}
    out = []
    for k, hand in enumerate(labelled):
        others = [c for j, c in enumerate(centres) if j != k]
        condition = _condition(frame, k, centres[k], others)
        cause = None if k in found else _cause(k, centres[k], raw, merged, answer, pairs, cfg)
        out.append(HandOutcome(k in found, cause, condition, frame.meta.get("placement"),
                               hand.grasp))
    outside = frame_offimage_hands(frame)
    if outside:
        used = {i for i, _ in pairs}
        rest = [i for i in range(len(answer)) if i not in used]
        got = {j for _, j in match_greedy(cands[rest].reshape(-1, 3), np.array(outside),
                                          FOUND_MM)}
        for j, centre in enumerate(outside):
            cause = None if j in got else _cause(-1, centre, raw, merged, answer, pairs, cfg)
            out.append(HandOutcome(j in got, cause, OFF_IMAGE, frame.meta.get("placement"),
                                   None, labelled=False))
    return out


def miss_rows(outcomes: list[HandOutcome], key: str) -> list[list[object]]:
    """Rows [group, hands, found %, missed, one count per cause] grouped by ``key``.

    ``key``: "placement", "grasp" or "condition"; a last row "all" sums every group of
    labelled hands. Hands not labelled (``labelled=False``) have a row of their own by
    condition and count nowhere else.
    """
    labelled = [o for o in outcomes if o.labelled]
    groups: dict[str, list[HandOutcome]] = {}
    for o in outcomes if key == "condition" else labelled:
        groups.setdefault(str(getattr(o, key)), []).append(o)
    rows = []
    for name, group in [*sorted(groups.items()), ("all", labelled)]:
        missed = [o for o in group if not o.found]
        found = 100.0 * (len(group) - len(missed)) / max(len(group), 1)
        rows.append([name, len(group), f"{found:.1f} %", len(missed),
                     *[sum(o.cause == c for o in missed) for c in CAUSES]])
    return rows


MISS_HEADER = ["hands", "found", "missed", *CAUSES]
