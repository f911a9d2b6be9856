"""Multi-hand localisation: every labelled hand found within 30 mm, phantoms, CPU time.

Each localiser's ``locate_all`` (tracking off: every frame on its own) on the fixed test
splits (:data:`SPLITS`; ``--tuning``: :data:`TUNING_SPLITS` instead, the frames the
thresholds are chosen on): frames 0..F-1 with their hands, and for scene versions 2 and 3
the same scenes without hands (``generator.scene(i, hands=False)``). Scored by
:mod:`vvhand_core.detector.evaluate_hands` (a hand found: a candidate within 30 mm of its
joint mean, one candidate per hand, greedy by distance; extra: a candidate farther than
60 mm from every hand of the scene, v2's unlabelled second hand included). Besides
``locate_all``, the detector's single-hand rule (``locate``, what the pipeline runs) is
scored as a one-candidate list. Times: the localiser alone on one thread (torch,
onnxruntime and numpy's BLAS limited to one), CPU and wall ms per frame, the localisers
interleaved frame by frame. ``--sweep T:R,...``: ``locate_all`` rows for other
thresholds (``threshold`` T, ``relative_threshold`` R) from the same detector run per
frame, without times (so a choice of thresholds is a repository command too). Tables per
split, per camera placement and per grasp type (where the frames say them); ``--misses``:
also why each missed hand was missed (:mod:`vvhand_core.detector.misses`, the packaged or
``--weights`` detector with its default thresholds), counted per placement, grasp type
and condition of the hand; ``--edge-factor F``: the detector's border rule
(``DetectorLocaliserConfig.edge_factor``; 1: none); ``--sheet PATH``: a picture of the v3
split's first frames with their hands and answers (:mod:`vvhand_core.detector.picture`);
``--compare W,...``: other detector weights' ``locate_all`` on the same frames, interleaved
(their times compare with ``--weights``' within the run); ``--lift``: each labelled hand
lifted from its true image position by each detector (:mod:`vvhand_core.detector.lift`),
by how far its centre lies behind the surface there. Printed and appended to
docs/results.md (or $VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from threadpoolctl import threadpool_limits
from tqdm import tqdm

from vvhand_core.benchmarks.results import append_section, markdown_table
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.detector.evaluate_hands import (
    HEADER,
    by_grasp,
    by_placement,
    run_localisers,
    summarise,
)
from vvhand_core.detector.picture import SheetCollector, write_localiser_sheet
from vvhand_core.detector.tracks import HandCandidate

SPLITS: dict[str, tuple[str, dict]] = {
    "v1": ("synthetic test (v1, seed 3)", {"seed": 3}),
    "v2": ("new scenes (v2, seed 5)", {"scene_version": 2, "seed": 5}),
    "v3": ("hands with objects (v3, seed 9)", {"scene_version": 3, "seed": 9}),
}
TUNING_SPLITS: dict[str, tuple[str, dict]] = {
    "v1": ("tuning (v1, seed 8)", {"seed": 8}),
    "v2": ("tuning (v2, seed 7)", {"scene_version": 2, "seed": 7}),
    "v3": ("tuning (v3, seed 7)", {"scene_version": 3, "seed": 7}),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench localiser`."""
    parser.add_argument("--frames", type=int, default=300, help="frames per split")
    parser.add_argument("--free-frames", type=int, default=-1,
                        help="hand-free scenes per v2/v3 split (-1: as --frames, 0: none)")
    parser.add_argument("--splits", default="v1,v2,v3",
                        help="comma-separated among v1, v2, v3 (v3 is skipped with a "
                             "message where this checkout cannot generate it)")
    parser.add_argument("--tuning", action="store_true", help="the tuning splits instead")
    parser.add_argument("--weights", default="", help="detector weights (default: packaged)")
    parser.add_argument("--compare", default="",
                        help="comma-separated other detector weights scored (locate_all) on "
                             "the same frames, interleaved with --weights: their times "
                             "compare within the run")
    parser.add_argument("--geometric", action="store_true",
                        help="also the geometric localiser (slower)")
    parser.add_argument("--sweep", default="",
                        help="threshold:relative_threshold pairs of locate_all to score too, "
                             "e.g. 0.3:0.5,0.5:0.3 (from one detector run per frame)")
    parser.add_argument("--misses", action="store_true",
                        help="also why each missed hand was missed (detector.misses), per "
                             "camera placement, grasp type and condition of the hand")
    parser.add_argument("--lift", action="store_true",
                        help="also each labelled hand lifted from its true image position "
                             "(detector.lift), by how far its centre lies behind the "
                             "surface there, for --weights and each --compare")
    parser.add_argument("--edge-factor", type=float, default=None,
                        help="the detector's edge_factor (score of a centre near the image "
                             "border = this x its peak; default: DetectorLocaliserConfig's; "
                             "1: no border rule)")
    parser.add_argument("--sheet", default="",
                        help="also draw the v3 split's first frames (all hands found, a "
                             "hand missed, hand-free) with their hands and answers to this "
                             "PNG (detector.picture; '' = none)")
    parser.add_argument("--no-write", action="store_true", help="print only")


def _one(locate):
    """A single-hand ``locate`` as a ``locate_all`` (a list of at most one hand)."""
    def locate_all(depth_mm, intr):
        c = locate(depth_mm, intr)
        return [] if c is None else [HandCandidate(c, 1.0)]
    return locate_all


SWEEP = "(sweep)"  # in the names of the sweep's rows (they have no times)


class _Sweep:
    """``locate_all`` without tracking under several thresholds, one detector run a frame."""

    def __init__(self, det, pairs: list[tuple[float, float]]) -> None:
        self.det, self.low = det, min(t for t, _ in pairs)
        self._depth, self._found = None, []

    def _candidates(self, depth_mm, intr):
        if depth_mm is not self._depth:  # a new frame
            self._depth, self._found = depth_mm, self.det.candidates(depth_mm, intr, self.low)
        return self._found

    def rule(self, threshold: float, relative: float):
        """locate_all(depth_mm, intr) with these thresholds."""
        from vvhand_core.detector.localiser import hands_without_tracks

        cfg = replace(self.det.cfg, threshold=threshold, relative_threshold=relative)

        def locate_all(depth_mm, intr):
            found = [c for c in self._candidates(depth_mm, intr) if c[0] >= threshold]
            return hands_without_tracks(found, cfg)
        return locate_all


def sweep_pairs(text: str) -> list[tuple[float, float]]:
    """"T:R,T:R" -> [(T, R), ...] (ValueError naming a bad pair)."""
    pairs = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        try:
            t, r = (float(v) for v in item.split(":"))
        except ValueError:
            raise ValueError(f"--sweep: {item!r} is not threshold:relative") from None
        pairs.append((t, r))
    return pairs


def _detector(weights: str, edge_factor: float | None = None):
    """A DetectorLocaliser without tracking, one thread (``edge_factor`` None: default)."""
    from vvhand_core.detector.localiser import DetectorLocaliser, DetectorLocaliserConfig

    extra = {} if edge_factor is None else {"edge_factor": edge_factor}
    return DetectorLocaliser(DetectorLocaliserConfig(weights=weights, use_tracking=False,
                                                     num_threads=1, **extra))


def localisers(weights: str, geometric: bool, sweep: str = "",
               edge_factor: float | None = None, compare: str = "") -> dict:
    """Name -> locate_all of each localiser compared (tracking off, one thread).

    ``compare``: comma-separated other weights, each a row "detector <file name>, every
    hand (...)"; ValueError when a name repeats (two files of one name).
    """
    det = _detector(weights, edge_factor)
    out = {f"detector, every hand (locate_all, {det.runtime})": det.locate_all,
           f"detector, one hand (locate, {det.runtime})": _one(det.locate)}
    for other in (w.strip() for w in compare.split(",") if w.strip()):
        other_det = _detector(other, edge_factor)
        name = f"detector {Path(other).name}, every hand (locate_all, {other_det.runtime})"
        if name in out:
            raise ValueError(f"--compare: {other} named twice (rows are named by file name)")
        out[name] = other_det.locate_all
    pairs = sweep_pairs(sweep)
    if pairs:
        sweeper = _Sweep(_detector(weights, edge_factor), pairs)
        for t, r in pairs:
            out[f"detector, every hand, threshold {t:g}, relative {r:g} {SWEEP}"] = \
                sweeper.rule(t, r)
    if geometric:
        from vvhand_core.localise import HandLocaliser, LocaliseConfig

        geo = HandLocaliser(LocaliseConfig(use_tracking=False))
        out["geometric, every object (locate_all)"] = geo.locate_all
    return out


def split_frames(synth: dict, frames: int, free: int):
    """Frames 0..frames-1 of the split, then its hand-free scenes 0..free-1 (v2, v3)."""
    gen = SyntheticHandGenerator(SynthConfig(**synth))
    yield from (gen.frame(i) for i in range(frames))
    if synth.get("scene_version", 1) >= 2:
        yield from (gen.scene(i, hands=False).frame for i in range(free))


def measure(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(markdown sections, messages): the tables of the module docstring, on one thread.

    torch, onnxruntime and numpy's BLAS are limited to one thread (BLAS worker threads
    left spinning by the scene generator would otherwise count as the localiser's CPU).
    """
    import torch

    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        return _measure(args)


def _measure(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    splits = TUNING_SPLITS if args.tuning else SPLITS
    free = args.frames if args.free_frames < 0 else args.free_frames
    edge = getattr(args, "edge_factor", None)
    locs = localisers(args.weights, args.geometric, args.sweep, edge,
                      getattr(args, "compare", ""))
    diagnose = _Misses(args.weights, edge) if getattr(args, "misses", False) else None
    sheet = SheetCollector(_detector(args.weights, edge)) if getattr(args, "sheet", "") else None
    lifts = _Lifts(args.weights, getattr(args, "compare", ""), edge) if getattr(
        args, "lift", False) else None
    rows, placement_rows, grasp_rows, messages = [], [], [], []
    for key in [k.strip() for k in args.splits.split(",") if k.strip()]:
        if key not in splits:
            raise ValueError(f"unknown split {key!r}: choose among {', '.join(splits)}")
        name, synth = splits[key]
        try:
            SynthConfig(**synth)
        except ValueError as exc:
            messages.append(f"{name}: skipped ({exc})")
            continue
        n_free = free if synth.get("scene_version", 1) >= 2 else 0
        frames = split_frames(synth, args.frames, n_free)
        if diagnose is not None:
            frames = diagnose.watch(name, frames)
        if sheet is not None and synth.get("scene_version", 1) == 3:
            frames = sheet.watch(frames)
        if lifts is not None:
            frames = lifts.watch(name, frames)
        with tqdm(total=args.frames + n_free, desc=name, leave=False) as bar:
            out = run_localisers(locs, frames, bar.update)
        for loc, outcomes in out.items():
            rows.append([name, loc, *_row(loc, summarise(outcomes))])
            placement_rows += [[name, loc, p, *_row(loc, s)]
                               for p, s in by_placement(outcomes).items()]
            grasp_rows += [[name, loc, g, n, f"{100 * f:.1f} %"]
                           for g, (n, f) in by_grasp(outcomes).items()]
    sections = [markdown_table(["split", "localiser", *HEADER], rows)]
    if placement_rows:
        sections.append("Per camera placement:\n\n" + markdown_table(
            ["split", "localiser", "placement", *HEADER], placement_rows))
    if grasp_rows:
        sections.append("Per grasp type:\n\n" + markdown_table(
            ["split", "localiser", "grasp", "labelled hands", "found within 30 mm"],
            grasp_rows))
    if diagnose is not None:
        sections += diagnose.sections()
    if lifts is not None:
        sections.append(lifts.section())
    if sheet is not None and any(sheet.rows.values()):
        path = write_localiser_sheet(sheet.rows, args.sheet, "localiser (locate_all) on v3: "
                                     "green found, red missed, cyan + answers")
        messages.append(f"picture: {path}")
    return sections, messages


class _Misses:
    """``--misses``: every frame with hands diagnosed (``detector.misses``) on its way."""

    def __init__(self, weights: str, edge_factor: float | None = None) -> None:
        self.det = _detector(weights, edge_factor)
        self.outcomes: dict[str, list] = {}

    def watch(self, split: str, frames):
        """``frames``, each diagnosed before it is yielded."""
        from vvhand_core.detector.misses import diagnose_frame

        got = self.outcomes.setdefault(split, [])
        for f in frames:
            got += diagnose_frame(self.det, f)
            yield f

    def sections(self) -> list[str]:
        """One table per grouping (placement, grasp, condition) over the splits."""
        from vvhand_core.detector.misses import MISS_HEADER, miss_rows

        out = []
        for key, title in (("placement", "camera placement"), ("grasp", "grasp type"),
                           ("condition", "condition of the hand")):
            rows = [[split, *r] for split, got in self.outcomes.items()
                    for r in miss_rows(got, key) if got]
            out.append(f"Missed hands by cause (locate_all), per {title}:\n\n"
                       + markdown_table(["split", key, *MISS_HEADER], rows))
        return out


class _Lifts:
    """``--lift``: every labelled hand lifted from its true heat point (``detector.lift``).

    By the ``--weights`` detector and each ``--compare`` one.
    """

    def __init__(self, weights: str, compare: str, edge_factor: float | None) -> None:
        names = [weights, *(w.strip() for w in compare.split(",") if w.strip())]
        self.dets = {Path(w).name if w else "packaged": _detector(w, edge_factor)
                     for w in names}
        self.lifts: dict[tuple[str, str], list] = {}

    def watch(self, split: str, frames):
        """``frames``, each frame's hands lifted before it is yielded."""
        from vvhand_core.detector.lift import lift_hands

        for f in frames:
            for name, det in self.dets.items():
                self.lifts.setdefault((split, name), []).extend(lift_hands(det, f))
            yield f

    def section(self) -> str:
        """One table: split, detector, then ``detector.lift.lift_rows``."""
        from vvhand_core.detector.lift import LIFT_HEADER, lift_rows

        rows = [[split, name, *r] for (split, name), got in self.lifts.items()
                for r in lift_rows(got)]
        return ("Labelled hands lifted from their true image position (detector.lift), by "
                "how far their centre lies behind the surface there:\n\n"
                + markdown_table(["split", "detector", *LIFT_HEADER], rows))


def _row(name: str, score) -> list[object]:
    """The score's row; a sweep row's times are "-" (its network ran for another row)."""
    row = score.row()
    return row[:-2] + ["-", "-"] if SWEEP in name else row


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces a run."""
    cmd = f"vvhand bench localiser --frames {args.frames} --splits {args.splits}"
    if args.free_frames >= 0:
        cmd += f" --free-frames {args.free_frames}"
    for flag in ("tuning", "geometric", "misses", "lift"):
        if getattr(args, flag, False):
            cmd += f" --{flag}"
    cmd += f" --sweep {args.sweep}" if args.sweep else ""
    if getattr(args, "edge_factor", None) is not None:
        cmd += f" --edge-factor {args.edge_factor:g}"
    if getattr(args, "sheet", ""):
        cmd += f" --sheet {args.sheet}"
    if getattr(args, "compare", ""):
        cmd += f" --compare {args.compare}"
    return cmd + (f" --weights {args.weights}" if args.weights else "")


def run(args: argparse.Namespace) -> int:
    """Measure, print, append to results.md unless --no-write."""
    sections, messages = measure(args)
    body = "\n\n".join(sections)
    if messages:
        body += "\n\n" + "  \n".join(messages)
    body += ("\n\nFound: a candidate within 30 mm of the hand's joint mean (one candidate "
             "per hand, greedy by distance). Extra: a candidate farther than 60 mm from "
             "every hand of the scene (v2's unlabelled second hand counts as a hand, not "
             "as extra). Tracking off. Times: the localiser alone, one thread.")
    print(body)
    if not args.no_write:
        append_section(f"Multi-hand localisation ({args.weights or 'packaged detector'})",
                       command_line(args), body)
    return 0
