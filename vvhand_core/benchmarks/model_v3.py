"""`vvhand bench model` on hands holding things (scene version 3): breakdowns.

The v3 split's frames label every hand in view (``meta["hands"]``); the benchmark scores
hand 0 (the frame's ``joints_mm``), like the other splits:

* oracle: the crop centred on hand 0's joint mean (:func:`.model.score_split`);
* localised: every hand the localiser returns is estimated (``run_hands``, the pipeline's
  ``max_hands``), and the estimate nearest to hand 0 (centre distance) is scored; none
  within :data:`MATCH_MM` counts as no hand. So a frame whose other hand is nearer to the
  camera is not scored on the wrong hand.

Breakdowns (mean 3D joint error over the frames with a hand): per camera placement, per
grasp type, and per joint by what hides it in the frame (``visibility``: visible, hidden
by an object, by the hand itself, by anything else; outside the image).
"""

from __future__ import annotations

import numpy as np

from vvhand_core.benchmarks.results import markdown_table

MATCH_MM = 100.0  # an estimate this far (centre to centre) from hand 0 is another hand


def score_localised_hands(pipe, frames: list):
    """:class:`.model.SplitScore` of hand 0 from ``run_hands`` (module doc)."""
    from vvhand_core.benchmarks.model import score_split

    def nearest_to_hand_0(f):
        centre = f.joints_mm.astype(np.float64).mean(axis=0)
        found = pipe.run_hands(f.depth_mm, f.intrinsics).hands
        dist = [np.linalg.norm(h.joints_mm.mean(axis=0) - centre) for h in found]
        if not found or min(dist) > MATCH_MM:
            return _NO_HAND
        return found[int(np.argmin(dist))]

    return score_split(pipe, frames, False, nearest_to_hand_0)


class _NoHand:
    valid, joints_mm, side = False, None, "unknown"


_NO_HAND = _NoHand()


def _cell(errors: np.ndarray) -> str:
    e = errors[np.isfinite(errors)]
    return f"{e.mean():.1f} ({len(e)})" if len(e) else "-"


def breakdown_tables(frames: list, scores: dict) -> str:
    """Markdown: per placement, per grasp (each centre) and per joint visibility (oracle).

    scores: centre name -> SplitScore of ``frames``.
    """
    metas = [f.meta for f in frames]
    blocks = []
    for key, title in (("placement", "camera placement"), ("grasp", "grasp type")):
        values = sorted({m[key] for m in metas})
        rows = [[v, sum(m[key] == v for m in metas)]
                + [_cell(s.errors_mm[[m[key] == v for m in metas]]) for s in scores.values()]
                for v in values]
        blocks.append(f"Mean error per {title}, mm (frames with a hand):\n\n"
                      + markdown_table([key, "frames", *scores], rows))
    codes = ("visible", "object", "self", "other", "outside")
    rows = []
    for centre, s in scores.items():
        vis = np.array([m["hands"][0]["visibility"] for m in metas])  # (F, J)
        cells = []
        for c in codes:
            e = s.joint_errors_mm[vis == c]
            e = e[np.isfinite(e)]
            cells.append(f"{e.mean():.1f} ({len(e)})" if len(e) else "-")
        rows.append([centre, *cells])
    blocks.append("Mean error per joint by what hides it in the frame, mm (joints):\n\n"
                  + markdown_table(["centre", *codes], rows))
    return "\n\n".join(blocks)
