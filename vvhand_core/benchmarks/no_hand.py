"""Frames without a hand: how often the pipeline reports one, and what the fit residual does.

The person-scene test split's scenes (:mod:`.splits`, v2 seed 5, frames 0..F-1) rendered
twice: as they are, and with no hand in view (``scene_v2.without_hands``: the shown hand,
its arm and the second hand taken out; torso with the other arm hanging, objects and
background stay; same camera, same sensor). The pipeline runs student-N with the learned
localiser, without tracking (every frame on its own), and with the hand-model fit.

Rows: hand-free frames where a hand is reported (false positives) and frames with a hand
where one is reported, and reported on the labelled hand (its centre within
``FOUND_MM``). Then, per signal a consumer can read on the node's topic (:data:`SIGNALS`:
the fit residual, ``Hand.fit_residual``; the mean of ``Hand.joint_spread``, the selected
views' disagreement, which needs no fit) and threshold (the true hands' percentiles 90 /
95 / 99 and fixed values): the share of the true hands and of the false positives a
consumer dropping frames above it keeps, and the mean joint error (after the fit) of the
true hands kept and dropped.
``--plot`` draws both residual histograms. Prints and appends to docs/results.md (or
$VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from vvhand_core.assets import default_model_path
from vvhand_core.benchmarks.fit import FOUND_MM, model_line
from vvhand_core.benchmarks.results import append_section, markdown_table
from vvhand_core.benchmarks.splits import SPLITS, student_pipeline
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.deployed import DEPLOYED
from vvhand_core.fit.bench import frame_error_mm

PERCENTILES = (90, 95, 99)
# the signals a consumer can drop frames by (on the node's topic: Hand.fit_residual, and
# the mean of Hand.joint_spread), with fixed thresholds (mm) besides the percentiles
SIGNALS = {"fit residual": (3.0, 5.0), "mean joint spread (views' disagreement)": (10.0, 15.0)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench no-hand`."""
    parser.add_argument("--frames", type=int, default=300, help="scenes (each with and "
                        "without its hands)")
    parser.add_argument("--num-views", type=int, default=3, help="N views (student-N)")
    parser.add_argument("--model", default="", help="checkpoint; default: the shipped model")
    parser.add_argument("--plot", default="docs/no_hand_residual.png",
                        help="histograms of the fit residual ('' = none)")
    parser.add_argument("--no-write", action="store_true", help="print only")


@dataclass
class Outcome:
    """What the pipeline reported on a set of frames."""

    frames: int
    reported: int                 # valid results
    signals: dict[str, np.ndarray]  # SIGNALS' values (mm): every phantom, or true hands found
    error_mm: np.ndarray          # mean joint error of the true hands found (empty: phantoms)

    @property
    def counted(self) -> int:
        """Frames the signals hold (phantoms, or true hands reported on the hand)."""
        return len(next(iter(self.signals.values())))


def measure(pipe, synth: dict, frames: int) -> tuple[Outcome, Outcome]:
    """(hand-free frames: every reported hand; frames with a hand: reported on the hand)."""
    gen = SyntheticHandGenerator(SynthConfig(**synth))
    values: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    err, reported = [], {False: 0, True: 0}
    for i in tqdm(range(frames), desc="scenes with and without hands", leave=False):
        for hands in (False, True):
            f = gen.scene(i, hands=hands).frame
            r = pipe.run(f.depth_mm, f.intrinsics)
            if not r.valid:
                continue
            reported[hands] += 1
            centre = np.asarray(f.joints_mm, np.float64).mean(0)
            if hands and np.linalg.norm(np.asarray(r.centre_mm) - centre) > FOUND_MM:
                continue
            spread = np.nan if r.joint_spread_mm is None else float(np.mean(r.joint_spread_mm))
            values[hands].append((r.fit.residual_mm, spread))  # spread: NaN with one view
            if hands:
                err.append(frame_error_mm(r.joints_mm, f.joints_mm))

    def outcome(hands: bool, errors: list[float]) -> Outcome:
        v = np.array(values[hands], np.float64).reshape(-1, len(SIGNALS))
        return Outcome(frames, reported[hands], dict(zip(SIGNALS, v.T, strict=True)),
                       np.array(errors))

    return outcome(False, []), outcome(True, err)


def thresholds(true_mm: np.ndarray, fixed_mm: tuple[float, ...]) -> list[tuple[str, float]]:
    """Named thresholds: percentiles of the true hands' values, then fixed values."""
    named = [(f"p{p} of true hands", float(np.percentile(true_mm, p))) for p in PERCENTILES
             if len(true_mm)]
    return named + [(f"{t:g} mm", t) for t in fixed_mm]


def kept(values_mm: np.ndarray, limit_mm: float) -> str:
    """'k / n (share)' of the values at or below the limit."""
    n = len(values_mm)
    k = int((values_mm <= limit_mm).sum())
    return f"{k} / {n} ({k / n:.0%})" if n else "0 / 0"


def _mean(values: np.ndarray) -> str:
    return f"{values.mean():.2f}" if len(values) else "-"


def tables(free: Outcome, true: Outcome) -> str:
    """The tables of the module doc: how often a hand is reported, then one per signal."""
    n_true = true.counted
    out = [markdown_table(
        ["frames", "scenes", "a hand reported", "rate"],
        [["without a hand (false positives)", free.frames, free.reported,
          f"{free.reported / free.frames:.1%}"],
         ["with a hand", true.frames, true.reported, f"{true.reported / true.frames:.1%}"],
         [f"with a hand, reported on it (within {FOUND_MM:g} mm)", true.frames, n_true,
          f"{n_true / true.frames:.1%}"]])]
    for signal, fixed in SIGNALS.items():
        t, f = true.signals[signal], free.signals[signal]
        rows = []
        for name, limit in thresholds(t, fixed):
            keep = t <= limit
            rows.append([name, f"{limit:.2f}", kept(t, limit), _mean(true.error_mm[keep]),
                         _mean(true.error_mm[~keep]), kept(f, limit)])
        out.append(markdown_table([f"drop frames with {signal} above", "mm",
                                   "true hands kept", "their error mm",
                                   "error of those dropped mm", "false positives kept"], rows))
    return "\n\n".join(out) + "\n"


def plot(free: Outcome, true: Outcome, path: str) -> str:
    """Histograms of the fit residual: true hands vs hand-free false positives."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    key = next(iter(SIGNALS))  # the fit residual
    t, f = true.signals[key], free.signals[key]
    top = max([5.0, *t, *f])
    bins = np.linspace(0.0, min(top, 30.0), 40)
    ax.hist(np.clip(t, 0, bins[-1]), bins, alpha=0.6, density=True, label=f"hand ({len(t)})")
    ax.hist(np.clip(f, 0, bins[-1]), bins, alpha=0.6, density=True,
            label=f"no hand in view, one reported ({len(f)})")
    ax.set_xlabel("fit residual [mm] (Hand.fit_residual x 1000)")
    ax.set_ylabel("density")
    ax.set_title("Person scenes: the fit residual of real and phantom hands")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run(args: argparse.Namespace) -> int:
    """Measure, print, append to docs/results.md."""
    model = args.model or str(default_model_path())
    pipe = student_pipeline(model, args.num_views)
    # the node's fit, without its residual limit: this bench reads the residual of every
    # hand (true and phantom) and applies the limits itself
    pipe.configure(fit=DEPLOYED.fit_config(max_residual_mm=0.0))
    split, synth = SPLITS[1]  # the person scenes
    free, true = measure(pipe, synth, args.frames)
    body = (f"{split}: {args.frames} scenes, each rendered with and without its hands; "
            f"student-{args.num_views} + fit, localiser {pipe.config.localiser} without "
            f"tracking. Model {model_line(model)}.\n\n"
            + tables(free, true))
    print(body)
    if args.plot and (free.reported or true.counted):
        print(f"plot: {plot(free, true, args.plot)}")
    if not args.no_write:
        path = append_section("Frames without a hand (false positives, fit residual)",
                              f"vvhand bench no-hand --frames {args.frames}"
                              + (f" --model {args.model}" if args.model else ""), body)
        print(f"appended to {path}")
    return 0
