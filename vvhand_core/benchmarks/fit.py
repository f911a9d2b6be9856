"""Model fit after the network (issue 16): joint error before / after, CPU time, residual.

Frames 0..F-1 of both synthetic test splits (:mod:`.splits`) and of the split of hands
holding and touching things (v3, :mod:`.fit_objects`: there only the node's defaults,
without the mirror pass, and its own tables per placement and grasp, per joint by what
hides it, and the fit residual of true hands vs phantoms; ``--splits`` picks splits).
Rows per split: the network
alone vs the network + fit (student-N, confidence fusion; the crop centred on the ground
truth's mean, "oracle", or on the pipeline's default localiser without tracking,
"localised"; frames where no hand was found are left out and counted; "localised, hand
found": only the frames whose localised centre lies within ``FOUND_MM`` of the labelled
hand's joint mean, the fit's effect without the localiser's misses; "+ mirror": with the
mirror pass, ``PipelineConfig.mirror``), and the fit started from the ground truth plus
Gaussian noise (``vvhand_core.fit.bench.noisy_joints``). Columns: mean /
median joint error (mm) before and after, the change of the mean, the fit's CPU time per
frame (this process, one thread: one core; the network's time not included), the rank
correlation of the fit's residual with its error, how often the fitted side is right, how
often both sides were fitted, and how often the safeguard returned the network's joints.
Prints the table and appends it to docs/results.md (or $VVHAND_RESULTS); ``--sheet``
draws the frames of the last split where the fit helped most, a median one and where it
hurt most (network oracle start): network skeleton | fitted outline | model render.
``--tuning`` measures on the tuning splits instead (frames the fit's defaults were chosen
on, no table elsewhere reports them) and ``--weights`` overrides term weights, e.g.
``--tuning --weights joint_mm=15,free=1,scale=0.1`` (the weights before the tuning);
``--finger-lengths 1,1`` holds the per-finger length factors at the mean shape's;
``--fit-kernels numpy`` runs the numpy twins of the fit's compiled kernels
(``vvhand_core.fit.compiled``). Each section also compares the two codes that pose the
hand (``fit.bench.hand_model_speed``).
Sequences (``--sequences S --sequence-frames F``; person scenes, moving arm and hand,
``sample_sequence``): the network (oracle centre) alone vs + fit per frame, + fit carrying
the previous frame's fit (temporal pull, the side's evidence) and + fit with the shape
(scale and finger lengths) calibrated on the first ``FitConfig.calibration_frames`` frames
and held; the carried rows also with the mirror pass. With ``--tuning`` the sequences
are the tuning ones (other seeds).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from vvhand_core.assets import alternate_model_path, default_model_path
from vvhand_core.benchmarks import fit_objects
from vvhand_core.benchmarks.fit_options import (
    FIT_OPTIONS,
    fit_config,
    parse_fit_options,
    parse_range,
    parse_weights,
)
from vvhand_core.benchmarks.results import append_section, markdown_table
from vvhand_core.benchmarks.splits import SPLITS, TUNING_SPLITS, split_frames, student_pipeline
from vvhand_core.data.synthetic.generator import SynthConfig, sample_sequence
from vvhand_core.fit import FitConfig, compiled
from vvhand_core.fit import bench as fit_bench
from vvhand_core.fit.picture import FitFrame, write_fit_sheet
from vvhand_core.pipeline import VirtualViewPipeline

FOUND_MM = 60.0  # "hand found": the localised centre this near the labelled hand's
HEADER = ["split", "start", "frames", "mean before", "median before", "mean after",
          "median after", "mean change", "ms CPU / frame", "Spearman(residual, error)",
          "side right", "both sides", "network kept"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench fit`."""
    parser.add_argument("--frames", type=int, default=300,
                        help="frames per split (100 proved too few: see docs/results.md)")
    parser.add_argument("--noise-mm", default="10,20,30",
                        help="ground truth + noise rows: RMS noise per joint, comma-separated "
                             "('' = none)")
    parser.add_argument("--num-views", type=int, default=3, help="N views (student-N)")
    parser.add_argument("--model", default="", help="checkpoint; default: the shipped model")
    parser.add_argument("--alternate-model", default="",
                        help="also estimate every crop with this pose model (a packaged name "
                             "such as 'grasp', or a checkpoint); the fit keeps the estimate "
                             "it explains better (the node's alternate_model)")
    parser.add_argument("--no-network", action="store_true", help="only the noise rows")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--tuning", action="store_true",
                        help="the tuning splits (frames the defaults were chosen on) instead "
                             "of the test splits")
    parser.add_argument("--weights", default="", type=parse_weights,
                        help="term weights overriding the defaults, e.g. joint_mm=15,free=1 "
                             "(names: vvhand_core.fit.terms.Weights)")
    parser.add_argument("--fit", default="", type=parse_fit_options,
                        help="FitConfig numbers overriding the defaults, e.g. gate_mm=40,"
                             "residual_gate_mm=40,explain_mm=0,plane_mm=0 (the fit before "
                             f"it was made object-aware; names: {', '.join(FIT_OPTIONS)})")
    parser.add_argument("--finger-lengths", default="", type=parse_range,
                        help="LO,HI bounds of the per-finger length factors the fit estimates "
                             "(FitConfig.finger_length_range; 1,1 holds them; default: "
                             "FitConfig's)")
    parser.add_argument("--sequences", type=int, default=4,
                        help="person-scene sequences for the sequence rows (0 = none)")
    parser.add_argument("--sequence-frames", type=int, default=30, help="frames per sequence")
    parser.add_argument("--sheet", default="docs/fit_sheet.png",
                        help="picture of the fit on 3 frames of the last v1/v2 split "
                             "('' = none)")
    parser.add_argument("--splits", default=",".join(SPLIT_KEYS), type=parse_splits,
                        help="splits to measure, comma-separated among "
                             f"{','.join(SPLIT_KEYS)} (v3: hands holding things)")
    parser.add_argument("--residual-limit-mm", type=float, default=5.0,
                        help="v3 residual table: the limit whose drops are counted (the "
                             "node's fit_max_residual_mm)")
    parser.add_argument("--fit-kernels", choices=("numba", "numpy"), default="numba",
                        help="the fit's inner loops: compiled (numba, where installed) or "
                             "their numpy twins (vvhand_core.fit.compiled)")
    parser.add_argument("--hand-free-scenes", type=int, default=300,
                        help="v3 residual table: scenes without hands per version (v2, v3) "
                             "for the phantom rows (0 = none)")


SPLIT_KEYS = ("v1", "v2", "v3")


def parse_splits(text: str) -> tuple[str, ...]:
    """'v1,v3' -> ("v1", "v3") (argparse error for an unknown split or none)."""
    keys = tuple(x.strip() for x in text.split(",") if x.strip())
    if not keys or any(k not in SPLIT_KEYS for k in keys):
        raise argparse.ArgumentTypeError(f"--splits wants some of {SPLIT_KEYS}, got {text!r}")
    return keys


def selected_splits(keys: tuple[str, ...], tuning: bool) -> list[tuple[str, dict]]:
    """The (name, SynthConfig kwargs) of the chosen splits (``tuning``: their tuning twins).

    v1 and v2 are the shared test splits (:mod:`.splits`; tuning: both tuning splits of
    each version), v3 the object split (:mod:`.fit_objects`).
    """
    base = TUNING_SPLITS if tuning else SPLITS
    out = [s for s in base if f"v{s[1].get('scene_version', 1)}" in keys]
    if "v3" in keys:
        out.append(fit_objects.OBJECT_TUNING_SPLIT if tuning else fit_objects.OBJECT_SPLIT)
    return out


def model_line(path: str | Path) -> str:
    """The checkpoint's path, size and sha256 (the shipped model changes between runs)."""
    data = Path(path).read_bytes()
    return f"`{path}` ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]})"


def table_row(split: str, start: str, out: dict, skipped: int = 0,
              left_out: str = "no hand") -> list[object]:
    """One table row from :func:`vvhand_core.fit.bench.run`'s result."""
    frames = f"{out['frames']}" + (f" ({skipped} {left_out})" if skipped else "")
    change = out["after_mean_mm"] / out["before_mean_mm"] - 1.0
    return [split, start, frames, out["before_mean_mm"], out["before_median_mm"],
            out["after_mean_mm"], out["after_median_mm"], f"{change:+.1%}",
            out["cpu_ms_per_frame"], out["spearman_residual_error"],
            f"{out['side_correct']:.0%}", f"{out['both_sides']:.0%}", f"{out['fallback']:.0%}"]


def network_rows(pipe: VirtualViewPipeline, split: str, frames: list, cfg: FitConfig,
                 n: int, sheet: list | None = None, objects: dict | None = None,
                 limit_mm: float = 5.0) -> list[list[object]]:
    """The network alone vs + fit: oracle and localised centre, without and with mirror.

    With the mirror pass the fit runs as in the pipeline (both sides where they differ).

    ``sheet``: replaced by the oracle rows' best, median and worst change (FitFrames).
    ``objects`` (the v3 split): no mirror pass, and its lists "group", "joints" and
    "residual" get :mod:`.fit_objects`' rows (residual: those above ``limit_mm`` counted).
    """
    rows = []
    for mirror in (False,) if objects is not None else (False, True):
        pipe.configure(mirror=mirror)
        for start, oracle in (("network, oracle centre", True), ("network, localised", False)):
            label = f"{start} (student-{n}{' + mirror' if mirror else ''})"
            results = fit_bench.pipeline_results(pipe, frames, oracle_centre=oracle)
            keep = [i for i, r in enumerate(results) if r is not None]
            if not keep:
                rows.append([split, label, f"0 ({len(frames)} no hand)"]
                            + ["-"] * (len(HEADER) - 3))
                continue
            out = fit_bench.run([frames[i] for i in keep], results=[results[i] for i in keep],
                                config=cfg)
            rows.append(table_row(split, label, out, len(frames) - len(keep)))
            if objects is not None and oracle:
                kept = [frames[i] for i in keep]
                objects["group"] += fit_objects.group_rows(split, kept, out)
                objects["joints"] += fit_objects.visibility_rows(
                    split, kept, [results[i].joints_mm for i in keep], out["fits"])
                objects["residual"].append(fit_objects.residual_row(
                    f"{split}, oracle centre", len(frames), out["per_frame"]["residual_mm"],
                    limit_mm))
            found = [i for i in keep if hand_found(results[i], frames[i])]
            if not oracle and found:  # the fit's share, without the localiser's misses
                out = fit_bench.run([frames[i] for i in found],
                                    results=[results[i] for i in found], config=cfg)
                rows.append(table_row(split, label.replace("localised", "localised, hand found"),
                                      out, len(frames) - len(found), "no hand or missed"))
                if objects is not None:
                    objects["residual"].append(fit_objects.residual_row(
                        f"{split}, localised on the hand", len(frames),
                        out["per_frame"]["residual_mm"], limit_mm))
            if oracle and not mirror and sheet is not None and objects is None:
                sheet[:] = sheet_frames([frames[i] for i in keep],
                                        [results[i].joints_mm for i in keep], out, split)
    pipe.configure(mirror=False)
    return rows


def hand_found(result, frame) -> bool:
    """Whether the localised crop is centred within ``FOUND_MM`` of the labelled hand."""
    gt_centre = np.asarray(frame.joints_mm, np.float64).mean(0)
    return float(np.linalg.norm(np.asarray(result.centre_mm) - gt_centre)) <= FOUND_MM


SEQUENCE_SEED = 5  # sample_sequence draws its own stream: no split frame is repeated
TUNING_SEQUENCE_SEED = 7  # --tuning: the sequences the fit's temporal terms were chosen on
SEQUENCE_MODES = (("fit per frame", False, "frame"), ("fit in sequence", True, "frame"),
                  ("fit in sequence, shape calibrated", True, "calibrate"))


def valid_runs(results: list, starts: list[int]) -> tuple[list[int], list[int]]:
    """Indices of the valid results (not None) and where, among them, a sequence starts.

    A frame without a hand ends its sequence, as in the pipeline: the next valid frame
    starts a new one.
    """
    keep, kept_starts = [], []
    for i, r in enumerate(results):
        if r is None:
            continue
        if i in starts or i == 0 or results[i - 1] is None:
            kept_starts.append(len(keep))
        keep.append(i)
    return keep, kept_starts


def sequence_rows(pipe: VirtualViewPipeline, cfg: FitConfig, n: int, sequences: int,
                  frames_each: int, tuning: bool = False) -> list[list[object]]:
    """The network (oracle centre) vs + fit on sequences, per frame and carried (module doc).

    Sequence k has seed SEQUENCE_SEED + 100 k (``tuning``: TUNING_SEQUENCE_SEED + 100 k).
    """
    seed = TUNING_SEQUENCE_SEED if tuning else SEQUENCE_SEED
    frames, starts = [], []
    for k in range(sequences):
        starts.append(len(frames))
        frames += list(sample_sequence(
            SynthConfig(scene_version=2, seed=seed + 100 * k), frames_each))
    label = (f"{'tuning ' if tuning else ''}sequences (v2, seed {seed} + 100 k, {sequences} x "
             f"{frames_each} frames)")
    rows = []
    for mirror in (False, True):  # with the mirror pass: the node's fit:=true mirror:=true
        pipe.configure(mirror=mirror)
        results = fit_bench.pipeline_results(pipe, frames, oracle_centre=True)
        keep, kept_starts = valid_runs(results, starts)
        for name, sequence, shape_mode in SEQUENCE_MODES[1:] if mirror else SEQUENCE_MODES:
            out = fit_bench.run([frames[i] for i in keep], results=[results[i] for i in keep],
                                sequence=sequence, sequence_starts=kept_starts,
                                config=dataclasses.replace(cfg, shape_mode=shape_mode))
            start = f"network, oracle centre (student-{n}{' + mirror' if mirror else ''})"
            rows.append(table_row(label, f"{start}, {name}", out, len(frames) - len(keep)))
    pipe.configure(mirror=False)
    return rows


def sheet_frames(frames: list, joints: list, out: dict, split: str) -> list[FitFrame]:
    """The frames where the fit lowered the error most, a median one, and raised it most."""
    change = out["per_frame"]["after_mm"] - out["per_frame"]["before_mm"]
    order = np.argsort(change)
    picks = [("largest gain", order[0]), ("median", order[len(order) // 2]),
             ("largest loss", order[-1])]
    return [FitFrame(frames[i].depth_mm, frames[i].intrinsics, joints[i], out["fits"][i],
                     frames[i].joints_mm, f"{split}: {name} ({change[i]:+.1f} mm)")
            for name, i in picks]


def hand_model_line() -> str:
    """One sentence on the two codes that pose the hand (``fit.bench.hand_model_speed``)."""
    m = fit_bench.hand_model_speed()
    return (f" Hand model over {m['poses']} random articulations: the generator's pose_hand "
            f"{m['pose_hand_us']:.0f} us a pose, the fit's hand_np.pose {m['hand_np_us']:.0f} "
            f"us with joint axes; joints differ by at most {m['max_difference_mm']:.0e} mm "
            f"({m['bit_equal']} poses bit-equal).")


def noise_levels(text: str) -> list[float]:
    """'10,20,30' -> [10.0, 20.0, 30.0] ('' -> [])."""
    return [float(x) for x in text.split(",") if x.strip()]


def run(args: argparse.Namespace) -> int:
    """Measure both splits, print, append to docs/results.md.

    The CPU time per frame is one core's: torch and numpy's BLAS run one thread each.
    """
    torch.set_num_threads(1)
    kernels = compiled.ENABLED
    compiled.ENABLED = kernels and getattr(args, "fit_kernels", "numba") == "numba"
    try:
        with threadpool_limits(limits=1):
            return _measure(args)
    finally:
        compiled.ENABLED = kernels


def _measure(args: argparse.Namespace) -> int:
    cfg = fit_config(args)
    model = args.model or str(default_model_path())
    pipe = None
    if not args.no_network:
        pipe = student_pipeline(model, args.num_views)
        if args.alternate_model:
            pipe.set_alternate(student_pipeline(alternate_model_path(args.alternate_model),
                                                args.num_views))
    rows, sheet = [], []
    objects: dict[str, list] = {"group": [], "joints": [], "residual": []}
    for split, synth in selected_splits(args.splits, args.tuning):
        frames = split_frames(synth, args.frames)
        v3 = fit_objects.is_object_split(synth)
        if pipe is not None:
            rows += network_rows(pipe, split, frames, cfg, args.num_views, sheet,
                                 objects if v3 else None, args.residual_limit_mm)
        for noise in noise_levels(args.noise_mm):
            out = fit_bench.run(frames, noise_mm=noise, config=cfg)
            rows.append(table_row(split, f"ground truth + {noise:g} mm", out))
    if pipe is not None and "v3" in args.splits and args.hand_free_scenes > 0:
        free = fit_objects.TUNING_HAND_FREE if args.tuning else fit_objects.HAND_FREE
        for name, synth in free:
            res = fit_objects.phantom_residuals(pipe, synth, args.hand_free_scenes, cfg)
            objects["residual"].append(fit_objects.residual_row(
                f"{name}: phantoms", args.hand_free_scenes, res, args.residual_limit_mm))
    if pipe is not None and args.sequences > 0:
        rows += sequence_rows(pipe, cfg, args.num_views, args.sequences, args.sequence_frames,
                              args.tuning)
    table = markdown_table(HEADER, rows)
    body = (f"{args.frames} frames per split; fit at the default budget ({cfg.ik_iterations} "
            f"IK + {cfg.iterations} depth LM iterations, {cfg.max_points} data points), "
            f"CPU time of this process with one thread"
            + (f", weights {args.weights}" if args.weights else "")
            + (f", FitConfig {args.fit}" if args.fit else "")
            + f", gate {cfg.gate_mm:g} mm, plane {cfg.plane_mm:g} mm, points farther than "
              f"{cfg.explain_mm:g} mm dropped after {cfg.explain_after} iterations"
            + f", finger length factors within {cfg.finger_length_range}, fit kernels "
              f"{'numba' if compiled.ENABLED else 'numpy'}." + hand_model_line()
            + (f" Model {model_line(model)}, localiser {pipe.config.localiser} without "
               f"tracking." if pipe is not None else "")
            + (f" Alternate model {model_line(alternate_model_path(args.alternate_model))}: "
               "\"network\" is the model's, \"+ fit\" the fit of whichever estimate it "
               "explains better." if pipe is not None and args.alternate_model else "")
            + " Errors: mean 3D joint error per frame (mm); \"network kept\": frames where "
            f"the safeguard returned the network's joints.\n\n{table}\n"
            + ("\n" + fit_objects.tables(objects["group"], objects["joints"],
                                         objects["residual"], args.residual_limit_mm)
               if objects["group"] else ""))
    print(body)
    if args.sheet and sheet and not args.tuning:  # the picture shows the test split
        print(f"picture: {write_fit_sheet(sheet, args.sheet, 'network vs + fit', cfg)}")
    if not args.no_write:
        cmd = (f"vvhand bench fit --frames {args.frames} --noise-mm {args.noise_mm}"
               + (f" --model {args.model}" if args.model else "")
               + (f" --alternate-model {args.alternate_model}" if args.alternate_model else "")
               + (" --no-network" if args.no_network else "")
               + (f" --sequences {args.sequences} --sequence-frames {args.sequence_frames}"
                  if args.sequences != 4 or args.sequence_frames != 30 else "")
               + (" --tuning" if args.tuning else "")
               + (f" --splits {','.join(args.splits)}" if args.splits != SPLIT_KEYS else "")
               + (f" --residual-limit-mm {args.residual_limit_mm:g}"
                  if args.residual_limit_mm != 5.0 else "")
               + (f" --hand-free-scenes {args.hand_free_scenes}"
                  if args.hand_free_scenes != 300 else "")
               + (f" --weights {','.join(f'{k}={v:g}' for k, v in args.weights.items())}"
                  if args.weights else "")
               + (f" --fit {','.join(f'{k}={v:g}' for k, v in args.fit.items())}"
                  if args.fit else "")
               + (f" --finger-lengths {args.finger_lengths[0]:g},{args.finger_lengths[1]:g}"
                  if args.finger_lengths else "")
               + (" --fit-kernels numpy" if not compiled.ENABLED else ""))
        title = "Model fit after the network (issue 16)" + (", tuning splits" if args.tuning
                                                            else "")
        path = append_section(title, cmd, body)
        print(f"appended to {path}")
    return 0
