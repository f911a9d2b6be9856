"""Pose accuracy: mean / per-joint 3D error, success-rate curve, community file I/O, plots.

Metrics (the same code serves ``vvhand eval``, training validation and rosbag replay):

* mean 3D joint error: Euclidean distance in mm, averaged over all joints and frames;
* per-joint error: averaged over frames, one value per joint;
* success rate: fraction of frames whose *worst* joint is within t mm (error <= t), for
  t = 0..80 mm by default.

Community result format: a text file with one line per test frame holding J x "u v d"
(pixels and mm) in the dataset's convention. Both prediction and ground truth are lifted
to xyz with the same intrinsics before measuring: NYU (588.03, 587.07, 320, 240), ICVL
(240.99, 240.96, 160, 120), MSRA (241.42, 241.42, 160, 120) -- the data set registry's
(``vvhand_core.data.registry``), see :func:`dataset_convention`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vvhand_core.camera import Intrinsics, uvd_to_xyz
from vvhand_core.skeletons import Skeleton

DEFAULT_THRESHOLDS_MM = np.arange(0, 81, dtype=np.float64)


def _as_numpy(x) -> np.ndarray:
    """Numpy float64 view of an array-like or a torch tensor (any device)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def joint_errors(pred_mm, gt_mm) -> np.ndarray:
    """Euclidean error per frame and joint: pred, gt (F, J, 3) mm -> (F, J) mm.

    Accepts numpy arrays or torch tensors; always returns numpy float64.
    """
    pred, gt = _as_numpy(pred_mm), _as_numpy(gt_mm)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"pred and gt must both be (F, J, 3), got {pred.shape} and {gt.shape}")
    if pred.shape[0] == 0:
        raise ValueError("no frames to evaluate")
    return np.linalg.norm(pred - gt, axis=-1)


def mean_error(pred_mm, gt_mm) -> float:
    """Mean 3D joint error (mm) over all joints and frames; pred, gt (F, J, 3)."""
    return float(joint_errors(pred_mm, gt_mm).mean())


def per_joint_error(pred_mm, gt_mm) -> np.ndarray:
    """Mean error of each joint over frames (mm): pred, gt (F, J, 3) -> (J,)."""
    return joint_errors(pred_mm, gt_mm).mean(axis=0)


def success_rate(pred_mm, gt_mm, thresholds=DEFAULT_THRESHOLDS_MM) -> np.ndarray:
    """Fraction of frames whose worst joint error is <= t, for each t: -> (T,) in [0, 1]."""
    worst = joint_errors(pred_mm, gt_mm).max(axis=1)  # (F,)
    t = np.asarray(thresholds, dtype=np.float64)
    return (worst[None, :] <= t[:, None]).mean(axis=1)


@dataclass
class Metrics:
    """Accuracy of one prediction set.

    per_joint_mm (J,), thresholds_mm (T,), success_rate (T,) fractions in [0, 1].
    """

    pred: str
    mean_error_mm: float
    per_joint_mm: np.ndarray
    thresholds_mm: np.ndarray
    success_rate: np.ndarray
    num_frames: int
    joint_names: tuple[str, ...] = field(default_factory=tuple)

    def success_at(self, threshold_mm: float) -> float:
        """Success fraction at a threshold (exact match required in ``thresholds_mm``)."""
        hits = np.nonzero(np.isclose(self.thresholds_mm, threshold_mm))[0]
        if hits.size == 0:
            raise ValueError(f"threshold {threshold_mm} mm was not evaluated")
        return float(self.success_rate[hits[0]])

    def to_dict(self) -> dict:
        """Plain-JSON form: pred, mean_error_mm, per_joint_mm, success_rate [[t, f], ...]."""
        return {
            "pred": self.pred,
            "mean_error_mm": round(float(self.mean_error_mm), 6),
            "num_frames": int(self.num_frames),
            "joint_names": list(self.joint_names),
            "per_joint_mm": [round(float(x), 6) for x in self.per_joint_mm],
            "success_rate": [
                [float(t), round(float(f), 6)]
                for t, f in zip(self.thresholds_mm, self.success_rate)
            ],
        }

    def to_json(self) -> str:
        """One-line JSON of :meth:`to_dict`."""
        return json.dumps(self.to_dict())


def compute_metrics(
    pred_mm,
    gt_mm,
    name: str = "",
    skeleton: Skeleton | None = None,
    thresholds=DEFAULT_THRESHOLDS_MM,
    joint_names: Sequence[str] | None = None,
) -> Metrics:
    """All metrics of pred vs gt (F, J, 3) mm (numpy or torch) as a :class:`Metrics`.

    The joints are named by ``joint_names`` or else ``skeleton`` (ValueError when their
    count is not J).
    """
    err = joint_errors(pred_mm, gt_mm)
    names = tuple(joint_names) if joint_names is not None else (
        skeleton.joint_names if skeleton is not None else ())
    if names and len(names) != err.shape[1]:
        raise ValueError(f"{err.shape[1]} joints given but {len(names)} joint names "
                         f"({skeleton.name if skeleton is not None else 'joint_names'})")
    t = np.asarray(thresholds, dtype=np.float64)
    worst = err.max(axis=1)
    return Metrics(
        pred=name,
        mean_error_mm=float(err.mean()),
        per_joint_mm=err.mean(axis=0),
        thresholds_mm=t,
        success_rate=(worst[None, :] <= t[:, None]).mean(axis=1),
        num_frames=int(err.shape[0]),
        joint_names=names,
    )


# ----------------------------------------------------------------------- file formats


def eval_datasets() -> tuple[str, ...]:
    """The registered data sets with a community result format ("nyu", "icvl", "msra")."""
    from vvhand_core.data.registry import DATASETS

    return tuple(name for name, spec in DATASETS.items() if spec.community_uvd)


def dataset_convention(dataset: str) -> tuple[Intrinsics, Skeleton]:
    """Evaluation intrinsics and joint set of a community result format (:func:`eval_datasets`).

    ValueError naming the known formats for any other name.
    """
    from vvhand_core.data.registry import DATASETS

    spec = DATASETS.get(dataset)
    if spec is None or not spec.community_uvd:
        raise ValueError(f"unknown dataset {dataset!r}; known: {', '.join(eval_datasets())}")
    return spec.intrinsics, spec.skeleton


def read_uvd_file(path: str | Path, num_joints: int) -> np.ndarray:
    """Read a community result file -> uvd (F, J, 3) float64.

    Every line must hold exactly 3 * num_joints finite numbers; blank lines are allowed only
    at the end. Errors name the file and the line.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, expected a file")
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    n = 3 * num_joints
    rows = []
    for lineno, line in enumerate(lines, start=1):
        tokens = line.split()
        if len(tokens) != n:
            raise ValueError(
                f"{path}:{lineno}: expected {n} values ({num_joints} joints x u v d), "
                f"got {len(tokens)}"
            )
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            raise ValueError(f"{path}:{lineno}: non-numeric value") from None
        if not all(np.isfinite(values)):
            raise ValueError(f"{path}:{lineno}: non-finite value")
        rows.append(values)
    if not rows:
        raise ValueError(f"{path}: no frames")
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), num_joints, 3)


def write_uvd_file(path: str | Path, uvd: np.ndarray, decimals: int = 4) -> None:
    """Write uvd (F, J, 3) as one line per frame of J x "u v d"."""
    arr = _as_numpy(uvd)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"uvd must be (F, J, 3), got {arr.shape}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for frame in arr.reshape(arr.shape[0], -1):
            fh.write(" ".join(f"{v:.{decimals}f}" for v in frame) + "\n")


def evaluate_uvd_files(
    gt_path: str | Path,
    pred_paths: Sequence[str | Path],
    dataset: str,
    thresholds=DEFAULT_THRESHOLDS_MM,
) -> list[Metrics]:
    """Score each prediction file against the ground-truth file (both community format)."""
    intr, skeleton = dataset_convention(dataset)
    gt_xyz = _checked_xyz(read_uvd_file(gt_path, skeleton.num_joints), intr, gt_path)
    results = []
    for p in pred_paths:
        pred_uvd = read_uvd_file(p, skeleton.num_joints)
        if pred_uvd.shape[0] != gt_xyz.shape[0]:
            raise ValueError(
                f"{p} has {pred_uvd.shape[0]} frames but {gt_path} has {gt_xyz.shape[0]}"
            )
        pred_xyz = _checked_xyz(pred_uvd, intr, p)
        with np.errstate(over="ignore", invalid="ignore"):
            m = compute_metrics(pred_xyz, gt_xyz, str(p), skeleton, thresholds)
        if not (np.isfinite(m.mean_error_mm) and np.all(np.isfinite(m.per_joint_mm))):
            raise ValueError(f"{p}: the errors against {gt_path} overflow (values too large "
                             "to be millimetres or pixels)")
        results.append(m)
    return results


def _checked_xyz(uvd: np.ndarray, intr: Intrinsics, path) -> np.ndarray:
    """Community uvd -> xyz mm; ValueError naming the file and line where one overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        xyz = uvd_to_xyz(uvd, intr)
    bad = ~np.isfinite(xyz).reshape(xyz.shape[0], -1).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}:{int(np.argmax(bad)) + 1}: values too large (the 3D "
                         "coordinates overflow)")
    return xyz


# ----------------------------------------------------------------------- reporting

REPORT_THRESHOLDS_MM = (10, 20, 30, 40, 50, 60, 70, 80)


def format_metrics(m: Metrics) -> str:
    """Human-readable block: mean error (3 decimals), per-joint errors, success rates."""
    lines = [f"{m.pred}: mean error {m.mean_error_mm:.3f} mm over {m.num_frames} frames"]
    names = m.joint_names or tuple(f"j{i}" for i in range(len(m.per_joint_mm)))
    lines.append("  per joint (mm):")
    for name, e in zip(names, m.per_joint_mm):
        lines.append(f"    {name:<12s} {e:8.3f}")
    rates = []
    for t in REPORT_THRESHOLDS_MM:
        if np.isclose(m.thresholds_mm, t).any():
            rates.append(f"<={t}: {100 * m.success_at(t):.1f}%")
    lines.append("  success rate (worst joint): " + ", ".join(rates))
    return "\n".join(lines)


def comparison_table(results: Sequence[Metrics]) -> str:
    """Markdown table: one row per prediction, mean error and success at a few thresholds."""
    shown = [
        t
        for t in REPORT_THRESHOLDS_MM
        if all(np.isclose(r.thresholds_mm, t).any() for r in results)
    ]
    header = ["prediction", "mean (mm)", "frames"] + [f"<= {t} mm" for t in shown]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        cells = [r.pred, f"{r.mean_error_mm:.3f}", str(r.num_frames)]
        cells += [f"{100 * r.success_at(t):.1f}%" for t in shown]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_comparison(
    results: Sequence[Metrics], skeleton: Skeleton | Sequence[str], path: str | Path,
    labels=None
) -> Path:
    """Two panels as in the paper's Figure 6: per-joint error bars and success curves.

    ``skeleton``: the joints' skeleton or their names (ValueError when a result has another
    joint count, or ``path``'s folder does not exist). Written with matplotlib's Agg canvas
    (no display, no global pyplot state).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not results:
        raise ValueError("nothing to plot")
    labels = list(labels) if labels is not None else [Path(r.pred).stem or r.pred for r in results]
    fig = Figure(figsize=(13, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax_bar, ax_curve = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1.0]})
    joint_names = tuple(skeleton.joint_names if isinstance(skeleton, Skeleton) else skeleton)
    names = [*joint_names, "mean"]
    x = np.arange(len(names))
    width = 0.8 / len(results)
    for i, (r, label) in enumerate(zip(results, labels)):
        if len(r.per_joint_mm) != len(joint_names):
            raise ValueError(f"{r.pred}: {len(r.per_joint_mm)} joints, the plot has "
                             f"{len(joint_names)} names")
        values = [*r.per_joint_mm, r.mean_error_mm]
        ax_bar.bar(x - 0.4 + (i + 0.5) * width, values, width, label=label)
        ax_curve.plot(r.thresholds_mm, 100.0 * r.success_rate, label=label, linewidth=1.8)
    ax_bar.set_xticks(x, names, rotation=60, ha="right", fontsize=8)
    ax_bar.set_ylabel("mean error (mm)")
    ax_bar.set_title("mean joint error per joint")
    ax_bar.grid(axis="y", alpha=0.3)
    ax_bar.legend(fontsize=8)
    ax_curve.set_xlabel("maximum allowed distance to GT (mm)")
    ax_curve.set_ylabel("fraction of frames within distance (%)")
    ax_curve.set_title("success rate (worst joint)")
    ax_curve.set_ylim(0, 100)
    ax_curve.set_xlim(float(results[0].thresholds_mm[0]), float(results[0].thresholds_mm[-1]))
    ax_curve.grid(alpha=0.3)
    ax_curve.legend(fontsize=8, loc="lower right")
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"{path}: directory {path.parent} does not exist")
    fig.savefig(path, dpi=120)
    return path
