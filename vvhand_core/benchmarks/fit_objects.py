"""`vvhand bench fit` on hands that hold and touch things (v3 scenes): groups, hidden joints.

The v3 split (:data:`OBJECT_SPLIT`, ``SynthConfig(scene_version=3, seed=9)``; with
``--tuning``: :data:`OBJECT_TUNING_SPLIT`, seed 7, the frames the fit's object terms were
chosen on) gets the main table's rows (network alone vs + fit, oracle centre and localised,
student-N, no mirror pass: the node's defaults) and three tables of its own, all from the
oracle-centre fits:

- per camera placement and grasp type (``frame.meta["placement"]``, ``["grasp"]``) and
  per fitted side (the fit's side against ``meta["side"]``: right or wrong): mean and
  median error before / after;
- per joint visibility (``meta["hands"][0]["visibility"]``: visible, hidden by an object,
  by the hand itself, by something else, outside the image): mean joint error before /
  after over the joints of that kind;
- the fit residual (``FitResult.residual_mm``) of true hands against phantoms: the fitted
  hands of v3 frames (oracle centre, and localised on the labelled hand) and the hands the
  pipeline reports on the same scenes rendered without hands (v2 and v3:
  ``SyntheticHandGenerator.scene(i, hands=False)``, localised, no tracking), with the share
  a residual limit of ``limit_mm`` (the node's ``fit_max_residual_mm``) drops: true hands
  should be kept, phantoms dropped.
"""

from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np

from vvhand_core.benchmarks.results import markdown_table
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.fit import FitConfig
from vvhand_core.fit.stage import FitStage

OBJECT_SPLIT: tuple[str, dict] = ("objects (v3, seed 9)", {"scene_version": 3, "seed": 9})
OBJECT_TUNING_SPLIT: tuple[str, dict] = ("tuning (v3, seed 7)", {"scene_version": 3, "seed": 7})
HAND_FREE = (("v2 scenes without hands (seed 5)", {"scene_version": 2, "seed": 5}),
             ("v3 scenes without hands (seed 9)", {"scene_version": 3, "seed": 9}))
TUNING_HAND_FREE = (("v2 scenes without hands (seed 7)", {"scene_version": 2, "seed": 7}),
                    ("v3 scenes without hands (seed 7)", {"scene_version": 3, "seed": 7}))
VISIBILITY_ORDER = ("visible", "object", "self", "other", "outside")

GROUP_HEADER = ["split", "group", "frames", "mean before", "median before", "mean after",
                "median after", "mean change"]
JOINT_HEADER = ["split", "joints", "count", "mean before", "mean after", "mean change"]
RESIDUAL_HEADER = ["fitted hands", "scenes", "fits", "residual p50", "residual p90",
                   "residual p95", "dropped by the limit"]


def is_object_split(synth: dict) -> bool:
    """Whether a split's frames carry v3 labels (grasp, placement, per-joint visibility)."""
    return synth.get("scene_version") == 3


def _change(before: float, after: float) -> str:
    return f"{after / before - 1.0:+.1%}" if before > 0 else "-"


def group_rows(split: str, frames: list, out: dict) -> list[list[object]]:
    """Rows per placement, grasp type and fitted side of ``vvhand_core.fit.bench.run``'s result.

    ``frames``: the frames ``out`` was measured on, in its order.
    """
    before, after = out["per_frame"]["before_mm"], out["per_frame"]["after_mm"]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(frames):
        groups[f"placement: {f.meta['placement']}"].append(i)
    for i, f in enumerate(frames):
        groups[f"grasp: {f.meta['grasp']}"].append(i)
    for i, (f, fit) in enumerate(zip(frames, out["fits"], strict=True)):
        right = fit.side == f.meta.get("side", "right")
        groups[f"fitted side: {'right' if right else 'wrong'}"].append(i)
    rows = [[split, "all", len(frames), before.mean(), np.median(before), after.mean(),
             np.median(after), _change(before.mean(), after.mean())]]
    order = ("placement", "grasp", "fitted side")
    for name in sorted(groups, key=lambda g: (order.index(g.split(":")[0]), g)):
        ix = groups[name]
        b, a = before[ix], after[ix]
        rows.append([split, name, len(ix), b.mean(), np.median(b), a.mean(), np.median(a),
                     _change(b.mean(), a.mean())])
    return rows


def visibility_rows(split: str, frames: list, starts: list, fits: list) -> list[list[object]]:
    """Mean joint error (mm) before / after per visibility of the joint (module doc).

    starts: the network's joints (21, 3) per frame; fits: the FitResults.
    """
    errors: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for f, start, fit in zip(frames, starts, fits, strict=True):
        gt = np.asarray(f.joints_mm, np.float64)
        eb = np.linalg.norm(np.asarray(start, np.float64) - gt, axis=1)
        ea = np.linalg.norm(np.asarray(fit.joints_mm, np.float64) - gt, axis=1)
        for j, code in enumerate(f.meta["hands"][0]["visibility"]):
            errors[code].append((eb[j], ea[j]))
    rows = []
    for code in sorted(errors, key=lambda c: (VISIBILITY_ORDER + (c,)).index(c)):
        e = np.array(errors[code])
        name = "visible" if code == "visible" else f"hidden: {code}"
        rows.append([split, name, len(e), e[:, 0].mean(), e[:, 1].mean(),
                     _change(e[:, 0].mean(), e[:, 1].mean())])
    return rows


def residual_row(name: str, scenes: int, residual_mm: np.ndarray, limit_mm: float
                 ) -> list[object]:
    """One row of the residual table: percentiles and the share above ``limit_mm``."""
    r = np.asarray(residual_mm, np.float64)
    if not len(r):
        return [name, scenes, 0, "-", "-", "-", "-"]
    dropped = int((r > limit_mm).sum())
    return [name, scenes, len(r), float(np.percentile(r, 50)), float(np.percentile(r, 90)),
            float(np.percentile(r, 95)), f"{dropped} ({dropped / len(r):.0%})"]


def phantom_residuals(pipe, synth: dict, scenes: int, cfg: FitConfig) -> np.ndarray:
    """Fit residuals (mm) of the hands the pipeline reports on scenes without hands.

    Scenes 0..scenes-1 of ``SynthConfig(**synth)`` rendered with no hand in view, the
    pipeline localising (no tracking), the fit of ``cfg`` without its residual limit.
    """
    gen = SyntheticHandGenerator(SynthConfig(**synth))
    stage = FitStage(cfg)
    residuals = []
    for i in range(scenes):
        f = gen.scene(i, hands=False).frame
        r = pipe.run(f.depth_mm, f.intrinsics)
        if r.valid:
            r = copy.copy(r)
            stage.apply(r, f.depth_mm, f.intrinsics)
            residuals.append(r.fit.residual_mm)
    return np.array(residuals, np.float64)


def tables(group: list, joints: list, residual: list, limit_mm: float) -> str:
    """The object split's tables (module doc) as Markdown."""
    return ("Per camera placement and grasp (oracle centre):\n\n"
            + markdown_table(GROUP_HEADER, group)
            + "\n\nPer joint, by what hides it (oracle centre; mean joint error mm):\n\n"
            + markdown_table(JOINT_HEADER, joints)
            + f"\n\nFit residual of true hands and of phantoms (hands reported where none is "
              f"in view); \"dropped by the limit\": residual > {limit_mm:g} mm (the node's "
              f"fit_max_residual_mm):\n\n"
            + markdown_table(RESIDUAL_HEADER, residual) + "\n")
