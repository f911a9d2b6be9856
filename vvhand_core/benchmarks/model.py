"""A model's accuracy on the synthetic test splits: oracle vs localised centre, per side.

Splits: the v1, v2 and v3 test splits, frames 0..F-1 (:mod:`.splits`; ``--splits``); v3
adds breakdowns per camera placement, grasp type and joint visibility and scores its
localised rows through ``run_hands`` (:mod:`.model_v3`). The pipeline runs student-N
(confidence fusion) with the crop centred on the ground-truth joint mean ("oracle") and
on the localiser's centre ("localised", tracking off: every frame on its own). Reported per
split and centre: mean / median / p90 3D joint error over the frames with a hand found,
the no-hand rate, the error per side (v2), how often the side read from the joints'
chirality is right (vvhand_core.side), and two references on the oracle rows: every joint
at the ground-truth centre, and the thumb-to-pinky tip distance (a collapsed skeleton has
a small one). Prints the table and appends it to docs/results.md (or $VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from vvhand_core.assets import default_model_path
from vvhand_core.benchmarks.model_v3 import breakdown_tables, score_localised_hands
from vvhand_core.benchmarks.results import append_section, markdown_table
from vvhand_core.benchmarks.splits import SPLITS, V3_SPLIT, split_frames, student_pipeline
from vvhand_core.contact_sheet import Panel, write_contact_sheet
from vvhand_core.pipeline import VirtualViewPipeline


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench model`."""
    parser.add_argument("--frames", type=int, default=200, help="frames per split")
    parser.add_argument("--num-views", type=int, default=3, help="N views (student-N)")
    parser.add_argument("--model", default="", help="checkpoint; default: the shipped model")
    parser.add_argument("--sheet", default="docs/contact_sheet.png",
                        help="contact sheet of the new scenes, localised ('' = none)")
    parser.add_argument("--sheet-v3", default="docs/contact_sheet_v3.png",
                        help="contact sheet of the v3 split (hands holding things), "
                             "localised ('' = none)")
    parser.add_argument("--splits", default="v1,v2,v3",
                        help="comma-separated: v1 (seed 3), v2 (seed 5), v3 (seed 9)")
    parser.add_argument("--no-write", action="store_true", help="print only")


@dataclass
class SplitScore:
    """Per-frame outcomes of one split and centre."""

    errors_mm: np.ndarray      # (F,) mean joint error per frame; NaN where no hand was found
    sides: list[str]           # ground-truth side per frame
    told: list[str]            # side the pipeline decided ("unknown" when it could not tell)
    centre_errors_mm: np.ndarray  # (F,) every joint at the ground-truth centre
    span_mm: np.ndarray        # (F, 2) thumb-pinky tip distance: predicted, ground truth
    pred_mm: list              # (J, 3) per frame, None where no hand was found
    joint_errors_mm: np.ndarray  # (F, J) per joint; NaN rows where no hand was found


def score_split(pipe: VirtualViewPipeline, frames: list, oracle: bool,
                estimate=None) -> SplitScore:
    """Run the pipeline on every frame (oracle or localised centre).

    ``estimate(frame)``: the hand to score, an object with ``valid``, ``joints_mm`` and
    ``side`` (default: ``pipe.run`` at the labelled centre or the localiser's).
    """
    names = list(pipe.skeleton.joint_names)
    tips = names.index("thumb_tip"), names.index("pinky_tip")
    err, told, span, centre_err, preds = [], [], [], [], []
    per_joint = np.full((len(frames), len(names)), np.nan)
    for i, f in enumerate(frames):
        gt = f.joints_mm.astype(np.float64)
        r = (estimate(f) if estimate is not None else
             pipe.run(f.depth_mm, f.intrinsics, centre_mm=gt.mean(axis=0) if oracle else None))
        centre_err.append(np.linalg.norm(gt - gt.mean(axis=0), axis=-1).mean())
        gt_span = np.linalg.norm(gt[tips[0]] - gt[tips[1]])
        if not r.valid:
            err.append(np.nan)
            told.append("unknown")
            span.append((np.nan, gt_span))
            preds.append(None)
            continue
        j = r.joints_mm.astype(np.float64)
        per_joint[i] = np.linalg.norm(j - gt, axis=-1)
        err.append(per_joint[i].mean())
        told.append(r.side)
        preds.append(j)
        span.append((np.linalg.norm(j[tips[0]] - j[tips[1]]), gt_span))
    return SplitScore(np.array(err), [f.meta.get("side", "right") for f in frames], told,
                      np.array(centre_err), np.array(span), preds, per_joint)


def _mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else float("nan")


def row(split: str, centre: str, s: SplitScore) -> list[object]:
    """One table row."""
    ok = np.isfinite(s.errors_mm)
    e = s.errors_mm[ok]
    sides, told = np.array(s.sides), np.array(s.told)
    per_side = " / ".join(f"{_mean(s.errors_mm[sides == side]):.1f} ({(sides == side).sum()})"
                          for side in ("left", "right"))
    decided = ok & (told != "unknown")
    right = (told == sides) & decided
    side_text = (f"{right.sum() / max(ok.sum(), 1):.0%} right, "
                 f"{(ok & ~decided).sum() / max(ok.sum(), 1):.0%} unknown")
    spans = s.span_mm[ok]
    return [split, centre, int(ok.sum()), f"{1 - ok.mean():.1%}",
            f"{e.mean():.2f}" if len(e) else "-", f"{np.median(e):.2f}" if len(e) else "-",
            f"{np.percentile(e, 90):.2f}" if len(e) else "-", per_side, side_text,
            f"{np.nanmean(spans[:, 0]):.0f} / {np.nanmean(spans[:, 1]):.0f}" if len(e) else "-",
            f"{s.centre_errors_mm.mean():.1f}"]


def joint_groups(joint_names: list[str]) -> dict[str, list[int]]:
    """Joint indices per group: the wrist, each finger (by name prefix), and the tips."""
    groups: dict[str, list[int]] = {}
    for k, name in enumerate(joint_names):
        groups.setdefault(name.split("_")[0], []).append(k)
    groups["tips"] = [k for k, n in enumerate(joint_names) if n.endswith("_tip")]
    return groups


def group_row(split: str, centre: str, s: SplitScore, groups: dict[str, list[int]]) -> list:
    """Mean error (mm) per joint group over the frames where a hand was found."""
    ok = np.isfinite(s.joint_errors_mm).all(axis=1)
    e = s.joint_errors_mm[ok]
    return [split, centre, *[f"{e[:, idx].mean():.1f}" if len(e) else "-"
                             for idx in groups.values()]]


def _sheet(frames, score, path: str, title: str, skeleton) -> None:
    panels = [Panel(f.depth_mm, f.intrinsics, p, f.joints_mm,
                    f"#{i} {f.meta.get('side')}"
                    + (f" {f.meta['placement']} {f.meta['grasp']}"
                       if f.meta.get("scene_version") == 3 else "") + f", told {t}")
              for i, (f, p, t) in enumerate(zip(frames, score.pred_mm, score.told))
              if p is not None]
    write_contact_sheet(panels, skeleton, path, title)


def run(args: argparse.Namespace) -> int:
    """Measure the chosen splits with both centres, print, append to docs/results.md."""
    model = args.model or str(default_model_path())
    pipe = student_pipeline(model, args.num_views)
    rows, by_group, extra = [], [], ""
    groups = joint_groups(list(pipe.skeleton.joint_names))
    chosen = {"v1": SPLITS[0], "v2": SPLITS[1], "v3": V3_SPLIT}
    wanted = [k.strip() for k in args.splits.split(",") if k.strip()]
    unknown = sorted(set(wanted) - set(chosen))
    if unknown:
        raise SystemExit(f"vvhand bench model: unknown split(s) {unknown}; known: v1, v2, v3")
    for name, synth in (chosen[k] for k in wanted):
        frames = split_frames(synth, args.frames, name)
        v3 = synth.get("scene_version") == 3
        scores = {}
        for centre, oracle in (("oracle", True), ("localised", False)):
            score = (score_localised_hands(pipe, frames) if v3 and not oracle
                     else score_split(pipe, frames, oracle))
            scores[centre] = score
            rows.append(row(name, centre, score))
            by_group.append(group_row(name, centre, score, groups))
        title = f"{name}, localised, student-{args.num_views}: {model}"
        if args.sheet and synth.get("scene_version") == 2:
            _sheet(frames, score, args.sheet, title, pipe.skeleton)
        if v3:
            extra = f"\n\n**{name}**\n\n" + breakdown_tables(frames, scores) + "\n"
            if args.sheet_v3:
                _sheet(frames, score, args.sheet_v3, title, pipe.skeleton)
    table = markdown_table(["split", "centre", "frames with a hand", "no hand",
                            "mean mm", "median mm", "p90 mm", "mean mm left / right (frames)",
                            "side from the joints", "thumb-pinky tip mm (pred / true)",
                            "all joints at the true centre mm"], rows)
    body = (f"Model `{model}`, student-{args.num_views}, confidence fusion, {args.frames} "
            f"frames per split, localiser {pipe.config.localiser} without tracking. Errors "
            f"are mean 3D joint errors over the frames where a hand was found."
            + (f" Contact sheet (new scenes, localised): `{args.sheet}`." if args.sheet else "")
            + (f" v3: `{args.sheet_v3}`; its localised rows score the estimate nearest to "
               "the labelled hand 0 among every hand found (`run_hands`)." if "v3" in wanted
               else "")
            + f"\n\n{table}\n\nMean error per joint group (mm):\n\n"
            + markdown_table(["split", "centre", *groups], by_group) + "\n" + extra)
    print(body)
    if not args.no_write:
        cmd = (f"vvhand bench model --frames {args.frames} --num-views {args.num_views} "
               f"--splits {args.splits}" + (f" --model {args.model}" if args.model else ""))
        path = append_section("Model accuracy on the synthetic test splits", cmd, body)
        print(f"appended to {path}")
    return 0
