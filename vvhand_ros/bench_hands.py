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
residual limit: no hand dropped as a phantom), ``no-fit`` (the network's joints): where
hands are lost, the localiser or the residual limit. Times: the pipeline's own per-frame
total (ms, one thread; the frames' generation is not counted). ``--side-margins``: a
second table, the side called only where the hand's side evidence (the fit's, else the
network's chirality, as log-odds) reaches each margin (vvhand_core.hand_scores.
side_at_margins); choose margins with ``--split tuning`` (seed 7), report on the test
split. Printed and appended to docs/results.md (or $VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse

import numpy as np

VARIANTS = ("node", "no-limit", "no-fit")
HEADER = ["max_hands, variant", "frames", "labelled hands", "reported %",
          "extra hands (% of labelled)", "per-hand error mean mm", "median mm",
          "side called %", "side right %", "pipeline ms/frame p50", "p95"]
SPLITS = {"test": {"scene_version": 3, "seed": 9}, "tuning": {"scene_version": 3, "seed": 7}}
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
    parser.add_argument("--model", default="", help="checkpoint; default: the shipped model")
    parser.add_argument("--no-write", action="store_true", help="print only")


def node_default_options(max_hands: int, variant: str = "node") -> dict:
    """The pipeline options of hand_pose_node at its default parameters.

    node_params.pipeline_options (what the node builds) of node_params.PARAMETERS'
    defaults; ``variant``: ``no-limit`` sets fit_max_residual_m 0, ``no-fit`` fit false
    (ValueError otherwise).
    """
    from vvhand_ros.node_params import PARAMETERS, pipeline_options

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    d = {name: default for name, default, *_ in PARAMETERS}
    d["fit"] = d["fit"] and variant != "no-fit"
    d["fit_max_residual_m"] = 0.0 if variant == "no-limit" else d["fit_max_residual_m"]
    d["max_hands"] = max_hands
    return pipeline_options(d.__getitem__)


def measure(pipe, frames) -> tuple[list, list[float], list[int]]:
    """(FrameScore per frame, pipeline ms per frame, labelled hands per frame)."""
    from vvhand_core.hand_scores import score_frame

    scores, times, counts = [], [], []
    for f in frames:
        pipe.reset_tracking()
        out = pipe.run_hands(f.depth_mm, f.intrinsics)
        hands = f.meta["hands"]
        scores.append(score_frame([h.joints_mm for h in out.hands], [h.side for h in out.hands],
                                  [np.asarray(h["joints_mm"]) for h in hands],
                                  [h.get("side") for h in hands],
                                  [side_evidence_of(h) for h in out.hands]))
        times.append(out.timings_ms["total"])
        counts.append(len(hands))
    return scores, times, counts


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

    from vvhand_core.assets import default_model_path
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
    rows, side_rows = [], []
    with threadpool_limits(1):
        for m in (int(x) for x in args.max_hands.split(",") if x.strip()):
            for variant in (v.strip() for v in args.variants.split(",") if v.strip()):
                pipe = load_pipeline(model, node_default_options(m, variant), 1)
                scores, times, counts = measure(pipe, tqdm(frames, desc=f"{m} {variant}"))
                rows += rows_for(f"{m}, {variant}", scores, times, counts)
                side_rows += [[f"{m}, {variant}", *r] for r in side_at_margins(scores, margins)]
                backend = pipe.config.backend
    body = (f"v3 {args.split} split (scene version 3, seed {split['seed']}, frames "
            f"0..{args.frames - 1}; hands "
            "holding things at a table, every hand labelled), the node's pipeline at its "
            f"default parameters ({backend}, student-3, detector, fit with "
            "fit_max_residual_m 0.005) on one thread, each frame a new stream; a hand is "
            "reported when an estimate's joint mean lies within 60 mm of its joint mean "
            "(greedy, one estimate per hand), extra = estimates matching no labelled "
            "hand; error = mean joint distance of the matched hands (all 21 joints); side "
            "right among the matched hands the pipeline calls left or right.\n\n"
            f"{markdown_table(HEADER, rows)}\n")
    if side_rows:
        body += ("\nSide called only where the side evidence (log-odds of a right hand: the "
                 "fit's, else the network's chirality) reaches the margin, on the same side "
                 "as published; % of the matched hands with a labelled side, right % of "
                 f"those calls:\n\n{markdown_table(SIDE_HEADER, side_rows)}\n")
    print(body)
    if not args.no_write:
        cmd = (f"vvhand bench hands --frames {args.frames} --max-hands {args.max_hands} "
               f"--variants {args.variants}" + (f" --model {args.model}" if args.model else "")
               + (f" --split {args.split}" if args.split != "test" else "")
               + (f" --side-margins {args.side_margins}" if margins else ""))
        print(f"appended to {append_section('Every hand of a frame (v3)', cmd, body)}")
    return 0
