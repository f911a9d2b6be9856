"""How well a detector lifts labelled hands to 3D from their true image position.

The localiser's commonest miss on v3 scenes is a peak on the hand in the image whose lift
(the refiner's depth, :meth:`DetectorLocaliser._lift`) lands far off in depth. This module
takes the heat-map's peak out of the question: each labelled hand is lifted from its true
heat point (``detector.data.target_row``: the projected joint mean, or its border point
for a hand centred outside the image), with the heat-map's dz read at that cell, exactly
as the localiser lifts a peak there. The hands are grouped by how far their centre lies
behind ``z_ref``, the reference depth of the refiner's patch (``ops.patch_at``: a low
percentile of the depth at the patch's centre; negative: in front of it). An object, the
other hand or the forearm nearer the camera at the hand's centre puts it far behind.

:func:`lift_hands` gives one :class:`HandLift` per labelled hand; :func:`lift_rows` the
table `vvhand bench localiser --lift` prints. Numpy only but the detector's own runtime.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from vvhand_core.camera import back_project_np
from vvhand_core.data.base import DepthFrame
from vvhand_core.detector.data import hand_centres_mm, target_row
from vvhand_core.detector.evaluate_hands import FOUND_MM
from vvhand_core.detector.ops import (
    STRIDE,
    Peak,
    canonical_depth,
    encode_input,
    patch_at,
)

# edges (mm) of the groups by how far a hand's centre lies behind z_ref
BEHIND_EDGES_MM = (0.0, 30.0, 60.0, 100.0, 200.0)
LIFT_HEADER = ["hand centre behind z_ref", "hands", "lifted > 30 mm off",
               "depth error mean mm"]


@dataclass
class HandLift:
    """One labelled hand's lift.

    ``behind_mm``: its centre's depth - z_ref (None: no depth at the patch's centre);
    ``error_mm``: the lift's 3D distance from the centre (inf: no lift);
    ``depth_error_mm``: lift depth - centre depth (NaN: no lift).
    """

    behind_mm: float | None
    error_mm: float
    depth_error_mm: float


def lift_hands(det, frame: DepthFrame) -> list[HandLift]:
    """Each labelled hand of ``frame`` lifted by ``det`` from its true heat point.

    ``det``: a DetectorLocaliser (either runtime). In the order of
    ``detector.data.hand_centres_mm``; a hand centred behind the camera is left out.
    """
    cfg, lo, hi = det.config, det.cfg.min_depth_mm, det.cfg.max_depth_mm
    depth = np.asarray(frame.depth_mm)
    canon, cam = canonical_depth(depth, frame.intrinsics, cfg.focal_px,
                                 det._canonical_index(frame.intrinsics, depth.shape))
    heat = det.runner.heat(encode_input(canon, lo, hi)[None])  # (2, H4, W4)
    out = []
    for centre in hand_centres_mm(frame):
        centre = np.asarray(centre, np.float64)
        row = target_row(canon, cam, centre, cfg, lo, hi)
        if row is None:
            continue
        hu, hv = float(row[5]), float(row[6])
        i = min(max(int(round(hv / STRIDE)), 0), heat.shape[1] - 1)
        j = min(max(int(round(hu / STRIDE)), 0), heat.shape[2] - 1)
        got = patch_at(canon, int(round(hu)), int(round(hv)), lo, hi, det.refine_border)
        behind = None if got is None else float(centre[2] - got[1])
        lifted = det._lift(canon, [Peak(1.0, hu, hv, float(heat[1, i, j]))])[0]
        if lifted is None:
            out.append(HandLift(behind, float("inf"), float("nan")))
            continue
        u, v, z = lifted
        point = back_project_np((u, v), z, cam)
        out.append(HandLift(behind, float(np.linalg.norm(point - centre)),
                            float(point[2] - centre[2])))
    return out


def _group(behind: float | None) -> str:
    if behind is None:
        return "no depth at the centre"
    edges = BEHIND_EDGES_MM
    if behind < edges[0]:
        return f"< {edges[0]:g} mm (in front)"
    for a, b in zip(edges, edges[1:]):
        if behind < b:
            return f"{a:g}-{b:g} mm"
    return f">= {edges[-1]:g} mm"


def lift_rows(lifts: Iterable[HandLift]) -> list[list[object]]:
    """Rows of :data:`LIFT_HEADER`: per group (in order), then "all"; empty groups left out.

    "lifted > 30 mm off": the share whose lift lies farther than ``FOUND_MM`` (3D) from
    the joint mean, the localiser's "found" radius.
    """
    lifts = list(lifts)
    order = [_group(None), _group(-1.0), *(_group(a) for a in BEHIND_EDGES_MM)]
    groups: dict[str, list[HandLift]] = {g: [] for g in order}
    for x in lifts:
        groups[_group(x.behind_mm)].append(x)
    rows = []
    for name, members in [*groups.items(), ("all", lifts)]:
        if not members:
            continue
        off = np.mean([x.error_mm > FOUND_MM for x in members])
        depth = [x.depth_error_mm for x in members if np.isfinite(x.depth_error_mm)]
        rows.append([name, len(members), f"{100 * off:.1f} %",
                     f"{np.mean(depth):+.1f}" if depth else "-"])
    return rows
