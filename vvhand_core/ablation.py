"""`vvhand ablation`: the paper's Tables 3 and 5 on our synthetic test split.

For one checkpoint, runs the same ``VirtualViewPipeline`` in every selection mode on the
same frames and reports the mean 3D joint error and CPU/GPU frames/s of each:
uniform 1/3/9/15/25 views, teacher-select 1/3/9/15 of 25, student-select 1/3/9/15 of 25,
confidence vs average fusion over the 25 uniform views, and student-3 followed by the
hand-model fit (``vvhand_core.fit``, "+ fit") and with the mirror pass (``PipelineConfig.
mirror``, "+ mirror"). Frames are independent, so
tracking is off; the hand centre comes from the localiser (as on a live camera) unless
``--oracle-centre`` gives the mean of the ground-truth joints (as published tables do).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vvhand_core.evaluate import compute_metrics
from vvhand_core.fit import FitConfig
from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline
from vvhand_core.skeletons import joint_map

# (label, selector, num_views, fusion, hand-model fit after fusion, mirror pass)
MODES: tuple[tuple[str, str, int, str, bool, bool], ...] = (
    *((f"uniform-{n}", "uniform", n, "confidence", False, False) for n in (1, 3, 9, 15, 25)),
    *((f"teacher-{n}", "teacher", n, "confidence", False, False) for n in (1, 3, 9, 15)),
    *((f"student-{n}", "student", n, "confidence", False, False) for n in (1, 3, 9, 15)),
    ("uniform-25-average", "uniform", 25, "average", False, False),
    ("student-3 + fit", "student", 3, "confidence", True, False),
    ("student-3 + mirror", "student", 3, "confidence", False, True),
    ("student-3 + mirror + fit", "student", 3, "confidence", True, True),
)
TEST_SEED = 3  # the synthetic test split; training uses seeds 1 (train) and 2 (validation)


@dataclass
class ModeResult:
    """Accuracy and speed of one mode."""

    label: str
    mean_error_mm: float
    success_at_20mm: float
    frames_scored: int
    frames_no_hand: int
    fps: float
    ms_per_frame: float


def synthetic_test_frames(num_frames: int, seed: int = TEST_SEED) -> list:
    """Frames 0..num_frames-1 of the synthetic test split (SynthConfig defaults, seed 3)."""
    from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator

    gen = SyntheticHandGenerator(SynthConfig(seed=seed))
    return [gen.frame(i) for i in range(num_frames)]


def evaluate_modes(pipeline: VirtualViewPipeline, frames: list, modes=MODES,
                   oracle_centre: bool = False, progress: bool = True) -> list[ModeResult]:
    """Run every mode on ``frames`` (DepthFrames with ground truth) and score it.

    Predicted joints are matched to the labels through ``skeletons.joint_map`` (labels in
    any skeleton whose every joint the model's skeleton has; SkeletonMismatch otherwise).
    A frame where no hand is found counts as missing (reported), not as an error of 0.
    """
    maps = {f.skeleton.name: joint_map(pipeline.skeleton, f.skeleton) for f in frames}
    results = []
    for label, selector, n, fusion, fit, mirror in modes:
        pipeline.configure(selector=selector, num_views=n, fusion=fusion, track=False,
                           fit=FitConfig() if fit else None, mirror=mirror)
        pipeline.reset_tracking()
        preds, gts, no_hand, total_s = [], [], 0, 0.0
        for f in tqdm(frames, desc=label, unit="frame", disable=not progress, leave=False):
            centre = f.joints_mm.mean(axis=0) if oracle_centre else None
            t0 = time.perf_counter()
            r = pipeline.run(np.asarray(f.depth_mm, np.float32), f.intrinsics, centre)
            total_s += time.perf_counter() - t0
            if not r.valid:
                no_hand += 1
                continue
            mapping = maps[f.skeleton.name]
            preds.append(mapping.predicted(r.joints_mm))
            gts.append(mapping.labelled(f.joints_mm))
        m = compute_metrics(np.array(preds), np.array(gts), name=label) if preds else None
        results.append(ModeResult(
            label, m.mean_error_mm if m else float("nan"),
            m.success_at(20.0) if m else float("nan"), len(preds), no_hand,
            len(frames) / total_s, 1000.0 * total_s / len(frames)))
    return results


def results_table(results: list[ModeResult]) -> str:
    """Markdown table of the results."""
    from vvhand_core.benchmarks.results import markdown_table

    rows = [[r.label, round(r.mean_error_mm, 3), f"{100 * r.success_at_20mm:.1f}",
             r.frames_scored, r.frames_no_hand, round(r.fps, 2), round(r.ms_per_frame, 1)]
            for r in results]
    return markdown_table(["mode", "mean error [mm]", "frames all joints <= 20 mm [%]",
                           "scored", "no hand", "frames/s", "ms/frame"], rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand ablation`."""
    parser.add_argument("--model", default="", help="checkpoint (default: the shipped model)")
    parser.add_argument("--frames", type=int, default=100, help="test frames (seed 3)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--oracle-centre", action="store_true",
                        help="crop around the ground-truth joint mean instead of localising")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--no-results", action="store_true",
                        help="do not append the table to docs/results.md")


def run(args: argparse.Namespace) -> int:
    """Evaluate every mode, print the table, append it to docs/results.md."""
    import torch

    from vvhand_core.assets import default_model_path
    from vvhand_core.benchmarks.results import append_section

    model = args.model or str(default_model_path())
    pipeline = VirtualViewPipeline.from_checkpoint(model, PipelineConfig(device=args.device))
    frames = synthetic_test_frames(args.frames)
    results = evaluate_modes(pipeline, frames, oracle_centre=args.oracle_centre)
    table = results_table(results)
    print(table)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1))
    if not args.no_results:
        centre = "oracle centre (GT joint mean)" if args.oracle_centre else "localised centre"
        cmd = f"vvhand ablation --frames {args.frames}" + (
            " --oracle-centre" if args.oracle_centre else "") + (
            f" --model {args.model}" if args.model else "")
        body = (f"Model: `{model}`; {args.frames} synthetic test frames (seed {TEST_SEED}); "
                f"{centre}; device {pipeline.device}, torch threads "
                f"{torch.get_num_threads()}.\n\n{table}")
        path = append_section("Ablation: view selection and fusion (Tables 3 and 5)", cmd, body)
        print(f"appended to {path}")
    return 0
