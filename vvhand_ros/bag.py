"""rosbag2 files (sqlite3 or mcap) read and written with rosbags; no rclpy needed.

A vvhand bag holds a depth topic (sensor_msgs/Image, or sensor_msgs/CompressedImage on
``<depth topic>/compressedDepth`` as image_transport records it), its camera_info, and
optionally ground truth as vvhand_msgs/msg/HandPose on its own topic (the synthetic bags
written by ``vvhand synth-bag`` do; bags written before the messages had their own package
carry vvhand/msg/HandPose, read alike: vvhand_ros.bag_types) or in a sidecar file
``ground_truth.jsonl`` inside the bag directory (one JSON object per line:
``{"stamp_ns": int, "joints_mm": [[x,y,z],..]}``).
Bags with every hand labelled (``vvhand synth-bag --scenes 3``) hold the other hands of a
frame as further HandPose messages of the frame's stamp on :data:`OTHER_HANDS_TOPIC`
(:func:`read_ground_truth_hands`).

Messages read here are rosbags dataclasses with the same fields as the rclpy messages, so
vvhand_ros.depth_input decodes them unchanged. Depth frames are paired with the camera_info
of their stamp by vvhand_ros.pairing, the node's own pairer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from vvhand_ros.bag_types import HAND_POSE_TYPE, MessageDefinitionError
from vvhand_ros.bag_types import make_typestore as _make_typestore
from vvhand_ros.compressed_depth import depth_mm_to_compressed
from vvhand_ros.depth_encoding import encode_depth
from vvhand_ros.depth_input import transport_topic
from vvhand_ros.pairing import Pair, StampPairer

DEFAULT_DEPTH_TOPIC = "/camera/depth/image_raw"
DEFAULT_INFO_TOPIC = "/camera/depth/camera_info"
DEFAULT_GT_TOPIC = "/ground_truth/hand_pose"
OTHER_HANDS_TOPIC = "/ground_truth/other_hands"  # a frame's labelled hands after the first
SIDECAR_NAME = "ground_truth.jsonl"
IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
# depth_format of write_bag -> (transport, compressedDepth codec)
DEPTH_FORMATS = {"raw": ("raw", ""), "compressedDepth png": ("compressedDepth", "png"),
                 "compressedDepth rvl": ("compressedDepth", "rvl")}


class BagError(RuntimeError):
    """A bag that cannot be read as vvhand input; the message names the bag and the problem."""


def make_typestore():
    """Kilted message types plus vvhand_msgs/msg/HandPose and the older vvhand/msg/HandPose.

    BagError when vvhand_msgs' HandPose.msg cannot be found (vvhand_ros.bag_types).
    """
    try:
        return _make_typestore()
    except MessageDefinitionError as exc:
        raise BagError(str(exc)) from exc


@dataclass
class BagFrame:
    """One depth frame of a bag with the camera_info of its stamp (None, and why, if none)."""

    index: int             # position among the bag's depth frames
    stamp_ns: int          # header stamp of the depth image
    log_time_ns: int       # time the message was recorded
    image: object          # rosbags sensor_msgs/msg/Image or CompressedImage
    info: object | None    # rosbags sensor_msgs/msg/CameraInfo
    reason: str = ""       # why ``info`` is None


@dataclass
class DepthTopic:
    """Where a bag's depth frames are and how they are transported."""

    topic: str             # the topic in the bag
    base: str              # image_transport base topic (what the node remaps depth/image to)
    transport: str         # raw | compressedDepth
    msgtype: str


@dataclass
class BagMessage:
    """A depth image or camera_info of a bag, in recording order."""

    is_image: bool
    log_time_ns: int
    stamp_ns: int
    msg: object
    raw: bytes             # CDR bytes as stored (for live republishing)


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


def find_depth_topic(reader: Reader, depth_topic: str, path: Path) -> DepthTopic:
    """The depth topic as recorded: ``depth_topic`` or ``depth_topic/compressedDepth``.

    ``depth_topic`` may hold sensor_msgs/Image or CompressedImage; BagError naming the
    bag's topics when neither is there.
    """
    types = {c.topic: c.msgtype for c in reader.connections}
    compressed = transport_topic(depth_topic, "compressedDepth")
    if types.get(depth_topic) == IMAGE_TYPE:
        return DepthTopic(depth_topic, depth_topic, "raw", IMAGE_TYPE)
    if types.get(depth_topic) == COMPRESSED_TYPE:
        base = depth_topic[: -len("/compressedDepth")] if depth_topic.endswith(
            "/compressedDepth") else depth_topic
        return DepthTopic(depth_topic, base, "compressedDepth", COMPRESSED_TYPE)
    if types.get(compressed) == COMPRESSED_TYPE:
        return DepthTopic(compressed, depth_topic, "compressedDepth", COMPRESSED_TYPE)
    if depth_topic in types:
        raise BagError(f"bag {path}: topic {depth_topic!r} is {types[depth_topic]}, not a "
                       "depth image (sensor_msgs/msg/Image or CompressedImage)")
    raise BagError(f"bag {path} has no topic {depth_topic!r} (nor {compressed!r}); "
                   f"it has {sorted(types)}")


def depth_topic_of(path: str | Path, depth_topic: str = DEFAULT_DEPTH_TOPIC) -> DepthTopic:
    """find_depth_topic for a bag path."""
    reader = _open(Path(path))
    try:
        return find_depth_topic(reader, depth_topic, Path(path))
    finally:
        reader.close()


def read_messages(path: str | Path, depth_topic: str = DEFAULT_DEPTH_TOPIC,
                  info_topic: str = DEFAULT_INFO_TOPIC,
                  typestore=None) -> Iterator[BagMessage]:
    """Depth images and camera_infos of a bag in recording order.

    Raises BagError when the bag is missing, damaged, or has no such depth topic. A
    message that fails to deserialize stops the iteration with a BagError naming it.
    """
    path = Path(path)
    store = typestore or make_typestore()
    reader = _open(path)
    try:
        depth = find_depth_topic(reader, depth_topic, path)
        conns = [c for c in reader.connections if c.topic in (depth.topic, info_topic)]
        messages = reader.messages(connections=conns)
        count = 0
        while True:
            try:
                conn, log_time, raw = next(messages)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - storage errors of a damaged bag
                raise BagError(f"bag {path}: storage error after {count} messages: "
                               f"{exc}") from exc
            count += 1
            try:
                msg = store.deserialize_cdr(raw, conn.msgtype)
            except Exception as exc:  # noqa: BLE001 - serde errors of a damaged message
                raise BagError(f"bag {path}: message {conn.topic} at {log_time} ns is "
                               f"corrupt: {exc}") from exc
            yield BagMessage(conn.topic == depth.topic, log_time, stamp_to_ns(msg.header.stamp),
                             msg, bytes(raw))
    finally:
        reader.close()


def read_frames(path: str | Path, depth_topic: str = DEFAULT_DEPTH_TOPIC,
                info_topic: str = DEFAULT_INFO_TOPIC, typestore=None, slop_ns: int = 0,
                queue_size: int = 10) -> Iterator[BagFrame]:
    """Depth frames of a bag, each paired with the camera_info of its stamp.

    Pairing is the node's (vvhand_ros.pairing.StampPairer, exact unless ``slop_ns``), so a
    frame is yielded once it is paired or given up on (then ``info`` is None and ``reason``
    says why); at the end of the bag the frames still waiting are given up on. Frames come
    in the order they resolve, which is recording order for well-formed bags.
    """
    pairer = StampPairer(slop_ns, queue_size)
    log_times: dict[int, int] = {}

    def frames(outcomes):
        for out in outcomes:
            index, image = out.image
            if isinstance(out, Pair):
                yield BagFrame(index, out.stamp_ns, log_times.pop(index), image, out.info)
            else:
                yield BagFrame(index, out.stamp_ns, log_times.pop(index), image, None,
                               out.reason)

    index = 0
    for m in read_messages(path, depth_topic, info_topic, typestore):
        if m.is_image:
            log_times[index] = m.log_time_ns
            yield from frames(pairer.add_image(m.stamp_ns, (index, m.msg)))
            index += 1
        else:
            yield from frames(pairer.add_info(m.stamp_ns, m.msg))
    yield from frames(pairer.flush())


def _hand_poses(path: Path, topic: str, store) -> dict[int, list[np.ndarray]]:
    """Valid HandPose messages of ``topic`` by stamp (ns) -> joints (J, 3) mm, in order."""
    reader = _open(path)
    out: dict[int, list[np.ndarray]] = {}
    try:
        conns = [c for c in reader.connections if c.topic == topic]
        # an empty connection list would mean "every topic" to rosbags
        for conn, _t, raw in reader.messages(connections=conns) if conns else ():
            msg = store.deserialize_cdr(raw, conn.msgtype)
            if msg.valid:
                joints = np.array([[p.x, p.y, p.z] for p in msg.joints], dtype=np.float64)
                out.setdefault(stamp_to_ns(msg.header.stamp), []).append(joints * 1000.0)
    finally:
        reader.close()
    return out


def read_ground_truth_hands(path: str | Path, gt_topic: str = DEFAULT_GT_TOPIC,
                            typestore=None) -> dict[int, list[np.ndarray]]:
    """Every labelled hand by image stamp (ns); {} without ground truth.

    [hand 0 (``read_ground_truth``), the hands of :data:`OTHER_HANDS_TOPIC`...], joints
    (J, 3) mm each.
    """
    store = typestore or make_typestore()
    first = read_ground_truth(path, gt_topic, store)
    others = _hand_poses(Path(path), OTHER_HANDS_TOPIC, store)
    return {stamp: [joints, *others.get(stamp, [])] for stamp, joints in first.items()}


def read_ground_truth(path: str | Path, gt_topic: str = DEFAULT_GT_TOPIC,
                      typestore=None) -> dict[int, np.ndarray]:
    """Ground truth by image stamp (ns) -> joints (J, 3) in mm; {} when the bag has none.

    Reads ``gt_topic`` (vvhand_msgs/msg/HandPose or the older vvhand/msg/HandPose, metres)
    or, if absent, the sidecar file.
    """
    path = Path(path)
    sidecar = path / SIDECAR_NAME
    store = typestore or make_typestore()
    out = {stamp: hands[0] for stamp, hands in _hand_poses(path, gt_topic, store).items()}
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
    write_info: bool = True         # False: no camera_info of this stamp (an unpaired frame)
    other_hands_mm: tuple = ()      # (J, 3) each: the frame's other labelled hands


def _depth_message(store, header, depth_mm: np.ndarray, encoding: str, depth_format: str):
    """(msgtype, message) of one depth frame as raw Image or compressedDepth."""
    h, w = depth_mm.shape
    transport, codec = DEPTH_FORMATS[depth_format]
    if transport == "raw":
        data = encode_depth(depth_mm, encoding)
        return IMAGE_TYPE, store.types[IMAGE_TYPE](
            header=header, height=h, width=w, encoding=encoding, is_bigendian=0,
            step=w * data.itemsize, data=np.frombuffer(data.tobytes(), np.uint8))
    fmt, data = depth_mm_to_compressed(depth_mm, encoding, codec)
    return COMPRESSED_TYPE, store.types[COMPRESSED_TYPE](
        header=header, format=fmt, data=np.frombuffer(data, np.uint8))


def write_bag(path: str | Path, frames: Iterable[SyntheticBagFrame],
              frame_id: str = "camera_depth_optical_frame", storage: str = "sqlite3",
              depth_topic: str = DEFAULT_DEPTH_TOPIC, info_topic: str = DEFAULT_INFO_TOPIC,
              gt_topic: str = DEFAULT_GT_TOPIC, encoding: str = "16UC1",
              depth_format: str = "raw", distortion: tuple[str, list[float]] | None = None,
              info_after_image: bool = False) -> int:
    """Write depth (16UC1 mm or 32FC1 m) + camera_info (+ HandPose ground truth) per frame.

    ``depth_format``: ``raw`` (sensor_msgs/Image on depth_topic) or ``compressedDepth png``
    / ``compressedDepth rvl`` (CompressedImage on depth_topic/compressedDepth, as
    image_transport records it). ``distortion``: (model, D) written into camera_info (the
    depth is written as given). ``info_after_image`` records each camera_info after its
    image. Returns the number of frames written. ``storage`` is "sqlite3" or "mcap".
    """
    plugins = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
    if storage not in plugins:
        raise ValueError(f"storage must be one of {sorted(plugins)}")
    if depth_format not in DEPTH_FORMATS:
        raise ValueError(f"depth_format must be one of {sorted(DEPTH_FORMATS)}")
    store = make_typestore()
    t = store.types
    Header, Time = t["std_msgs/msg/Header"], t["builtin_interfaces/msg/Time"]
    Info = t[INFO_TYPE]
    RegionOfInterest = t["sensor_msgs/msg/RegionOfInterest"]
    model, dist = distortion or ("plumb_bob", [0.0] * 5)
    image_topic = transport_topic(depth_topic, DEPTH_FORMATS[depth_format][0])
    n = 0
    with Writer(Path(path), version=9, storage_plugin=plugins[storage]) as writer:
        image_type = IMAGE_TYPE if depth_format == "raw" else COMPRESSED_TYPE
        c_img = writer.add_connection(image_topic, image_type, typestore=store)
        c_info = writer.add_connection(info_topic, INFO_TYPE, typestore=store)
        c_gt = c_other = None
        for f in frames:
            stamp = Time(sec=f.stamp_ns // 1_000_000_000, nanosec=f.stamp_ns % 1_000_000_000)
            header = Header(stamp=stamp, frame_id=frame_id)
            k = f.intrinsics
            h, w = f.depth_mm.shape
            msgtype, img = _depth_message(store, header, f.depth_mm, encoding, depth_format)
            info = Info(
                header=header, height=h, width=w, distortion_model=model,
                d=np.asarray(dist, float), k=np.array([k.fx, 0, k.cx, 0, k.fy, k.cy, 0, 0, 1],
                                                      float),
                r=np.eye(3).ravel(),
                p=np.array([k.fx, 0, k.cx, 0, 0, k.fy, k.cy, 0, 0, 0, 1, 0], float),
                binning_x=0, binning_y=0,
                roi=RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0,
                                     do_rectify=False),
            )
            records = [(c_info, store.serialize_cdr(info, INFO_TYPE))] if f.write_info else []
            image_record = (c_img, store.serialize_cdr(img, msgtype))
            records.insert(0 if info_after_image else len(records), image_record)
            for conn, data in records:
                writer.write(conn, f.stamp_ns, data)
            if f.joints_mm is not None:
                if c_gt is None:
                    c_gt = writer.add_connection(gt_topic, HAND_POSE_TYPE, typestore=store)
                writer.write(c_gt, f.stamp_ns, _gt_message(store, header, f.joints_mm,
                                                           f.skeleton))
            for joints in f.other_hands_mm:
                if c_other is None:
                    c_other = writer.add_connection(OTHER_HANDS_TOPIC, HAND_POSE_TYPE,
                                                    typestore=store)
                writer.write(c_other, f.stamp_ns, _gt_message(store, header, joints, f.skeleton))
            n += 1
    return n


def _gt_message(store, header, joints_mm: np.ndarray, skeleton) -> bytes:
    """A labelled hand as a serialized vvhand_msgs/msg/HandPose (metres)."""
    HandPose, Point = store.types[HAND_POSE_TYPE], store.types["geometry_msgs/msg/Point"]
    j_m = np.asarray(joints_mm, np.float64) / 1000.0
    names = list(skeleton.joint_names) if skeleton is not None else []
    points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in j_m]
    gt = HandPose(
        header=header, skeleton=skeleton.name if skeleton else "", joint_names=names,
        joints=points, center=Point(*[float(v) for v in j_m.mean(axis=0)]), cube_size=0.0,
        num_candidate_views=0, selected_views=np.zeros(0, np.uint32),
        view_weights=np.zeros(0, np.float32), view_logits=np.zeros(0, np.float32),
        score=1.0, valid=True,
        processing_time=store.types["builtin_interfaces/msg/Duration"](sec=0, nanosec=0))
    return store.serialize_cdr(gt, HAND_POSE_TYPE)
