"""Rosbag replay evaluation: run vvhand on every depth frame of a bag and score it.

offline: each depth frame is paired with the camera_info of its stamp and decoded exactly
         as the node does (vvhand_ros.pairing, vvhand_ros.depth_input), then the pipeline
         runs on it directly (no DDS); every frame is processed or recorded with its reason.
live:    the bag's depth and camera_info messages are published onto topics in recording
         order (original timing, or as fast as the node keeps up), a hand_pose_node (started
         here as a child process, or one already running) pairs and processes them, and its
         HandPose output is recorded and matched to the input by header stamp. Frames
         published but never answered count as dropped (vvhand_ros.replay_live).
The depth transport follows the bag: sensor_msgs/Image on the depth topic is raw,
CompressedImage on it or on ``<depth topic>/compressedDepth`` is compressedDepth.
Both report accuracy against the bag's ground truth (vvhand.evaluate metrics, shared with
training validation and `vvhand eval`) of the first hand (HandPose, the nearest), and every
hand of every frame against every labelled hand (``hands``: vvhand_core.hand_scores; bags
from `vvhand synth-bag --scenes 3` label every hand, others hand 0 only), per-frame latency
percentiles and throughput (answered frames per second of serving: from the first frame
sent, or processed, to the last answer; model load and node start-up are not counted), and
write ``replay.json`` and ``replay.png``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vvhand_core.deployed import DEPLOYED
from vvhand_core.evaluate import compute_metrics
from vvhand_core.load import resolve_backend
from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline
from vvhand_ros.bag import (
    DEFAULT_DEPTH_TOPIC,
    DEFAULT_GT_TOPIC,
    DEFAULT_INFO_TOPIC,
    BagError,
    depth_topic_of,
    read_frames,
    read_ground_truth,
    read_ground_truth_hands,
)
from vvhand_ros.depth_input import ConversionError, DepthInput
from vvhand_ros.replay_sheet import skeleton_for, write_replay_sheet


@dataclass
class ReplayConfig:
    """Options of one replay run (see `vvhand replay --help`)."""

    bag: Path
    mode: str = "offline"                 # offline | live
    model: str = ""                       # checkpoint; "" = the shipped default model
    selector: str = DEPLOYED.selector     # pipeline and fit: the node's defaults
    num_views: int = DEPLOYED.num_views
    fusion: str = DEPLOYED.fusion
    device: str = "auto"
    fit: bool = DEPLOYED.fit              # hand-model fit after the network
    fit_max_residual_mm: float = DEPLOYED.fit_max_residual_mm  # with fit: larger = no hand
    mirror: bool = DEPLOYED.mirror        # also the mirror pass (PipelineConfig.mirror)
    alternate_model: str = ""             # the node's alternate_model ("" none, "grasp", a path)
    max_hands: int = DEPLOYED.max_hands   # hands per frame
    num_threads: int = 0                  # live: the node's num_threads (0 = its default)
    backend: str = DEPLOYED.backend       # auto (as the node) | torch | onnxruntime
    depth_topic: str = DEFAULT_DEPTH_TOPIC  # base topic or the recorded compressedDepth one
    info_topic: str = DEFAULT_INFO_TOPIC
    camera_model: str = "auto"            # auto | rectified | raw (vvhand_ros.camera_model)
    sync_slop_s: float = 0.0              # camera_info pairing: 0 = same stamp
    gt_topic: str = DEFAULT_GT_TOPIC
    rate: float = 0.0                     # live: 1.0 = original timing, 0 = as fast as served
    out_dir: Path | None = None           # where replay.json / replay.png go
    node_namespace: str = ""              # live: where the node's ~/hand_pose lives
    start_node: bool = True               # live: start hand_pose_node as a child process
    max_frames: int = 0                   # 0 = all
    answer_timeout_s: float = 5.0         # live, rate 0: wait this long for each answer
    startup_timeout_s: float = 60.0       # live: node start-up (model load, discovery)


@dataclass
class FrameRecord:
    """What happened to one depth frame of the bag."""

    index: int
    stamp_ns: int
    answered: bool = False
    valid: bool = False
    joints_mm: list | None = None
    skeleton: str = ""                    # the estimate's joint set (e.g. "hands2019_21")
    processing_ms: float = float("nan")   # in the pipeline / node, receipt -> estimate
    end_to_end_ms: float = float("nan")   # live: publish -> HandPose received
    answered_at_s: float = float("nan")   # answer time after the first frame was sent (live)
    message: str = ""                     # or its processing began (offline)
    hands_mm: list | None = None          # every reported hand's joints (HandPoseArray)
    hands_sides: list | None = None       # their sides ("left", "right", "unknown")


@dataclass
class ReplayReport:
    """Summary of a replay; ``to_dict`` is what replay.json holds."""

    bag: str
    mode: str
    frames: int
    answered: int
    dropped: int
    valid: int
    wall_s: float                         # the whole run, model load and node start-up included
    fps: float                            # answered frames / serving_s
    serving_s: float                      # first frame sent (or processed) -> last answer
    latency_ms: dict[str, float]
    accuracy: dict | None
    config: dict = field(default_factory=dict)
    hands: dict = field(default_factory=dict)  # every hand scored: "all", "two-hand frames"...
    records: list[FrameRecord] = field(default_factory=list)
    contact_sheet: str = ""               # worst / median / best frames drawn ("" = none)

    def to_dict(self, with_records: bool = True) -> dict:
        """JSON-able dict (records optional)."""
        d = asdict(self)
        if not with_records:
            d.pop("records")
        return d


def _pipeline_config(cfg: ReplayConfig) -> PipelineConfig:
    backend = resolve_backend(cfg.backend, cfg.device, model_path(cfg))
    return PipelineConfig(selector=cfg.selector, num_views=cfg.num_views, fusion=cfg.fusion,
                          device=cfg.device, backend=backend,
                          fit=DEPLOYED.fit_config(max_residual_mm=cfg.fit_max_residual_mm)
                          if cfg.fit else None, mirror=cfg.mirror, max_hands=cfg.max_hands)


def _load_pipeline(cfg: ReplayConfig) -> VirtualViewPipeline:
    """The node's pipeline for ``cfg``, with its alternate model when one is set."""
    from vvhand_core.assets import alternate_model_path
    from vvhand_core.load import load_alternate

    config = _pipeline_config(cfg)
    pipe = VirtualViewPipeline.from_checkpoint(model_path(cfg), config)
    alternate = alternate_model_path(cfg.alternate_model)
    if alternate:
        options = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        pipe.set_alternate(load_alternate(alternate, options))
    return pipe


def model_path(cfg: ReplayConfig) -> str:
    """The checkpoint used: the configured one or the shipped default."""
    from vvhand_core.assets import default_model_path

    return cfg.model or str(default_model_path())


def replay_offline(cfg: ReplayConfig, pipeline: VirtualViewPipeline | None = None,
                   progress: bool = True) -> list[FrameRecord]:
    """Run the pipeline on each depth frame of the bag.

    Frames that cannot be paired or decoded are recorded with their reason, never skipped
    silently.
    """
    from tqdm import tqdm

    pipe = pipeline or _load_pipeline(cfg)
    depth_input = DepthInput(cfg.camera_model, depth_topic_of(cfg.bag, cfg.depth_topic).base)
    records: list[FrameRecord] = []
    frames = read_frames(cfg.bag, cfg.depth_topic, cfg.info_topic,
                         slop_ns=round(cfg.sync_slop_s * 1e9))
    t_first = None
    for frame in tqdm(frames, desc="replay (offline)", unit="frame", disable=not progress):
        if cfg.max_frames and frame.index >= cfg.max_frames:
            continue
        rec = FrameRecord(frame.index, frame.stamp_ns)
        records.append(rec)
        if frame.info is None:
            rec.message = f"unpaired: {frame.reason}"
            continue
        try:  # the node's own decoding and checks, so offline rejects what the node would
            depth, intr = depth_input.prepare(frame.image, frame.info)
        except ConversionError as exc:
            rec.message = f"rejected: {exc}"
            continue
        t0 = time.perf_counter()
        t_first = t0 if t_first is None else t_first
        result = pipe.run_hands(depth, intr)
        rec.processing_ms = 1000.0 * (time.perf_counter() - t0)
        rec.answered_at_s = time.perf_counter() - t_first
        rec.answered, rec.valid, rec.message = True, bool(result.valid), result.message
        rec.hands_mm = [np.asarray(h.joints_mm, np.float64).tolist() for h in result.hands]
        rec.hands_sides = [h.side for h in result.hands]
        if result.valid:  # the hand ~/hand_pose carries
            rec.joints_mm = np.asarray(result.primary.joints_mm, np.float64).tolist()
            rec.skeleton = pipe.skeleton.name
    return sorted(records, key=lambda r: r.index)


def score_hands(records: list[FrameRecord], gt_hands: dict[int, list[np.ndarray]]) -> dict:
    """Every answered frame with ground truth: its hands against every labelled hand.

    {"all" | "one-hand frames" | "two-hand frames": vvhand_core.hand_scores.summarise}
    (groups by the number of labelled hands; sides are not labelled in bags).
    """
    from vvhand_core.hand_scores import score_frame, summarise

    scored = [(r, gt_hands[r.stamp_ns]) for r in records
              if r.answered and r.hands_mm is not None and r.stamp_ns in gt_hands]
    if not scored:
        return {}
    scores = [(len(lab), score_frame(r.hands_mm, r.hands_sides or [], lab, [None] * len(lab)))
              for r, lab in scored]
    out = {"all": summarise([s for _, s in scores])}
    for n, name in ((1, "one-hand frames"), (2, "two-hand frames")):
        group = [s for k, s in scores if k == n]
        if group:
            out[name] = summarise(group)
    return out


def summarize(cfg: ReplayConfig, records: list[FrameRecord], wall_s: float,
              gt: dict[int, np.ndarray], gt_hands: dict | None = None) -> ReplayReport:
    """Accuracy on frames with ground truth and a valid estimate, latency, throughput.

    ``gt_hands`` (bag.read_ground_truth_hands): every labelled hand, for ``hands``.
    """
    answered = [r for r in records if r.answered]
    at = np.array([r.answered_at_s for r in answered], np.float64)
    serving_s = float(np.nanmax(at)) if np.isfinite(at).any() else float("nan")
    proc = np.array([r.processing_ms for r in answered], np.float64)
    e2e = np.array([r.end_to_end_ms for r in answered], np.float64)
    latency = {}
    for name, arr in (("processing", proc), ("end_to_end", e2e)):
        arr = arr[np.isfinite(arr)]
        for q in (50, 90, 95, 99):
            latency[f"{name}_p{q}"] = float(np.percentile(arr, q)) if arr.size else float("nan")
        latency[f"{name}_mean"] = float(arr.mean()) if arr.size else float("nan")
    accuracy = None
    scored = [r for r in answered if r.valid and r.stamp_ns in gt]
    if gt:
        with_gt = [r for r in records if r.stamp_ns in gt]
        if scored:
            pred = np.array([r.joints_mm for r in scored], np.float64)
            true = np.array([gt[r.stamp_ns] for r in scored], np.float64)
            m = compute_metrics(pred, true, name=str(cfg.bag))
            accuracy = m.to_dict()
            accuracy["success_at_20mm"] = m.success_at(20.0)
        else:
            accuracy = {}
        accuracy["frames_with_gt"] = len(with_gt)
        accuracy["frames_scored"] = len(scored)
        accuracy["frames_without_estimate"] = len(with_gt) - len(scored)
    return ReplayReport(
        bag=str(cfg.bag), mode=cfg.mode, frames=len(records), answered=len(answered),
        dropped=len(records) - len(answered), valid=sum(r.valid for r in records),
        wall_s=wall_s, serving_s=serving_s,
        fps=len(answered) / serving_s if serving_s > 0 else float("nan"),
        latency_ms=latency, accuracy=accuracy,
        config={k: str(v) for k, v in asdict(cfg).items()}, records=records,
        hands=score_hands(records, gt_hands or {}),
    )


def plot_report(report: ReplayReport, path: Path) -> Path:
    """Plot success rate and per-joint error (with ground truth) and per-frame latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = report.accuracy or {}
    has_acc = bool(acc.get("success_rate"))
    n = 3 if has_acc else 1
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 4))
    axes = np.atleast_1d(axes)
    if has_acc:
        curve = np.array(acc["success_rate"], np.float64)
        axes[0].plot(curve[:, 0], 100 * curve[:, 1])
        axes[0].set(xlabel="max joint error threshold [mm]", ylabel="frames within [%]",
                    title=f"success rate (mean {acc['mean_error_mm']:.2f} mm)", ylim=(0, 100))
        axes[0].grid(alpha=0.3)
        per = np.array(acc["per_joint_mm"], np.float64)
        axes[1].bar(np.arange(per.size), per)
        axes[1].set(xlabel="joint", ylabel="mean error [mm]", title="per-joint error")
    ax = axes[-1]
    idx = [r.index for r in report.records if r.answered]
    ax.plot(idx, [r.processing_ms for r in report.records if r.answered], ".", label="processing")
    if report.mode == "live":
        ax.plot(idx, [r.end_to_end_ms for r in report.records if r.answered], ".",
                label="end to end")
    ax.set(xlabel="frame", ylabel="latency [ms]",
           title=f"{report.mode}: {report.fps:.1f} frames/s, {report.dropped} dropped")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_replay(cfg: ReplayConfig, progress: bool = True) -> tuple[ReplayReport, Path, Path]:
    """Replay, summarise and write ``replay.json`` + ``replay.png`` into cfg.out_dir."""
    if cfg.mode not in ("offline", "live"):
        raise ValueError(f"mode must be offline or live, got {cfg.mode!r}")
    gt = read_ground_truth(cfg.bag, cfg.gt_topic)
    gt_hands = read_ground_truth_hands(cfg.bag, cfg.gt_topic)
    t0 = time.perf_counter()
    if cfg.mode == "offline":
        records = replay_offline(cfg, progress=progress)
    else:
        from vvhand_ros.replay_live import replay_live

        records = replay_live(cfg, progress=progress)
    report = summarize(cfg, records, time.perf_counter() - t0, gt, gt_hands)
    out = Path(cfg.out_dir or (Path(cfg.bag).parent / f"{Path(cfg.bag).name}_replay"))
    out.mkdir(parents=True, exist_ok=True)
    sheet = write_replay_sheet(cfg, records, gt, skeleton_for(records), out / "contact_sheet.png")
    report.contact_sheet = str(sheet) if sheet else ""
    json_path = out / "replay.json"
    json_path.write_text(json.dumps(report.to_dict(), indent=1))
    png_path = plot_report(report, out / "replay.png")
    return report, json_path, png_path


def format_report(report: ReplayReport) -> str:
    """Human-readable summary lines."""
    lat = report.latency_ms
    lines = [
        f"bag {report.bag} ({report.mode}): {report.frames} frames, {report.answered} answered, "
        f"{report.dropped} dropped, {report.valid} with a hand",
        f"throughput {report.fps:.2f} frames/s over {report.serving_s:.1f} s of serving "
        f"({report.wall_s:.1f} s in all, with start-up)",
        f"processing latency p50 {lat['processing_p50']:.1f} ms, p95 "
        f"{lat['processing_p95']:.1f} ms",
    ]
    if report.mode == "live":
        lines.append(f"end-to-end latency p50 {lat['end_to_end_p50']:.1f} ms, p95 "
                     f"{lat['end_to_end_p95']:.1f} ms")
    acc = report.accuracy
    if acc is None:
        lines.append("no ground truth in this bag: accuracy not scored")
    elif "mean_error_mm" in acc:
        lines.append(f"mean joint error {acc['mean_error_mm']:.3f} mm over "
                     f"{acc['frames_scored']} of {acc['frames_with_gt']} frames with ground "
                     f"truth; all joints within 20 mm in {100 * acc['success_at_20mm']:.1f}% "
                     "of frames")
    else:
        lines.append(f"no frame with ground truth got an estimate ({acc['frames_with_gt']})")
    for name, s in report.hands.items():
        lines.append(f"every hand, {name}: {s['matched']} of {s['labelled']} labelled hands "
                     f"reported ({s['reported_pct']:.1f} %), {s['extra']} extra "
                     f"({s['extra_pct']:.1f} %), per-hand error {s['mean_error_mm']:.2f} mm")
    return "\n".join(lines)


__all__ = ["BagError", "FrameRecord", "ReplayConfig", "ReplayReport", "format_report",
           "plot_report", "replay_offline", "run_replay", "summarize"]
