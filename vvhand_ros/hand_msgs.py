"""Every message the node publishes about hands, and the TF frame names.

HandPoseArray / Hand (every hand), HandPose, PoseArray and MarkerArray (one hand's joints),
palm PoseStamped and TF, JointState (fitted angles). Millimetre arrays in, metre messages
out (conversions.MM_TO_M); outputs keep the input header (stamp, frame_id); the palm
frame's axes are defined once in vvhand_core.palm. One :class:`HandOutput` per hand and
frame holds what the node computed (joints after the optional target-frame transform and
filter); the functions here only build messages (vvhand_ros.frame_output decides which).

Frame names (docs/ros.md, "Frames"): ``<prefix>hand_<slot>_palm`` for the hand holding
``slot`` (vvhand_core.hand_tracks: given when the hand appears, kept while it is followed;
never the hand's position in the list), ``<prefix>hand_left_palm`` /
``<prefix>hand_right_palm`` for the one hand of a frame with that side, and, opt-in,
``<prefix>hand_<slot>_<joint>``. The prefix is the ``tf_prefix`` parameter, or when that
is empty the node's namespace and name (``/cam1/hand_pose_node`` ->
``cam1/hand_pose_node/``), so two cameras never clash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import (
    Point,
    Pose,
    PoseArray,
    PoseStamped,
    Quaternion,
    TransformStamped,
    Vector3,
)
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from vvhand_core.data.synthetic.hand_model import PARAM_NAMES as ANGLE_NAMES
from vvhand_core.palm import matrix_to_quaternion, palm_frame, palm_indices
from vvhand_core.skeletons import Skeleton
from vvhand_msgs.msg import Hand, HandPose, HandPoseArray
from vvhand_ros.conversions import MM_TO_M

SIDE_CODES = {"unknown": Hand.SIDE_UNKNOWN, "left": Hand.SIDE_LEFT, "right": Hand.SIDE_RIGHT}


@dataclass
class HandOutput:
    """One hand of one frame, in the output frame (millimetres)."""

    joints_mm: np.ndarray            # (J, 3), filtered when ``smoothed``
    smoothed: bool
    track_id: int
    joint_spread_mm: np.ndarray      # (J,), NaN when one view was fused
    confidence: np.ndarray           # (J,) in (0, 1], NaN when one view was fused
    centre_mm: np.ndarray            # (3,)
    result: object                   # the HandPoseResult (views, weights, logits, score)
    processing_time_s: float
    side: str = "unknown"            # from the joints' chirality (vvhand_core.side)
    right_probability: float = 0.5


def frame_prefix(tf_prefix: str, node_fqn: str) -> str:
    """``tf_prefix`` when set, else ``<namespace>/<node name>/`` without the leading slash."""
    if tf_prefix:
        return tf_prefix
    return node_fqn.strip("/") + "/"


def palm_frame_name(prefix: str, slot: int) -> str:
    """TF child frame of the palm of the hand in ``slot``."""
    return f"{prefix}hand_{slot}_palm"


def side_frame_name(prefix: str, side: str) -> str:
    """TF child frame of the palm of the one ``side`` ("left" / "right") hand of a frame."""
    return f"{prefix}hand_{side}_palm"


def hand_joint_frame_name(prefix: str, slot: int, joint: str) -> str:
    """TF child frame of joint ``joint`` of the hand in ``slot`` (opt-in: publish_joint_tf)."""
    return f"{prefix}hand_{slot}_{joint}"


def duration_msg(seconds: float) -> Duration:
    """builtin_interfaces/Duration of ``seconds`` (>= 0; rounded to the nanosecond)."""
    ns = max(0, round(float(seconds) * 1e9))
    return Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def duration_s(duration) -> float:
    """Seconds of a builtin_interfaces/Duration (the messages' ``processing_time``)."""
    return float(duration.sec) + float(duration.nanosec) * 1e-9


def points_m(points_mm: np.ndarray) -> list[Point]:
    """Points (..., 3) mm -> geometry_msgs/Point list in metres."""
    p = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3) * MM_TO_M
    return [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in p]


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
    """Build a vvhand_msgs/HandPose (metres in header.frame_id) from millimetre arrays.

    joints_mm: (J, 3) in the camera optical frame; J must equal skeleton.num_joints.
    When ``valid`` is False the joints list is left empty. ``processing_time_s`` becomes the
    Duration ``processing_time``. Raises ValueError for a joint count that is not the
    skeleton's.
    """
    msg = HandPose()
    msg.header = header
    msg.skeleton = skeleton.name
    msg.joint_names = list(skeleton.joint_names)
    if valid:
        joints = np.asarray(joints_mm).reshape(-1, 3)
        if joints.shape[0] != skeleton.num_joints:
            raise ValueError(f"{joints.shape[0]} joints for skeleton {skeleton.name!r}")
        msg.joints = points_m(joints)
    msg.center = points_m(np.asarray(centre_mm).reshape(1, 3))[0]
    msg.cube_size = float(cube_mm) * MM_TO_M
    msg.num_candidate_views = int(num_candidates)
    msg.selected_views = [int(i) for i in selected_views]
    msg.view_weights = [float(x) for x in weights]
    msg.view_logits = [float(x) for x in logits]
    msg.score = float(score)
    msg.valid = bool(valid)
    msg.processing_time = duration_msg(processing_time_s)
    return msg


def pose_array_msg(header: Header, joints_mm: np.ndarray,
                   rotations: np.ndarray | None = None) -> PoseArray:
    """geometry_msgs/PoseArray with one pose per joint (position in m).

    ``rotations`` (J, 3, 3): each joint's orientation (vvhand_core.bones); None = identity.
    """
    msg = PoseArray(header=header)
    quats = ([Quaternion(w=1.0)] * len(joints_mm) if rotations is None
             else [quaternion_msg(r) for r in rotations])
    msg.poses = [Pose(position=p, orientation=q) for p, q in zip(points_m(joints_mm), quats)]
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
    points = points_m(joints_mm)
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


def palm_pose(joints_mm: np.ndarray, skeleton: Skeleton) -> Pose | None:
    """The palm frame as a Pose (m); None without palm joints or for degenerate joints."""
    if palm_indices(skeleton) is None:
        return None
    try:
        origin, rot = palm_frame(joints_mm, skeleton)
    except ValueError:
        return None
    x, y, z, w = matrix_to_quaternion(rot)
    return Pose(position=points_m(origin)[0],
                orientation=Quaternion(x=float(x), y=float(y), z=float(z), w=float(w)))


def hand_msg(hand: HandOutput, skeleton: Skeleton, palm: Pose | None,
             palm_frame_id: str) -> Hand:
    """vvhand_msgs/Hand from one HandOutput: what a robot reads (no view-selection debug).

    Raises ValueError for a joint count that is not the skeleton's.
    """
    r = hand.result
    msg = Hand(side=SIDE_CODES[hand.side], right_probability=float(hand.right_probability),
               track_id=int(hand.track_id), smoothed=bool(hand.smoothed))
    msg.joints = points_m(hand.joints_mm)
    if len(msg.joints) != skeleton.num_joints:
        raise ValueError(f"{len(msg.joints)} joints for skeleton {skeleton.name!r}")
    spread = np.asarray(hand.joint_spread_mm, dtype=np.float64)
    if spread.size and np.isfinite(spread).all():
        msg.joint_confidence = [float(c) for c in hand.confidence]
        msg.joint_spread = [float(s) * MM_TO_M for s in spread]
    if palm is not None:
        msg.palm, msg.palm_frame = palm, palm_frame_id
    else:
        msg.palm.orientation.w = 1.0
    msg.center = points_m(hand.centre_mm)[0]
    msg.processing_time = duration_msg(hand.processing_time_s)
    _fill_fit(msg, getattr(r, "fit", None))
    return msg


def _fill_fit(msg: Hand, fit) -> None:
    """The hand-model fit's fields of a Hand (FIT_OFF when ``fit`` is None)."""
    if fit is None:
        msg.fit_status = Hand.FIT_OFF
        return
    msg.fit_status = Hand.FIT_REJECTED if fit.fallback else Hand.FIT_USED
    msg.joint_angles = [float(a) for a in np.deg2rad(np.asarray(fit.angles_deg, np.float64))]
    msg.fit_residual = float(fit.residual_mm) * MM_TO_M
    msg.hand_scale = float(fit.scale)
    msg.finger_length_factors = [float(x) for x in np.asarray(fit.finger_lengths, np.float64)]


def hand_array_msg(header: Header, skeleton: Skeleton, hands: list[Hand]) -> HandPoseArray:
    """vvhand_msgs/HandPoseArray (an empty ``hands`` list = no hand in this frame)."""
    fitted = any(h.fit_status != Hand.FIT_OFF for h in hands)
    return HandPoseArray(header=header, skeleton=skeleton.name,
                         joint_names=list(skeleton.joint_names),
                         joint_angle_names=list(ANGLE_NAMES) if fitted else [], hands=hands)


def palm_pose_msg(header: Header, palm: Pose) -> PoseStamped:
    """geometry_msgs/PoseStamped of a palm."""
    return PoseStamped(header=header, pose=palm)


def palm_transform(header: Header, child: str, palm: Pose) -> TransformStamped:
    """The palm as a TF frame under header.frame_id."""
    t = TransformStamped(header=header, child_frame_id=child)
    p = palm.position
    t.transform.translation = Vector3(x=p.x, y=p.y, z=p.z)
    t.transform.rotation = palm.orientation
    return t


def hand_joint_transforms(header: Header, skeleton: Skeleton, joints_mm: np.ndarray,
                          prefix: str, slot: int, rotations: np.ndarray | None = None
                          ) -> list[TransformStamped]:
    """One TransformStamped per joint of the hand in ``slot``.

    ``rotations`` (J, 3, 3): the joints' orientations (vvhand_core.bones); None = identity.
    """
    out = []
    points = np.asarray(joints_mm).reshape(-1, 3)
    for j, (name, p) in enumerate(zip(skeleton.joint_names, points, strict=True)):
        t = TransformStamped(header=header,
                             child_frame_id=hand_joint_frame_name(prefix, slot, name))
        q = points_m(p)[0]
        t.transform.translation = Vector3(x=q.x, y=q.y, z=q.z)
        t.transform.rotation = (Quaternion(w=1.0) if rotations is None
                                else quaternion_msg(rotations[j]))
        out.append(t)
    return out


def joint_state_name_prefix(side: str, slot: int) -> str:
    """Prefix of a hand's JointState names: "left_" / "right_", else "hand_<slot>_"."""
    return f"{side}_" if side in ("left", "right") else f"hand_{slot}_"


def joint_state_msg(header: Header, fit, prefix: str) -> JointState:
    """sensor_msgs/JointState of a hand's fitted angles (FitResult ``fit``).

    Names ``prefix + ANGLE_NAMES``, positions in radians (velocity and effort empty).
    """
    angles = np.deg2rad(np.asarray(fit.angles_deg, np.float64))
    return JointState(header=header, name=[prefix + n for n in ANGLE_NAMES],
                      position=[float(a) for a in angles])


__all__ = ["HandOutput", "SIDE_CODES", "duration_msg", "duration_s", "frame_prefix",
           "hand_array_msg", "hand_joint_frame_name", "hand_joint_transforms", "hand_msg",
           "hand_pose_msg", "joint_state_msg", "joint_state_name_prefix", "marker_array_msg",
           "palm_frame_name", "palm_pose", "palm_pose_msg", "palm_transform", "points_m",
           "pose_array_msg", "quaternion_msg", "side_frame_name"]
