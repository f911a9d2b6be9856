"""rosbag2 files (sqlite3 or mcap) read and written with rosbags; no rclpy needed.

A vvhand bag holds a depth image topic (sensor_msgs/Image), its camera_info, and
optionally ground truth as vvhand/msg/HandPose on its own topic (the synthetic bags
written by ``vvhand synth-bag`` do) or in a sidecar file ``ground_truth.jsonl`` inside
the bag directory (one JSON object per line: ``{"stamp_ns": int, "joints_mm": [[x,y,z],..]}``).

Messages read here are rosbags dataclasses with the same fields as the rclpy messages, so
vvhand_ros.conversions decodes them unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from vvhand_ros.depth_encoding import encode_depth

DEFAULT_DEPTH_TOPIC = "/camera/depth/image_raw"
DEFAULT_INFO_TOPIC = "/camera/depth/camera_info"
DEFAULT_GT_TOPIC = "/ground_truth/hand_pose"
SIDECAR_NAME = "ground_truth.jsonl"
HAND_POSE_TYPE = "vvhand/msg/HandPose"
IMAGE_TYPE = "sensor_msgs/msg/Image"
INFO_TYPE = "sensor_msgs/msg/CameraInfo"


class BagError(RuntimeError):
    """A bag that cannot be read as vvhand input; the message names the bag and the problem."""


def hand_pose_definition() -> str:
    """Text of msg/HandPose.msg (source tree or installed share/vvhand/msg)."""
    here = Path(__file__).resolve().parent
    candidates = [here.parent / "msg" / "HandPose.msg"]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("vvhand")) / "msg" / "HandPose.msg")
    except Exception:  # noqa: BLE001 - no ament index or package: source layout only
        pass
    for path in candidates:
        if path.is_file():
            return path.read_text()
    raise BagError(f"cannot find HandPose.msg (looked in {[str(c) for c in candidates]})")


def make_typestore():
    """Kilted message types plus vvhand/msg/HandPose."""
    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg(hand_pose_definition(), HAND_POSE_TYPE))
    return store


@dataclass
class BagFrame:
    """One depth frame of a bag with the newest camera_info before it (None if none yet)."""

    index: int
    stamp_ns: int          # header stamp of the depth image
    log_time_ns: int       # time the message was recorded
    image: object          # rosbags sensor_msgs/msg/Image
    info: object | None    # rosbags sensor_msgs/msg/CameraInfo
    raw_image: bytes       # CDR bytes as stored (for live republishing)
    raw_info: bytes | None


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _open(path: Path) -> Reader:
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:  # rosbags raises several types for damaged bags
        raise BagError(f"bag {path} cannot be opened: {exc}") from exc
    return reader


def read_frames(path: str | Path, depth_topic: str = DEFAULT_DEPTH_TOPIC,
                info_topic: str = DEFAULT_INFO_TOPIC, typestore=None) -> Iterator[BagFrame]:
    """Depth frames of a bag in recording order, each with the newest camera_info.

    Raises BagError when the bag is missing, damaged, or has no such depth topic. A
    message that fails to deserialize stops the iteration with a BagError naming its index.
    """
    path = Path(path)
    store = typestore or make_typestore()
    reader = _open(path)
    try:
        conns = [c for c in reader.connections if c.topic in (depth_topic, info_topic)]
        if not any(c.topic == depth_topic for c in conns):
            topics = sorted({c.topic for c in reader.connections})
            raise BagError(f"bag {path} has no topic {depth_topic!r}; it has {topics}")
        info, raw_info, index = None, None, 0
        messages = reader.messages(connections=conns)
        while True:
            try:
                conn, log_time, raw = next(messages)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - storage errors of a damaged bag
                raise BagError(f"bag {path}: storage error after frame {index}: {exc}") from exc
            try:
                msg = store.deserialize_cdr(raw, conn.msgtype)
            except Exception as exc:  # noqa: BLE001 - serde errors of a damaged message
                raise BagError(f"bag {path}: message {conn.topic} at {log_time} ns is "
                               f"corrupt: {exc}") from exc
            if conn.topic == info_topic:
                info, raw_info = msg, bytes(raw)
                continue
            yield BagFrame(index, stamp_to_ns(msg.header.stamp), log_time, msg, info,
                           bytes(raw), raw_info)
            index += 1
    finally:
        reader.close()


def read_ground_truth(path: str | Path, gt_topic: str = DEFAULT_GT_TOPIC,
                      typestore=None) -> dict[int, np.ndarray]:
    """Ground truth by image stamp (ns) -> joints (J, 3) in mm; {} when the bag has none.

    Reads ``gt_topic`` (vvhand/msg/HandPose, metres) or, if absent, the sidecar file.
    """
    path = Path(path)
    sidecar = path / SIDECAR_NAME
    store = typestore or make_typestore()
    reader = _open(path)
    try:
        conns = [c for c in reader.connections if c.topic == gt_topic]
        out: dict[int, np.ndarray] = {}
        # an empty connection list would mean "every topic" to rosbags
        for conn, _t, raw in reader.messages(connections=conns) if conns else ():
            msg = store.deserialize_cdr(raw, conn.msgtype)
            if msg.valid:
                joints = np.array([[p.x, p.y, p.z] for p in msg.joints], dtype=np.float64)
                out[stamp_to_ns(msg.header.stamp)] = joints * 1000.0
    finally:
        reader.close()
    if not out and sidecar.is_file():
        for n, line in enumerate(sidecar.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                out[int(rec["stamp_ns"])] = np.asarray(rec["joints_mm"], dtype=np.float64)
            except (ValueError, KeyError, TypeError) as exc:
                raise BagError(f"{sidecar}: line {n} is not a ground-truth record: {exc}") from exc
    return out


@dataclass
class SyntheticBagFrame:
    """What ``write_bag`` needs per frame (millimetres, camera optical frame)."""

    stamp_ns: int
    depth_mm: np.ndarray            # (H, W)
    intrinsics: object              # vvhand_core.camera.Intrinsics
    joints_mm: np.ndarray | None    # (J, 3) ground truth or None
    skeleton: object | None = None  # vvhand_core.skeletons.Skeleton of joints_mm


def write_bag(path: str | Path, frames: Iterable[SyntheticBagFrame],
              frame_id: str = "camera_depth_optical_frame", storage: str = "sqlite3",
              depth_topic: str = DEFAULT_DEPTH_TOPIC, info_topic: str = DEFAULT_INFO_TOPIC,
              gt_topic: str = DEFAULT_GT_TOPIC, encoding: str = "16UC1") -> int:
    """Write depth (16UC1 mm or 32FC1 m) + camera_info (+ HandPose ground truth) per frame.

    Returns the number of frames written. ``storage`` is "sqlite3" or "mcap".
    """
    plugins = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
    if storage not in plugins:
        raise ValueError(f"storage must be one of {sorted(plugins)}")
    store = make_typestore()
    t = store.types
    Header, Time = t["std_msgs/msg/Header"], t["builtin_interfaces/msg/Time"]
    Image, Info = t[IMAGE_TYPE], t[INFO_TYPE]
    RegionOfInterest = t["sensor_msgs/msg/RegionOfInterest"]
    HandPose, Point = t[HAND_POSE_TYPE], t["geometry_msgs/msg/Point"]
    n = 0
    with Writer(Path(path), version=9, storage_plugin=plugins[storage]) as writer:
        c_img = writer.add_connection(depth_topic, IMAGE_TYPE, typestore=store)
        c_info = writer.add_connection(info_topic, INFO_TYPE, typestore=store)
        c_gt = None
        for f in frames:
            stamp = Time(sec=f.stamp_ns // 1_000_000_000, nanosec=f.stamp_ns % 1_000_000_000)
            header = Header(stamp=stamp, frame_id=frame_id)
            k = f.intrinsics
            h, w = f.depth_mm.shape
            data = encode_depth(f.depth_mm, encoding)
            img = Image(header=header, height=h, width=w, encoding=encoding, is_bigendian=0,
                        step=w * data.itemsize, data=np.frombuffer(data.tobytes(), np.uint8))
            info = Info(
                header=header, height=h, width=w, distortion_model="plumb_bob",
                d=np.zeros(5), k=np.array([k.fx, 0, k.cx, 0, k.fy, k.cy, 0, 0, 1], float),
                r=np.eye(3).ravel(),
                p=np.array([k.fx, 0, k.cx, 0, 0, k.fy, k.cy, 0, 0, 0, 1, 0], float),
                binning_x=0, binning_y=0,
                roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0,
                                     do_rectify=False),
            )
            writer.write(c_info, f.stamp_ns, store.serialize_cdr(info, INFO_TYPE))
            writer.write(c_img, f.stamp_ns, store.serialize_cdr(img, IMAGE_TYPE))
            if f.joints_mm is not None:
                if c_gt is None:
                    c_gt = writer.add_connection(gt_topic, HAND_POSE_TYPE, typestore=store)
                j_m = np.asarray(f.joints_mm, np.float64) / 1000.0
                names = list(f.skeleton.joint_names) if f.skeleton is not None else []
                points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in j_m]
                centre = [float(v) for v in j_m.mean(axis=0)]
                gt = HandPose(
                    header=header, skeleton=f.skeleton.name if f.skeleton else "",
                    joint_names=names, joints=points, center=Point(*centre), cube_size=0.0,
                    num_candidate_views=0,
                    selected_views=np.zeros(0, np.uint32), view_weights=np.zeros(0, np.float32),
                    view_logits=np.zeros(0, np.float32), score=1.0, valid=True,
                    processing_time=0.0,
                )
                writer.write(c_gt, f.stamp_ns, store.serialize_cdr(gt, HAND_POSE_TYPE))
            n += 1
    return n
