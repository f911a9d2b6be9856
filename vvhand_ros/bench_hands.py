"""Every hand of a frame, scored: hands reported, extra hands, per-hand error, side, time.

`vvhand bench hands`: the pipeline the node runs with its default parameters
(node_params.PARAMETERS: student-3, learned detector, hand-model fit with its residual
limit, backend auto, ``max_hands`` as given) runs ``run_hands`` offline on the v3 test
split (``SynthConfig(scene_version=3, seed=9)``, frames 0..F-1: hands holding things,
every hand labelled, the other hand in about 40 % of the frames), each frame a new
stream (tracking reset), on one thread. Each frame is scored against every labelled hand
(:mod:`vvhand_core.hand_scores`: greedy matching of joint means within 60 mm; missed and
extra hands; mean joint error of matched hands; side right among the hands called left or
right). Rows: frames with two labelled hands, frames with one, all; per ``--max-hands``
value and ``--variants`` entry: ``node`` (the defaults), ``no-limit`` (the fit without its
residual limit: no hand dropped as a phantom), ``no-fit`` (the network's joints),
``mirror`` (the defaults with the mirror pass: networks on the flipped frame too),
``alternate`` (the defaults with node parameter ``alternate_model`` set to
``--alternate-model``, "grasp" by default: every crop estimated by a second pose model too
and the fit keeping the estimate it explains better; the share of reported hands whose
estimate is the alternate model's is printed): where hands are lost, the localiser or the
residual limit. Times: the pipeline's own per-frame
total (ms, one thread; the frames' generation is not counted). ``--side-margins``: a
second table, the side called only where the hand's side evidence (the fit's, else the
network's chirality, as log-odds) reaches each margin (vvhand_core.hand_scores.
side_at_margins); choose margins with ``--split tuning`` (seed 7), report on the test
split. ``--sheet PATH``: with the ``node`` and ``alternate`` variants, a picture of the
hands the node drops at the fit limit and the alternate reports
(:mod:`vvhand_core.benchmarks.hands_sheet`). ``--stages``: a third table, per labelled
hand the stage it was lost at (:mod:`vvhand_core.hand_losses`: localiser rules, crop,
network > 60 mm, duplicate rule, fit limit, fit moved, matching), with the localiser
alone (its rule without tracking on the same detector peaks, found within 30 mm as
``vvhand bench localiser``) beside it, and per grasp of the labelled hand the hands lost
at the fit limit. ``--hand-free N``: also the split's first N scenes without their hands
(``generator.scene(i, hands=False)``), frames where a hand is reported;
``--hand-free-from v2``: the person scenes of v2 instead (seed 5 for the test split, 7
for the tuning split, as ``vvhand bench localiser``). ``--fit-max-residual-m
L``: the ``node`` variant with the fit's residual limit L (m) instead of the default.
``--residual-sweep-m L1,L2``: from the ``no-limit`` variant's run, each limit's rows as
if the fit had dropped the hands whose residual exceeds it (each frame is a new stream,
so the limit changes nothing else: a run with ``--fit-max-residual-m`` gives the same
row). Printed and appended to docs/results.md (or $VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse

import numpy as np

VARIANTS = ("node", "no-limit", "no-fit", "mirror", "alternate")
HEADER = ["max_hands, variant", "frames", "labelled hands", "reported %",
          "extra hands (% of labelled)", "per-hand error mean mm", "median mm",
          "side called %", "side right %", "pipeline ms/frame p50", "p95"]
SPLITS = {"test": {"scene_version": 3, "seed": 9}, "tuning": {"scene_version": 3, "seed": 7}}
STAGE_HEADER = ["max_hands, variant", "stage", "two-hand frames", "one-hand frames",
                "all frames"]
GRASP_HEADER = ["max_hands, variant", "grasp", "labelled hands", "lost at the fit limit",
                "reported"]
FREE_V2 = {"test": {"scene_version": 2, "seed": 5}, "tuning": {"scene_version": 2, "seed": 7}}
FREE_HEADER = ["max_hands, variant", "hand-free frames", "frames with a hand", "hands"]
SWEEP_HEADER = ["max_hands, variant", "limit m", "two-hand frames reported %", "extra",
                "error mean mm", "one-hand frames reported %", "extra", "error mean mm",
                "hand-free frames with a hand",
                "labelled hands it drops (all frames), their error mean"]
SIDE_HEADER = ["max_hands, variant", "side margin", "matched hands called %", "side right %"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench hands`."""
    parser.add_argument("--frames", type=int, default=300, help="frames of the v3 test split")
    parser.add_argument("--max-hands", default="2",
                        help="comma-separated max_hands values to run (e.g. 2,1)")
    parser.add_argument("--variants", default="node",
                        help=f"comma-separated among {', '.join(VARIANTS)} (module doc)")
    parser.add_argument("--split", choices=tuple(SPLITS), default="test",
                        help="v3 test split (seed 9) or tuning split (seed 7)")
    parser.add_argument("--side-margins", default="",
                        help="comma-separated margins (e.g. 0.8,0.9,0.95): side called / "
                             "right when the side evidence must reach each (module doc)")
    parser.add_argument("--stages", action="store_true",
                        help="also where each unreported hand was lost (module doc)")
    parser.add_argument("--hand-free", type=int, default=0,
                        help="also this many hand-free scenes of the split (module doc)")
    parser.add_argument("--hand-free-from", choices=("split", "v2"), default="split",
                        help="hand-free scenes of the v3 split or of v2 (module doc)")
    parser.add_argument("--fit-max-residual-m", type=float, default=None,
                        help="the node variant's fit residual limit (m; default: the node's)")
    parser.add_argument("--residual-sweep-m", default="",
                        help="comma-separated limits (m) replayed on the no-limit variant")
    parser.add_argument("--model", default="", help="checkpoint; default: the shipped model")
    parser.add_argument("--alternate-model", default="grasp",
                        help="the alternate variant's alternate_model (a packaged name or "
                             "a checkpoint)")
    parser.add_argument("--sheet", default="",
                        help="with variants node and alternate: a picture of hands the node "
                             "drops and the alternate reports ('' = none)")
    parser.add_argument("--no-write", action="store_true", help="print only")


def node_default_options(max_hands: int, variant: str = "node",
                         limit_m: float | None = None) -> dict:
    """The pipeline options of hand_pose_node at its default parameters.

    node_params.pipeline_options (what the node builds) of node_params.PARAMETERS'
    defaults; ``variant``: ``no-limit`` sets fit_max_residual_m 0, ``no-fit`` fit false,
    ``mirror`` mirror true, ``alternate`` the defaults (its second model is
    ``load_pipeline``'s; ValueError otherwise); ``limit_m``: the node variant's
    fit_max_residual_m instead.
    """
    from vvhand_ros.node_params import PARAMETERS, pipeline_options

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    d = {name: default for name, default, *_ in PARAMETERS}
    d["fit"] = d["fit"] and variant != "no-fit"
    d["fit_max_residual_m"] = 0.0 if variant == "no-limit" else d["fit_max_residual_m"]
    d["mirror"] = d["mirror"] or variant == "mirror"
    if variant == "node" and limit_m is not None:
        d["fit_max_residual_m"] = limit_m
    d["max_hands"] = max_hands
    return pipeline_options(d.__getitem__)


def measure(pipe, frames, stages: list | None = None, kept: list | None = None,
            outs: list | None = None) -> tuple[list, list[float], list[int]]:
    """(FrameScore per frame, pipeline ms per frame, labelled hands per frame).

    ``kept`` (a list): per frame, its reported hands appended; ``outs``: its HandsResult.
    ``stages`` (a list): per frame, appended (lost stage per labelled hand, localiser
    alone found per labelled hand) (:func:`frame_stages`).
    """
    from vvhand_core.hand_scores import score_frame

    scores, times, counts = [], [], []
    for f in frames:
        pipe.reset_tracking()
        if stages is None:
            out = pipe.run_hands(f.depth_mm, f.intrinsics)
        else:
            out, found = frame_stages(pipe, f)
            stages.append(found)
        if kept is not None:
            kept.append(list(out.hands))
        if outs is not None:
            outs.append(out)
        hands = f.meta["hands"]
        scores.append(score_frame([h.joints_mm for h in out.hands], [h.side for h in out.hands],
                                  [np.asarray(h["joints_mm"]) for h in hands],
                                  [h.get("side") for h in hands],
                                  [side_evidence_of(h) for h in out.hands]))
        times.append(out.timings_ms["total"])
        counts.append(len(hands))
    return scores, times, counts


def frame_stages(pipe, frame):
    """(HandsResult, (lost stage per labelled hand, localiser alone found per hand)).

    The detector's peaks at ``track_threshold`` (the lowest it uses) on the pipeline's
    cleaned depth say why a hand no candidate found was lost; its ``locate_all`` rule
    without tracking on the same peaks is the localiser alone.
    """
    from vvhand_core.detector.localiser import hands_without_tracks
    from vvhand_core.frame_flow import clean_depth
    from vvhand_core.hand_losses import FOUND_MM, lost_stages, trace_run_hands, why_not_localised
    from vvhand_core.hand_scores import match_hands

    loc = pipe._localiser
    depth = clean_depth(np.asarray(frame.depth_mm)[None])[0]
    peaks = loc.candidates(depth, frame.intrinsics, loc.cfg.track_threshold)
    out, traces = trace_run_hands(pipe, frame.depth_mm, frame.intrinsics)
    labs = [np.asarray(h["joints_mm"], np.float64) for h in frame.meta["hands"]]
    lost = lost_stages(labs, traces, lambda c: why_not_localised(c, peaks, loc.cfg))
    alone = [h.centre_mm for h in hands_without_tracks(peaks, loc.cfg)]
    pairs = match_hands(np.array(alone).reshape(-1, 3),
                        np.array([j.mean(0) for j in labs]).reshape(-1, 3), FOUND_MM)
    found = [any(j == k for _, k in pairs) for j in range(len(labs))]
    return out, (lost, found)


def stage_rows(label: str, stages: list, counts: list[int]) -> list[list[object]]:
    """Rows: per stage (and the localiser alone), hands of two-hand / one-hand / all frames."""
    from vvhand_core.hand_losses import REPORTED, STAGES

    groups = [[i for i, c in enumerate(counts) if keep is None or c == keep]
              for keep in (2, 1, None)]
    lost = [[s for i in ix for s in stages[i][0]] for ix in groups]
    alone = [[x for i in ix for x in stages[i][1]] for ix in groups]

    def cell(n: int, of: int) -> str:
        return f"{n} ({100.0 * n / of:.1f} %)" if of else "-"
    rows = [[label, "localiser alone: found within 30 mm",
             *(cell(sum(a), len(a)) for a in alone)]]
    rows += [[label, k, *(cell(x.count(k), len(x)) for x in lost)] for k in (*STAGES, REPORTED)]
    return rows


def grasp_rows(label: str, stages: list, frames) -> list[list[object]]:
    """Per grasp of the labelled hands: hands, lost at the fit limit, reported (n (%))."""
    from vvhand_core.hand_losses import REPORTED

    groups: dict[str, list[str]] = {}
    for (lost, _), f in zip(stages, frames, strict=True):
        for st, h in zip(lost, f.meta["hands"], strict=True):
            groups.setdefault(str(h.get("grasp")), []).append(st)

    def cell(n: int, of: int) -> str:
        return f"{n} ({100.0 * n / of:.1f} %)"
    return [[label, g, len(v), cell(v.count("fit limit"), len(v)), cell(v.count(REPORTED),
                                                                         len(v))]
            for g, v in sorted(groups.items())]


def residual_mm_of(result) -> float:
    """The hand's fit residual (mm; 0 without a fit)."""
    fit = getattr(result, "fit", None)
    return 0.0 if fit is None else float(fit.residual_mm)


def sweep_rows(limits_m: list[float], kept: list, frames, counts: list[int],
               free_kept: list) -> list[list[object]]:
    """Per limit: reported %, extras, mean error mm (two-, one-hand frames), hand-free hits.

    Last column: the no-limit run's hands matched to a labelled hand that the limit
    drops, and their mean joint error (mm). ``kept``: per frame the no-limit run's
    reported hands; ``free_kept``: per hand-free frame the same. A hand whose fit residual
    exceeds the limit is dropped.
    """
    from vvhand_core.hand_scores import match_hands, score_frame, summarise

    rows = []
    for lim in limits_m:
        scores = []
        for hands, f in zip(kept, frames, strict=True):
            hs = [h for h in hands if residual_mm_of(h) <= 1000.0 * lim]
            scores.append(score_frame([h.joints_mm for h in hs], [h.side for h in hs],
                                      [np.asarray(h["joints_mm"]) for h in f.meta["hands"]],
                                      [h.get("side") for h in f.meta["hands"]]))
        gone = []  # errors of the no-limit run's matched hands that this limit drops
        for hands, f in zip(kept, frames, strict=True):
            labs = [np.asarray(h["joints_mm"], np.float64) for h in f.meta["hands"]]
            est = [np.asarray(h.joints_mm, np.float64) for h in hands]
            for i, j in match_hands(np.array([e.mean(0) for e in est]).reshape(-1, 3),
                                    np.array([x.mean(0) for x in labs]).reshape(-1, 3)):
                if residual_mm_of(hands[i]) > 1000.0 * lim:
                    gone.append(float(np.linalg.norm(est[i] - labs[j], axis=1).mean()))
        row: list[object] = [f"{lim:g}"]
        for keep in (2, 1):
            s = summarise([sc for sc, c in zip(scores, counts, strict=True) if c == keep])
            row += [s["reported_pct"], f"{s['extra']} ({s['extra_pct']:.2f} %)",
                    s["mean_error_mm"]]
        free = sum(any(residual_mm_of(h) <= 1000.0 * lim for h in hs) for hs in free_kept)
        row.append(f"{free} / {len(free_kept)}" if free_kept else "-")
        row.append(f"{len(gone)}, {np.mean(gone):.2f} mm" if gone else "0")
        rows.append(row)
    return rows


def side_evidence_of(result) -> float:
    """Log-odds that the hand is a right one: the fit's evidence, else the network's."""
    fit = getattr(result, "fit", None)
    if fit is not None and not fit.fell_back:
        return float(fit.state.side_evidence)
    p = min(max(float(result.right_probability), 1e-6), 1.0 - 1e-6)
    return float(np.log(p / (1.0 - p)))


def rows_for(label: str, scores, times, counts) -> list[list[object]]:
    """Rows for frames with two labelled hands, with one, and all."""
    from vvhand_core.hand_scores import summarise

    out = []
    for name, keep in (("two-hand frames", 2), ("one-hand frames", 1), ("all frames", None)):
        ix = [i for i, c in enumerate(counts) if keep is None or c == keep]
        if not ix:
            continue
        s = summarise([scores[i] for i in ix])
        t = np.array([times[i] for i in ix])
        out.append([f"{label}: {name}", s["frames"], s["labelled"], s["reported_pct"],
                    f"{s['extra']} ({s['extra_pct']:.2f} %)", s["mean_error_mm"],
                    s["median_error_mm"], s["side_calls_pct"], s["side_right_pct"],
                    float(np.percentile(t, 50)), float(np.percentile(t, 95))])
    return out


def run(args: argparse.Namespace) -> int:
    """Generate the split, run the node's pipeline per max_hands value, print and append."""
    import torch
    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    from vvhand_core.assets import alternate_model_path, default_model_path
    from vvhand_core.benchmarks.results import append_section, markdown_table
    from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
    from vvhand_core.hand_scores import side_at_margins
    from vvhand_core.load import load_pipeline

    torch.set_num_threads(1)
    split = SPLITS[args.split]
    gen = SyntheticHandGenerator(SynthConfig(**split))
    frames = [gen.frame(i) for i in tqdm(range(args.frames), desc="v3 frames", unit="frame")]
    model = args.model or str(default_model_path())
    margins = [float(x) for x in args.side_margins.split(",") if x.strip()]
    rows, side_rows, stage_table, free_rows, sweep, grasp_table = [], [], [], [], [], []
    chosen = []  # the alternate variant's share of hands estimated by the alternate model
    runs: dict[tuple[int, str], list] = {}  # with --sheet: each run's HandsResults
    free_gen = gen if args.hand_free_from == "split" else SyntheticHandGenerator(
        SynthConfig(**FREE_V2[args.split]))
    free_frames = [free_gen.scene(i, hands=False).frame for i in range(args.hand_free)]
    limits = [float(x) for x in args.residual_sweep_m.split(",") if x.strip()]
    with threadpool_limits(1):
        for m in (int(x) for x in args.max_hands.split(",") if x.strip()):
            for variant in (v.strip() for v in args.variants.split(",") if v.strip()):
                second = alternate_model_path(args.alternate_model) if (
                    variant == "alternate") else ""
                pipe = load_pipeline(model, node_default_options(
                    m, variant, args.fit_max_residual_m), 1, second)
                stages = [] if args.stages else None
                kept = [] if (limits and variant == "no-limit") or second else None
                outs = runs.setdefault((m, variant), []) if args.sheet else None
                scores, times, counts = measure(pipe, tqdm(frames, desc=f"{m} {variant}"),
                                                stages, kept, outs)
                free_kept = []
                for f in free_frames:
                    pipe.reset_tracking()
                    free_kept.append(list(pipe.run_hands(f.depth_mm, f.intrinsics).hands))
                if free_frames:
                    free_rows.append([f"{m}, {variant}", len(free_frames),
                                      sum(bool(h) for h in free_kept),
                                      sum(len(h) for h in free_kept)])
                if second:
                    hands = [h for frame in kept for h in frame]
                    chosen.append(f"{m}, {variant}: {sum(h.alternate_chosen for h in hands)} "
                                  f"of {len(hands)} reported hands")
                if kept is not None and variant == "no-limit":
                    sweep += [[f"{m}, {variant}", *r]
                              for r in sweep_rows(limits, kept, frames, counts, free_kept)]
                if stages is not None:
                    stage_table += stage_rows(f"{m}, {variant}", stages, counts)
                    grasp_table += grasp_rows(f"{m}, {variant}", stages, frames)
                rows += rows_for(f"{m}, {variant}", scores, times, counts)
                side_rows += [[f"{m}, {variant}", *r] for r in side_at_margins(scores, margins)]
                backend = pipe.config.backend
    node_limit_m = (args.fit_max_residual_m if args.fit_max_residual_m is not None else
                    node_default_options(2)["fit"].max_residual_mm / 1000.0)
    body = (f"v3 {args.split} split (scene version 3, seed {split['seed']}, frames "
            f"0..{args.frames - 1}; hands "
            "holding things at a table, every hand labelled), the node's pipeline at its "
            f"default parameters ({backend}, student-3, detector, fit with "
            f"fit_max_residual_m {node_limit_m:g}) on one thread, each frame a new stream; "
            "a hand is reported when an estimate's joint mean lies within 60 mm of its joint mean "
            "(greedy, one estimate per hand), extra = estimates matching no labelled "
            "hand; error = mean joint distance of the matched hands (all 21 joints); side "
            "right among the matched hands the pipeline calls left or right.\n\n"
            f"{markdown_table(HEADER, rows)}\n")
    if chosen:
        body += (f"\nEstimates the fit took from the alternate model ({args.alternate_model}):"
                 f" {'; '.join(chosen)}.\n")
    if side_rows:
        body += ("\nSide called only where the side evidence (log-odds of a right hand: the "
                 "fit's, else the network's chirality) reaches the margin, on the same side "
                 "as published; % of the matched hands with a labelled side, right % of "
                 f"those calls:\n\n{markdown_table(SIDE_HEADER, side_rows)}\n")
    if stage_table:
        body += ("\nWhere each labelled hand not reported was lost (vvhand_core.hand_losses: "
                 "the first stage, in pipeline order; localiser stages from the detector's "
                 "peaks: no peak within 30 mm, a peak only below threshold, a peak cut by the "
                 "relative threshold, by max_hands, or by another rule); hands (% of the "
                 "labelled hands of those frames):\n\n"
                 f"{markdown_table(STAGE_HEADER, stage_table)}\n"
                 "\nPer grasp of the labelled hand (\"none\": a hand holding nothing):\n\n"
                 f"{markdown_table(GRASP_HEADER, grasp_table)}\n")
    if free_rows:
        where = ("the split" if args.hand_free_from == "split" else
                 f"v2 seed {FREE_V2[args.split]['seed']}")
        body += (f"\nHand-free scenes of {where} (scenes 0..{args.hand_free - 1} without "
                 f"their hands):\n\n{markdown_table(FREE_HEADER, free_rows)}\n")
    if sweep:
        body += ("\nThe no-limit run replayed with a residual limit (hands whose fit "
                 "residual exceeds it dropped):\n\n"
                 f"{markdown_table(SWEEP_HEADER, sweep)}\n")
    print(body)
    if args.sheet:
        from vvhand_core.benchmarks.hands_sheet import sheet_of_runs

        print(sheet_of_runs(frames, runs, pipe.skeleton, args.sheet, args.split))
    if not args.no_write:
        cmd = (f"vvhand bench hands --frames {args.frames} --max-hands {args.max_hands} "
               f"--variants {args.variants}" + (f" --model {args.model}" if args.model else "")
               + (f" --split {args.split}" if args.split != "test" else "")
               + (f" --side-margins {args.side_margins}" if margins else "")
               + (" --stages" if args.stages else "")
               + (f" --hand-free {args.hand_free}" if args.hand_free else "")
               + (" --hand-free-from v2" if args.hand_free_from == "v2" else "")
               + (f" --fit-max-residual-m {args.fit_max_residual_m:g}"
                  if args.fit_max_residual_m is not None else "")
               + (f" --residual-sweep-m {args.residual_sweep_m}" if limits else "")
               + (f" --alternate-model {args.alternate_model}" if chosen else ""))
        print(f"appended to {append_section('Every hand of a frame (v3)', cmd, body)}")
    return 0

