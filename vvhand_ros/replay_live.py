"""Live rosbag replay: publish a bag onto topics and record a hand_pose_node's answers.

The bag's depth and camera_info messages are published in recording order (original
timing, or as fast as the node keeps up) onto a hand_pose_node started here as a child
process (or one already running); its HandPose answers are matched to the input by header
stamp. Frames published but never answered count as dropped. Used by
:func:`vvhand_ros.replay.run_replay` (mode "live") and ``vvhand bench latency``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from vvhand_ros.bag import DepthTopic, depth_topic_of, read_messages, stamp_to_ns
from vvhand_ros.param_units import to_ros
from vvhand_ros.replay import FrameRecord, ReplayConfig, model_path

SIDES = {0: "unknown", 1: "left", 2: "right"}  # vvhand_msgs/Hand SIDE_* codes


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
            "-p", f"fit_max_residual_m:={to_ros('fit_max_residual_m', cfg.fit_max_residual_mm)}",
            "-p", f"mirror:={str(cfg.mirror).lower()}",
            "-p", f"max_hands:={int(cfg.max_hands)}",
            "-p", f"num_threads:={int(cfg.num_threads)}",
            "-p", f"backend:={cfg.backend}",
            "-p", "publish_tf:=false",
            "-p", "smoothing:=false",  # score the pipeline's own joints, as offline
            "-p", "status_period_s:=5.0"]
    if cfg.alternate_model:  # "-p name:=" (empty) would not parse as a string
        args += ["-p", f"alternate_model:={cfg.alternate_model}"]
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

    from vvhand_msgs.msg import HandPose, HandPoseArray
    from vvhand_ros.hand_msgs import duration_s

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
        rec.processing_ms = 1000.0 * duration_s(msg.processing_time)
        now = time.monotonic()
        rec.end_to_end_ms = 1000.0 * (now - sent_at.get(rec.stamp_ns, np.nan))
        rec.answered_at_s = now - next(iter(sent_at.values()), np.nan)  # first frame sent
        if msg.valid:
            rec.joints_mm = [[p.x * 1000.0, p.y * 1000.0, p.z * 1000.0] for p in msg.joints]
            rec.skeleton = msg.skeleton

    def on_hands(msg: HandPoseArray) -> None:
        rec = records.get(stamp_to_ns(msg.header.stamp))
        if rec is None or rec.hands_mm is not None:
            return
        rec.hands_mm = [[[p.x * 1000.0, p.y * 1000.0, p.z * 1000.0] for p in h.joints]
                        for h in msg.hands]
        rec.hands_sides = [SIDES.get(int(h.side), "unknown") for h in msg.hands]

    def spin_until(done, deadline: float) -> None:
        while not done() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=max(0.0, min(0.01, deadline - time.monotonic())))

    node.create_subscription(HandPose, answer_topic, on_answer, QoSProfile(depth=100))
    node.create_subscription(HandPoseArray, f"{ns}/hand_pose_node/hands", on_hands,
                             QoSProfile(depth=100))
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
        # answers still in flight (HandPose, then the frame's HandPoseArray)
        spin_until(lambda: all(r.answered and r.hands_mm is not None
                               for r in records.values()),
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


__all__ = ["replay_live"]
