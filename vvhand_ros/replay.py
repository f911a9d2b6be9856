"""Rosbag replay evaluation: run vvhand on every depth frame of a bag and score it.

offline: each depth frame is paired with the camera_info of its stamp and decoded exactly
         as the node does (vvhand_ros.pairing, vvhand_ros.depth_input), then the pipeline
         runs on it directly (no DDS); every frame is processed or recorded with its reason.
live:    the bag's depth and camera_info messages are published onto topics in recording
         order (original timing, or as fast as the node keeps up), a hand_pose_node (started
         here as a child process, or one already running) pairs and processes them, and its
         HandPose output is recorded and matched to the input by header stamp. Frames
         published but never answered count as dropped.
The depth transport follows the bag: sensor_msgs/Image on the depth topic is raw,
CompressedImage on it or on ``<depth topic>/compressedDepth`` is compressedDepth.
Both report accuracy against the bag's ground truth (vvhand.evaluate metrics, shared with
training validation and `vvhand eval`), per-frame latency percentiles and throughput, and
write ``replay.json`` and ``replay.png``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vvhand_core.evaluate import compute_metrics
from vvhand_core.fit import FitConfig
from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline
from vvhand_ros.bag import (
    DEFAULT_DEPTH_TOPIC,
    DEFAULT_GT_TOPIC,
    DEFAULT_INFO_TOPIC,
    BagError,
    DepthTopic,
    depth_topic_of,
    read_frames,
    read_ground_truth,
    read_messages,
    stamp_to_ns,
)
from vvhand_ros.depth_input import ConversionError, DepthInput
from vvhand_ros.replay_sheet import skeleton_for, write_replay_sheet


@dataclass
class ReplayConfig:
    """Options of one replay run (see `vvhand replay --help`)."""

    bag: Path
    mode: str = "offline"                 # offline | live
    model: str = ""                       # checkpoint; "" = the shipped default model
    selector: str = "student"
    num_views: int = 3
    fusion: str = "confidence"
    device: str = "auto"
    fit: bool = False                     # hand-model fit after the network (issue 16)
    backend: str = "torch"                # where the networks run: torch | onnxruntime
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
    message: str = ""


@dataclass
class ReplayReport:
    """Summary of a replay; ``to_dict`` is what replay.json holds."""

    bag: str
    mode: str
    frames: int
    answered: int
    dropped: int
    valid: int
    wall_s: float
    fps: float
    latency_ms: dict[str, float]
    accuracy: dict | None
    config: dict = field(default_factory=dict)
    records: list[FrameRecord] = field(default_factory=list)
    contact_sheet: str = ""               # worst / median / best frames drawn ("" = none)

    def to_dict(self, with_records: bool = True) -> dict:
        """JSON-able dict (records optional)."""
        d = asdict(self)
        if not with_records:
            d.pop("records")
        return d


def _pipeline_config(cfg: ReplayConfig) -> PipelineConfig:
    return PipelineConfig(selector=cfg.selector, num_views=cfg.num_views, fusion=cfg.fusion,
                          device=cfg.device, backend=cfg.backend,
                          fit=FitConfig() if cfg.fit else None)


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

    pipe = pipeline or VirtualViewPipeline.from_checkpoint(model_path(cfg), _pipeline_config(cfg))
    depth_input = DepthInput(cfg.camera_model, depth_topic_of(cfg.bag, cfg.depth_topic).base)
    records: list[FrameRecord] = []
    frames = read_frames(cfg.bag, cfg.depth_topic, cfg.info_topic,
                         slop_ns=round(cfg.sync_slop_s * 1e9))
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
        result = pipe.run(depth, intr)
        rec.processing_ms = 1000.0 * (time.perf_counter() - t0)
        rec.answered, rec.valid, rec.message = True, bool(result.valid), result.message
        if result.valid:
            rec.joints_mm = np.asarray(result.joints_mm, np.float64).tolist()
            rec.skeleton = pipe.skeleton.name
    return sorted(records, key=lambda r: r.index)


def _node_command(cfg: ReplayConfig, depth: DepthTopic) -> list[str]:
    reliable = [f"qos_overrides.{topic}.subscription.reliability:=reliable"
                for topic in (depth.topic, cfg.info_topic)]  # replay scores every frame
    args = [sys.executable, "-m", "vvhand_ros.node", "--ros-args",
            "-r", f"depth/image:={depth.base}",
            "-r", f"depth/camera_info:={cfg.info_topic}",
            "-p", f"depth_transport:={depth.transport}",
            "-p", f"camera_model:={cfg.camera_model}",
            "-p", f"sync_slop_s:={float(cfg.sync_slop_s)}",
            "-p", f"model_path:={model_path(cfg)}",
            "-p", f"selector:={cfg.selector}",
            "-p", f"num_views:={cfg.num_views}",
            "-p", f"fusion:={cfg.fusion}",
            "-p", f"device:={cfg.device}",
            "-p", f"fit:={str(cfg.fit).lower()}",
            "-p", f"backend:={cfg.backend}",
            "-p", "publish_tf:=false",
            "-p", "smoothing:=false",  # score the pipeline's own joints, as offline
            "-p", "status_period_s:=5.0"]
    for override in reliable:
        args += ["-p", override]
    if cfg.node_namespace:
        args += ["-r", f"__ns:={cfg.node_namespace}"]
    return args


def replay_live(cfg: ReplayConfig, progress: bool = True) -> list[FrameRecord]:
    """Publish the bag onto topics, record the node's HandPose answers, match by stamp."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, CompressedImage, Image
    from tqdm import tqdm

    from vvhand.msg import HandPose

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    depth = depth_topic_of(cfg.bag, cfg.depth_topic)
    messages = list(read_messages(cfg.bag, cfg.depth_topic, cfg.info_topic))
    if cfg.max_frames:  # the first max_frames images and every camera_info up to the last
        images = [i for i, m in enumerate(messages) if m.is_image]
        if len(images) > cfg.max_frames:
            last = images[cfg.max_frames - 1]
            messages = messages[: last + 1] + [m for m in messages[last + 1:] if not m.is_image]
    frames = [m for m in messages if m.is_image]
    records = {m.stamp_ns: FrameRecord(i, m.stamp_ns) for i, m in enumerate(frames)}
    sent_at: dict[int, float] = {}

    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("vvhand_replay", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    image_type = Image if depth.transport == "raw" else CompressedImage
    pub_img = node.create_publisher(image_type, depth.topic, qos)
    pub_info = node.create_publisher(CameraInfo, cfg.info_topic, qos)
    ns = cfg.node_namespace.rstrip("/")
    answer_topic = f"{ns}/hand_pose_node/hand_pose"

    def on_answer(msg: HandPose) -> None:
        rec = records.get(stamp_to_ns(msg.header.stamp))
        if rec is None or rec.answered:
            return
        rec.answered, rec.valid = True, bool(msg.valid)
        rec.processing_ms = 1000.0 * float(msg.processing_time)
        rec.end_to_end_ms = 1000.0 * (time.monotonic() - sent_at.get(rec.stamp_ns, np.nan))
        if msg.valid:
            rec.joints_mm = [[p.x * 1000.0, p.y * 1000.0, p.z * 1000.0] for p in msg.joints]
            rec.skeleton = msg.skeleton

    def spin_until(done, deadline: float) -> None:
        while not done() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=max(0.0, min(0.01, deadline - time.monotonic())))

    node.create_subscription(HandPose, answer_topic, on_answer, QoSProfile(depth=100))
    child = None
    try:
        if cfg.start_node:
            child = subprocess.Popen(_node_command(cfg, depth), env=dict(os.environ),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + cfg.startup_timeout_s
        while (pub_img.get_subscription_count() == 0 or pub_info.get_subscription_count() == 0
               or node.count_publishers(answer_topic) == 0):
            if child is not None and child.poll() is not None:
                raise RuntimeError(f"hand_pose_node exited during start-up:\n{child.stdout.read()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no hand_pose_node answered on {answer_topic} within "
                                   f"{cfg.startup_timeout_s:.0f} s")
            executor.spin_once(timeout_sec=0.1)
        # recording order, no head start for camera_info: the node pairs by stamp
        t_first = messages[0].log_time_ns if messages else 0
        t_start = time.monotonic()
        newest_info = -1
        previous = None  # the last image sent
        bar = tqdm(total=len(frames), desc="replay (live)", unit="frame", disable=not progress)
        for m in messages:
            if cfg.rate > 0:  # original timing (scaled)
                due = t_start + (m.log_time_ns - t_first) / 1e9 / cfg.rate
                spin_until(lambda: False, due)
            if not m.is_image:
                pub_info.publish(m.raw)
                newest_info = max(newest_info, m.stamp_ns)
                continue
            if cfg.rate <= 0 and previous is not None and newest_info >= previous:
                # as fast as the node keeps up: the previous frame (now paired) is answered
                rec = records[previous]
                spin_until(lambda rec=rec: rec.answered,
                           time.monotonic() + cfg.answer_timeout_s)
            sent_at[m.stamp_ns] = time.monotonic()
            pub_img.publish(m.raw)
            previous = m.stamp_ns
            bar.update(1)
        bar.close()
        # answers still in flight
        spin_until(lambda: all(r.answered for r in records.values()),
                   time.monotonic() + cfg.answer_timeout_s)
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
        if child is not None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
    return sorted(records.values(), key=lambda r: r.index)


def summarize(cfg: ReplayConfig, records: list[FrameRecord], wall_s: float,
              gt: dict[int, np.ndarray]) -> ReplayReport:
    """Accuracy on frames with ground truth and a valid estimate, latency, throughput."""
    answered = [r for r in records if r.answered]
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
        wall_s=wall_s, fps=len(answered) / wall_s if wall_s > 0 else float("nan"),
        latency_ms=latency, accuracy=accuracy,
        config={k: str(v) for k, v in asdict(cfg).items()}, records=records,
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
    t0 = time.perf_counter()
    if cfg.mode == "offline":
        records = replay_offline(cfg, progress=progress)
    else:
        records = replay_live(cfg, progress=progress)
    report = summarize(cfg, records, time.perf_counter() - t0, gt)
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
        f"throughput {report.fps:.2f} frames/s over {report.wall_s:.1f} s",
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
    return "\n".join(lines)


__all__ = ["BagError", "FrameRecord", "ReplayConfig", "ReplayReport", "format_report",
           "plot_report", "replay_live", "replay_offline", "run_replay", "summarize"]
