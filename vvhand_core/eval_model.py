"""`vvhand eval-model`: run a model through the pipeline on a registered data set and score it.

    vvhand eval-model --dataset msra --root data/cvpr15_MSRAHandGestureDB --oracle-centre \
        --out out/eval_msra

ROOT is opened through the data set registry (:mod:`vvhand_core.data.registry`: nyu, icvl,
hands2019, msra, synthetic). Every frame runs through one ``VirtualViewPipeline`` (the
shipped model unless ``--model``; student-N with confidence fusion; frames independent, no
tracking). The model's joints are mapped onto the data set's through
:func:`vvhand_core.skeletons.joint_map`, never index by index, and scored with
:mod:`vvhand_core.evaluate`: mean 3D error, per-joint error, success curve (fraction of
frames whose worst joint is within t mm, t = 0..80).

Centre: ``--oracle-centre`` crops at the mean of the frame's labelled joints (as published
tables do); otherwise the pipeline's localiser finds the hand. A frame without a hand has
no prediction: it is left out of the metrics and counted (``frames_no_hand``), and its uvd
line is zeros, which the community scripts lift to the camera origin (a large error).

Joints: ``--joints all`` (default) needs every joint of the data set in the model's
skeleton, else it stops naming the missing joints; ``--joints common`` scores the joints
both skeletons denote (then the uvd files hold those only: not a community file).

Writes to ``--out``: ``metrics.json`` (what ran and the metrics), ``per_joint.md``,
``success.png`` (per-joint bars and success curve), ``groundtruth_uvd.txt`` and the
predictions (``predictions_uvd.txt`` or ``--write-uvd F``): one line per frame of J x
"u v d" in the data set's joint order and camera. For nyu, icvl and msra with all joints
these are community files: ``vvhand eval --dataset msra --gt ... --pred ...`` gives the same
numbers, and published result files can be scored against the same ground truth.

Exit status 0, or 2 with one message naming the problem: a root that is not the data set
(with the files expected), a skeleton mismatch, a bad model file, unlabelled frames.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vvhand_core.camera import Intrinsics, xyz_to_uvd
from vvhand_core.evaluate import Metrics, compute_metrics, format_metrics, plot_comparison
from vvhand_core.skeletons import JOINT_SETS, JointMap, SkeletonMismatch


@dataclass
class ModelRun:
    """Mapped predictions and labels of the frames run, in data set order.

    pred_mm (F, K, 3) camera mm, NaN rows where no hand was found; gt_mm (F, K, 3);
    intrinsics: each frame's camera; joint_names: the K data set joints scored.
    """

    frame_ids: list
    pred_mm: np.ndarray
    gt_mm: np.ndarray
    intrinsics: list[Intrinsics]
    joint_names: tuple[str, ...]
    seconds: float

    @property
    def found(self) -> np.ndarray:
        """(F,) bool: the frames with a prediction."""
        return np.isfinite(self.pred_mm).all(axis=(1, 2))


def run_model(pipeline, dataset, mapping: JointMap, oracle_centre: bool,
              num_frames: int | None = None, progress: bool = True) -> ModelRun:
    """Run frames 0..num_frames-1 (all when None) of ``dataset`` through ``pipeline``.

    ``mapping`` goes from the pipeline's skeleton to the data set's. ValueError naming the
    frame when one has no labels; SkeletonMismatch when a frame's skeleton is not
    ``mapping.dst``.
    """
    n = len(dataset) if num_frames is None else min(num_frames, len(dataset))
    if n <= 0:
        raise ValueError("no frames to evaluate")
    pred = np.full((n, len(mapping.dst_index), 3), np.nan)
    gt = np.zeros_like(pred)
    ids, intrinsics, seconds = [], [], 0.0
    for i in tqdm(range(n), desc="eval-model", unit="frame", disable=not progress):
        f = dataset[i]
        frame_id = f.meta.get("frame_id", i)
        if f.joints_mm is None:
            raise ValueError(f"frame {frame_id} has no joint labels: eval-model needs a "
                             "labelled split")
        if f.skeleton.name != mapping.dst.name:
            raise SkeletonMismatch(f"frame {frame_id} is labelled in {f.skeleton.name!r}, "
                                   f"the mapping expects {mapping.dst.name!r}")
        labels = np.asarray(f.joints_mm, np.float64)
        centre = labels.mean(axis=0) if oracle_centre else None
        t0 = time.perf_counter()
        result = pipeline.run(np.asarray(f.depth_mm, np.float32), f.intrinsics, centre)
        seconds += time.perf_counter() - t0
        if result.valid:
            pred[i] = mapping.predicted(np.asarray(result.joints_mm, np.float64))
        gt[i] = mapping.labelled(labels)
        ids.append(frame_id)
        intrinsics.append(f.intrinsics)
    return ModelRun(ids, pred, gt, intrinsics, mapping.joint_names, seconds)


def score(run: ModelRun, name: str = "") -> Metrics | None:
    """Metrics over the frames with a prediction (None when there is none)."""
    found = run.found
    if not found.any():
        return None
    return compute_metrics(run.pred_mm[found], run.gt_mm[found], name,
                           joint_names=run.joint_names)


def to_uvd(joints_mm: np.ndarray, intrinsics: list[Intrinsics]) -> np.ndarray:
    """(F, K, 3) camera mm -> (F, K, 3) "u v d" in each frame's camera; NaN rows -> zeros."""
    out = np.zeros_like(joints_mm, dtype=np.float64)
    for i, (joints, intr) in enumerate(zip(joints_mm, intrinsics)):
        if np.isfinite(joints).all():
            out[i] = xyz_to_uvd(joints, intr)
    return out


def per_joint_table(m: Metrics) -> str:
    """Markdown table: joint, mean error (mm); last row the mean over joints."""
    rows = [f"| {n} | {e:.2f} |" for n, e in zip(m.joint_names, m.per_joint_mm)]
    return "\n".join(["| joint | mean error (mm) |", "|---|---|", *rows,
                      f"| **mean** | {m.mean_error_mm:.2f} |"]) + "\n"


def write_outputs(out: Path, run: ModelRun, m: Metrics | None, info: dict,
                  uvd_path: Path | None = None) -> dict[str, str]:
    """Write metrics.json, per_joint.md, success.png and both uvd files; returns the paths."""
    from vvhand_core.evaluate import write_uvd_file

    out.mkdir(parents=True, exist_ok=True)
    paths = {"groundtruth_uvd": out / "groundtruth_uvd.txt",
             "predictions_uvd": uvd_path or out / "predictions_uvd.txt",
             "metrics": out / "metrics.json"}
    write_uvd_file(paths["groundtruth_uvd"], to_uvd(run.gt_mm, run.intrinsics))
    write_uvd_file(paths["predictions_uvd"], to_uvd(run.pred_mm, run.intrinsics))
    if m is not None:
        paths["per_joint"] = out / "per_joint.md"
        paths["per_joint"].write_text(per_joint_table(m), encoding="utf-8")
        paths["success_plot"] = plot_comparison([m], m.joint_names, out / "success.png",
                                                labels=[info["model_name"]])
    no_hand = [str(fid) for fid, ok in zip(run.frame_ids, run.found) if not ok]
    record = {**info, "frames": len(run.frame_ids), "frames_scored": int(run.found.sum()),
              "frames_no_hand": len(no_hand), "no_hand_frame_ids": no_hand,
              "ms_per_frame": round(1000.0 * run.seconds / len(run.frame_ids), 2),
              "files": {k: str(v) for k, v in paths.items()},
              "metrics": m.to_dict() if m is not None else None}
    paths["metrics"].write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return {k: str(v) for k, v in paths.items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand eval-model`."""
    from vvhand_core.data.registry import DATASETS

    parser.add_argument("--dataset", required=True, choices=list(DATASETS))
    parser.add_argument("--root", required=True, type=Path, help="the data set's folder")
    parser.add_argument("--split", default=None,
                        help="nyu, icvl: test (default) or train; hands2019: training")
    parser.add_argument("--subjects", default=None,
                        help="msra: comma-separated subjects, e.g. P0,P3 (default: all)")
    parser.add_argument("--model", default="",
                        help="checkpoint or export-onnx folder (default: the shipped model)")
    parser.add_argument("--oracle-centre", action="store_true",
                        help="crop at the labelled joints' mean instead of localising")
    parser.add_argument("--joints", choices=JOINT_SETS, default="all",
                        help="all: every data set joint (community metrics); common: "
                             "only those the model's skeleton shares")
    parser.add_argument("--frames", type=int, default=None, help="first N frames only")
    parser.add_argument("--selector", default="student", help="student | teacher | uniform")
    parser.add_argument("--num-views", type=int, default=3, help="N views fused")
    parser.add_argument("--cube", default="model",
                        help="crop cube: model (its training cube), dataset (the registry's) "
                             "or millimetres")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("out/eval_model"),
                        help="folder for metrics.json, per_joint.md, success.png, uvd files")
    parser.add_argument("--write-uvd", type=Path, default=None, metavar="F",
                        help="predictions in the community uvd format here "
                             "(default OUT/predictions_uvd.txt)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _cube(text: str, model_cube: float, dataset_cube: float) -> float:
    if text == "model":
        return model_cube
    if text == "dataset":
        return dataset_cube
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--cube must be model, dataset or millimetres, got {text!r}") from None
    if not value > 0:
        raise ValueError(f"--cube must be > 0 mm, got {value}")
    return value


def evaluate(args: argparse.Namespace) -> tuple[ModelRun, Metrics | None, dict, dict]:
    """Open, map, run, score and write (see the module docstring); errors as there."""
    from vvhand_core.assets import default_model_path
    from vvhand_core.data.registry import get_spec, open_dataset
    from vvhand_core.pipeline import VirtualViewPipeline
    from vvhand_core.skeletons import joint_map

    spec = get_spec(args.dataset)
    subjects = [s.strip() for s in args.subjects.split(",")] if args.subjects else None
    dataset = open_dataset(args.dataset, args.root, args.split, subjects)
    model = args.model or str(default_model_path())
    pipeline = VirtualViewPipeline.from_checkpoint(model)  # the model's own cube
    mapping = joint_map(pipeline.skeleton, dataset.skeleton, args.joints)
    pipeline.configure(device=args.device, selector=args.selector, num_views=args.num_views,
                       track=False, cube_mm=_cube(args.cube, pipeline.config.cube_mm,
                                                  spec.cube_mm))
    run = run_model(pipeline, dataset, mapping, args.oracle_centre, args.frames,
                    progress=not args.no_progress)
    cfg = pipeline.config
    info = {"dataset": spec.name, "root": str(args.root), "split": args.split,
            "subjects": subjects, "model": model, "model_name": Path(model).stem,
            "model_skeleton": pipeline.skeleton.name, "dataset_skeleton": spec.skeleton.name,
            "joints": args.joints, "joint_names": list(run.joint_names),
            "community_uvd": bool(spec.community_uvd and mapping.complete),
            "centre": "oracle (labelled joints' mean)" if args.oracle_centre else
            f"localised ({cfg.localiser})",
            "pipeline": {"selector": cfg.selector, "num_views": cfg.num_views,
                         "fusion": cfg.fusion, "cube_mm": cfg.cube_mm,
                         "device": str(pipeline.device), "backend": cfg.backend}}
    m = score(run, f"{spec.name} ({info['centre']})")
    paths = write_outputs(args.out, run, m, info, args.write_uvd)
    return run, m, info, paths


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the metrics and where they were written."""
    from vvhand_core.data.base import DatasetError
    from vvhand_core.errors import CheckpointError

    try:
        result, m, info, paths = evaluate(args)
    except (DatasetError, CheckpointError, ValueError) as exc:  # SkeletonMismatch included
        hint = " (option --joints common)" if isinstance(exc, SkeletonMismatch) else ""
        print(f"vvhand eval-model: {exc}{hint}", file=sys.stderr)
        return 2
    if m is not None:
        print(format_metrics(m))
    frames, scored = len(result.frame_ids), int(result.found.sum())
    print(f"frames: {frames}, scored {scored}, no hand found in {frames - scored}"
          + (" (written as zero lines in the uvd file)" if scored < frames else ""))
    if not info["community_uvd"]:
        print("uvd files: the data set's camera and joint order, not a community result file")
    for key, path in paths.items():
        print(f"{key}: {path}")
    return 0
