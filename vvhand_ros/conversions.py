"""The node's boundary: ROS messages <-> vvhand_core arrays.

Conventions (REP-103/REP-118, defined here once for the ROS side):
- Depth images: ``16UC1`` / ``mono16`` hold millimetres (0 = invalid); ``32FC1`` holds
  metres (NaN, +-inf and values <= 0 are invalid). Inside vvhand_core depth is float32
  millimetres with 0 = invalid.
- vvhand_core works in millimetres; every ROS message carries metres (``MM_TO_M``).
- Outputs keep the input header (same stamp, same frame_id = the camera's optical frame).
- TF: one child frame per joint, ``<tf_prefix>hand_<joint_name>``, parent = header.frame_id.

Every malformed input raises :class:`ConversionError` (a ``ValueError``) whose message says
what is wrong; the node catches exactly this type, reports it (throttled) and keeps going.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, PoseArray, Quaternion, TransformStamped, Vector3
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from vvhand.msg import HandPose
from vvhand_core.camera import Intrinsics
from vvhand_core.palm import matrix_to_quaternion
from vvhand_core.skeletons import Skeleton
from vvhand_ros.depth_encoding import (
    DEPTH_ENCODINGS,
    ConversionError,
    camera_info_to_intrinsics,
    check_image_matches_info,
    encode_depth,
    image_to_depth_mm,
)

__all__ = [
    "DEPTH_ENCODINGS", "MM_TO_M", "ConversionError", "camera_info_to_intrinsics",
    "check_image_matches_info", "depth_mm_to_image", "hand_pose_msg", "image_to_depth_mm",
    "intrinsics_to_camera_info", "joint_frame_name", "joint_transforms", "marker_array_msg",
    "pose_array_msg",
]

MM_TO_M = 1e-3


def _points_m(joints_mm: np.ndarray) -> list[Point]:
    j = np.asarray(joints_mm, dtype=np.float64).reshape(-1, 3) * MM_TO_M
    return [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in j]


def hand_pose_msg(
    header: Header,
    skeleton: Skeleton,
    joints_mm: np.ndarray,
    centre_mm: np.ndarray,
    cube_mm: float,
    num_candidates: int,
    selected_views: Sequence[int],
    weights: Sequence[float],
    logits: Sequence[float],
    score: float,
    valid: bool,
    processing_time_s: float,
) -> HandPose:
    """Build a vvhand/HandPose (metres in header.frame_id) from millimetre arrays.

    joints_mm: (J, 3) in the camera optical frame; J must equal skeleton.num_joints.
    When ``valid`` is False the joints list is left empty.
    """
    msg = HandPose()
    msg.header = header
    msg.skeleton = skeleton.name
    msg.joint_names = list(skeleton.joint_names)
    if valid:
        joints = np.asarray(joints_mm).reshape(-1, 3)
        if joints.shape[0] != skeleton.num_joints:
            raise ValueError(f"{joints.shape[0]} joints for skeleton {skeleton.name!r}")
        msg.joints = _points_m(joints)
    msg.center = _points_m(np.asarray(centre_mm).reshape(1, 3))[0]
    msg.cube_size = float(cube_mm) * MM_TO_M
    msg.num_candidate_views = int(num_candidates)
    msg.selected_views = [int(i) for i in selected_views]
    msg.view_weights = [float(x) for x in weights]
    msg.view_logits = [float(x) for x in logits]
    msg.score = float(score)
    msg.valid = bool(valid)
    msg.processing_time = float(processing_time_s)
    return msg


def pose_array_msg(header: Header, joints_mm: np.ndarray,
                   rotations: np.ndarray | None = None) -> PoseArray:
    """geometry_msgs/PoseArray with one pose per joint (position in m).

    ``rotations`` (J, 3, 3): each joint's orientation (vvhand_core.bones); None = identity.
    """
    msg = PoseArray(header=header)
    quats = ([Quaternion(w=1.0)] * len(joints_mm) if rotations is None
             else [quaternion_msg(r) for r in rotations])
    msg.poses = [Pose(position=p, orientation=q) for p, q in zip(_points_m(joints_mm), quats)]
    return msg


def quaternion_msg(rotation: np.ndarray) -> Quaternion:
    """geometry_msgs/Quaternion of a (3, 3) rotation matrix."""
    x, y, z, w = matrix_to_quaternion(np.asarray(rotation, np.float64))
    return Quaternion(x=float(x), y=float(y), z=float(z), w=float(w))


def _rgba(rgb: Sequence[float], alpha: float = 1.0) -> ColorRGBA:
    return ColorRGBA(r=float(rgb[0]), g=float(rgb[1]), b=float(rgb[2]), a=float(alpha))


def marker_array_msg(
    header: Header,
    skeleton: Skeleton,
    joints_mm: np.ndarray,
    namespace: str = "vvhand",
    joint_radius_m: float = 0.008,
    bone_width_m: float = 0.004,
    lifetime_s: float = 0.5,
) -> MarkerArray:
    """RViz markers: a LINE_LIST of the skeleton's bones and a SPHERE_LIST of the joints.

    Colours come from ``skeleton.colors``. Markers expire after ``lifetime_s`` so a lost
    hand disappears from RViz instead of freezing.
    """
    points = _points_m(joints_mm)
    lifetime = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1.0) * 1e9))

    bones = Marker(header=header, ns=namespace, id=0, type=Marker.LINE_LIST, action=Marker.ADD)
    bones.pose.orientation.w = 1.0
    bones.scale = Vector3(x=bone_width_m)
    bones.lifetime = lifetime
    for parent, child in skeleton.bones():
        bones.points += [points[parent], points[child]]
        bones.colors += [_rgba(skeleton.colors[child])] * 2
    bones.color = _rgba((1.0, 1.0, 1.0))

    joints = Marker(header=header, ns=namespace, id=1, type=Marker.SPHERE_LIST, action=Marker.ADD)
    joints.pose.orientation.w = 1.0
    d = 2.0 * joint_radius_m
    joints.scale = Vector3(x=d, y=d, z=d)
    joints.lifetime = lifetime
    joints.points = points
    joints.colors = [_rgba(c) for c in skeleton.colors]
    joints.color = _rgba((1.0, 1.0, 1.0))
    return MarkerArray(markers=[bones, joints])


def joint_frame_name(tf_prefix: str, joint_name: str) -> str:
    """TF child frame of a joint: ``<tf_prefix>hand_<joint_name>``."""
    return f"{tf_prefix}hand_{joint_name}"


def joint_transforms(
    header: Header, skeleton: Skeleton, joints_mm: np.ndarray, tf_prefix: str = ""
) -> list[TransformStamped]:
    """One TransformStamped per joint: parent header.frame_id, identity rotation, m."""
    out = []
    for name, p in zip(skeleton.joint_names, _points_m(joints_mm), strict=True):
        t = TransformStamped(header=header, child_frame_id=joint_frame_name(tf_prefix, name))
        t.transform.translation = Vector3(x=p.x, y=p.y, z=p.z)
        t.transform.rotation = Quaternion(w=1.0)
        out.append(t)
    return out


def depth_mm_to_image(depth_mm: np.ndarray, header: Header, encoding: str = "16UC1") -> Image:
    """Encode millimetres as a ``16UC1`` (mm) or ``32FC1`` (m, invalid -> NaN) Image.

    The inverse of :func:`image_to_depth_mm`, used by replay, the demo and tests.
    """
    data = encode_depth(depth_mm, encoding)
    h, w = data.shape
    return Image(header=header, height=h, width=w, encoding=encoding, is_bigendian=0,
                 step=w * data.itemsize, data=data.tobytes())


def intrinsics_to_camera_info(intr: Intrinsics, header: Header) -> CameraInfo:
    """A distortion-free CameraInfo for ``intr`` (replay, demo and tests)."""
    msg = CameraInfo(header=header, width=intr.width, height=intr.height)
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg
