"""One frame's outputs from the pipeline's hands: transform, track, filter, confidence, palm.

Input: a :class:`~vvhand_core.hands.HandsResult` (``run_hands``: every hand, nearest
first) or one HandPoseResult (``run``). Order per frame: each hand's joints and centre are
moved into the output frame (target_frame, when set), its track is updated and its joints
filtered there (one track and filter per hand, keyed by the pipeline's track id:
vvhand_core.hand_tracks), the per-joint confidence is derived from the views' spread
(vvhand_core.confidence), the palm frame is computed from the published joints
(vvhand_core.palm), then every message is built: ~/hands lists every hand in the
pipeline's order; ~/hand_pose, ~/palm_pose and ~/joints carry its primary hand (the one
a one-hand node follows: ``HandsResult.primary``); markers and TF cover every hand, TF
frames named after the hand's slot (``hand_<slot>_palm``) and,
opt-in (``publish_side_tf``), where exactly one hand of the frame has a known side,
``hand_left_palm`` / ``hand_right_palm`` too (docs/ros.md, "Frames"). ~/hand_pose and
~/hands are always built; the other outputs only where the settings enable them and
:class:`Wanted` says someone receives them (the node: a subscriber on the topic), and
:attr:`FrameOutput.built` counts what was built. Nothing here publishes; the node does, so
this is testable without DDS.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from geometry_msgs.msg import PoseArray, PoseStamped
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from vvhand_core.bones import fitted_bend_axes, joint_rotations
from vvhand_core.confidence import spread_to_confidence
from vvhand_core.hand_tracks import OutputTracks
from vvhand_core.hands import HandsResult
from vvhand_core.skeletons import Skeleton
from vvhand_core.smoothing import SmoothingConfig
from vvhand_msgs.msg import HandPose, HandPoseArray
from vvhand_ros.diagnostics import DiagnosticBounds
from vvhand_ros.hand_msgs import (
    HandOutput,
    frame_prefix,
    hand_array_msg,
    hand_joint_transforms,
    hand_msg,
    hand_pose_msg,
    joint_state_msg,
    joint_state_name_prefix,
    marker_array_msg,
    palm_frame_name,
    palm_pose,
    palm_pose_msg,
    palm_transform,
    pose_array_msg,
    side_frame_name,
)
from vvhand_ros.param_units import in_core_units
from vvhand_ros.target_frame import apply_rigid

# a TF frame-name prefix: what frame ids are made of, not starting with '/' (tf2 refuses
# frame ids that do), no blanks
TF_PREFIX = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


def check_tf_prefix(prefix: str) -> str:
    """``prefix`` when it can start TF frame names; ValueError saying why not."""
    if prefix and not TF_PREFIX.fullmatch(prefix):
        raise ValueError("tf_prefix must be empty or letters, digits, '_', '.', '-' and '/', "
                         f"not starting with '/', got {prefix!r}")
    return prefix


@dataclass
class OutputSettings:
    """The node's runtime output parameters, validated together (lengths in mm)."""

    smoothing: SmoothingConfig
    bounds: DiagnosticBounds
    publish_tf: bool = True
    publish_joint_tf: bool = False
    publish_markers: bool = True
    tf_prefix: str = ""
    confidence_scale_mm: float = 20.0
    publish_side_tf: bool = False
    publish_joint_states: bool = True


def settings_from(value) -> OutputSettings:
    """OutputSettings (millimetres, as vvhand_core) from the node's parameters.

    ``value(name)``: a parameter's value by ROS name, in its SI unit (converted by
    vvhand_ros.param_units). ValueError when invalid.
    """
    mm = in_core_units(value)
    smoothing = SmoothingConfig(
        enabled=bool(value("smoothing")), min_cutoff_hz=float(value("smoothing_min_cutoff_hz")),
        beta=float(mm("smoothing_beta")), d_cutoff_hz=float(value("smoothing_d_cutoff_hz")),
        jump_mm=float(mm("track_jump_mm")), max_gap_s=float(value("track_max_gap_s")))
    bounds = DiagnosticBounds(
        expected_rate_hz=float(value("diag_expected_rate_hz")),
        rate_warn_fraction=float(value("diag_rate_warn_fraction")),
        rate_error_fraction=float(value("diag_rate_error_fraction")),
        delay_warn_s=float(value("diag_delay_warn_s")),
        delay_error_s=float(value("diag_delay_error_s")))
    if bounds.rate_error_fraction > bounds.rate_warn_fraction:
        raise ValueError("diag_rate_error_fraction must be <= diag_rate_warn_fraction")
    if bounds.delay_error_s < bounds.delay_warn_s:
        raise ValueError("diag_delay_error_s must be >= diag_delay_warn_s")
    return OutputSettings(smoothing, bounds, bool(value("publish_tf")),
                          bool(value("publish_joint_tf")), bool(value("publish_markers")),
                          check_tf_prefix(str(value("tf_prefix"))),
                          float(mm("confidence_scale_mm")), bool(value("publish_side_tf")),
                          bool(value("publish_joint_states")))


@dataclass(frozen=True)
class Wanted:
    """Which optional outputs of a frame someone receives (and so are built).

    The node sets each from its publisher's subscription count, every frame (``tf``: /tf's
    publisher, the palm and the joint frames); the defaults build everything the settings
    enable. ~/hand_pose and ~/hands do not depend on it.
    """

    palm: bool = True
    joints: bool = True
    markers: bool = True
    tf: bool = True
    joint_states: bool = True


@dataclass
class FrameMessages:
    """Everything to publish for one frame (None / empty = not published)."""

    hand_pose: HandPose
    hands: HandPoseArray
    palm: PoseStamped | None = None
    joints: PoseArray | None = None
    markers: MarkerArray | None = None
    transforms: list = field(default_factory=list)
    joint_states: list = field(default_factory=list)  # sensor_msgs/JointState, one per hand


class FrameOutput:
    """Per-node output state (every hand's track and filter) and message building."""

    def __init__(self, skeleton: Skeleton, node_fqn: str) -> None:
        self.skeleton, self.node_fqn = skeleton, node_fqn
        self.tracks = OutputTracks()
        self.settings: OutputSettings | None = None
        # frames that built each optional output ("palm", "joints", "markers", "tf",
        # "joint_states"; the names of Wanted's fields) since this object was made
        self.built: Counter[str] = Counter()

    def configure(self, settings: OutputSettings) -> None:
        """New settings (the filters restart when their parameters change)."""
        if self.settings is None or settings.smoothing != self.settings.smoothing:
            self.tracks.configure(settings.smoothing)  # validates (ValueError)
        self.settings = settings

    def build(self, header: Header, result, rigid, target, processing_time_s: float,
              wanted: Wanted = Wanted()) -> FrameMessages:
        """Messages for one frame (module doc): ``result`` a HandsResult or a HandPoseResult.

        ``rigid``: (R, t mm) camera -> target_frame, or None. ``wanted``: the optional
        outputs someone receives; the others stay None / empty in the result (not built).
        The tracks and filters advance on every frame whatever is wanted.
        """
        frame = result if isinstance(result, HandsResult) else HandsResult.of_one(result)
        s, sk = self.settings, self.skeleton
        out_header = Header(stamp=header.stamp,
                            frame_id=target.frame if target is not None else header.frame_id)
        hands = self._hands(header, frame.hands, rigid, processing_time_s)
        first = frame.primary
        lead = next((k for k, r in enumerate(frame.hands) if r is first), 0)
        pose = hand_pose_msg(
            out_header, sk, hands[lead][0].joints_mm if hands else first.joints_mm,
            hands[lead][0].centre_mm if hands else first.centre_mm, first.cube_mm,
            first.num_candidates, first.selected_views, first.weights, first.logits,
            first.score, bool(hands), processing_time_s)
        if not hands:
            return FrameMessages(pose, hand_array_msg(out_header, sk, []))
        prefix = frame_prefix(s.tf_prefix, self.node_fqn)
        sides = [h.side for h, _ in hands]
        markers_on = s.publish_markers and wanted.markers
        palm_tf, joint_tf = s.publish_tf and wanted.tf, s.publish_joint_tf and wanted.tf
        entries = []
        msgs = FrameMessages(pose, None)
        for k, (hand, slot) in enumerate(hands):
            palm_name = palm_frame_name(prefix, slot)
            palm = palm_pose(hand.joints_mm, sk)
            entries.append(hand_msg(hand, sk, palm, palm_name))
            if markers_on:
                markers = marker_array_msg(out_header, sk, hand.joints_mm, marker_namespace(slot))
                msgs.markers = markers if msgs.markers is None else MarkerArray(
                    markers=msgs.markers.markers + markers.markers)
            lead_joints = k == lead and wanted.joints
            rotations = self._rotations(hand, rigid) if lead_joints or joint_tf else None
            if lead_joints:
                msgs.joints = pose_array_msg(out_header, hand.joints_mm, rotations)
            if k == lead and palm is not None and wanted.palm:
                msgs.palm = palm_pose_msg(out_header, palm)
            if palm is not None and palm_tf:
                msgs.transforms.append(palm_transform(out_header, palm_name, palm))
                if s.publish_side_tf and hand.side != "unknown" and sides.count(hand.side) == 1:
                    msgs.transforms.append(palm_transform(
                        out_header, side_frame_name(prefix, hand.side), palm))
            if joint_tf:
                msgs.transforms += hand_joint_transforms(out_header, sk, hand.joints_mm, prefix,
                                                         slot, rotations)
            fit = getattr(hand.result, "fit", None)
            if s.publish_joint_states and wanted.joint_states and fit is not None:
                msgs.joint_states.append(joint_state_msg(
                    out_header, fit, joint_state_name_prefix(hand.side, slot)))
        msgs.hands = hand_array_msg(out_header, sk, entries)
        self.built.update(name for name, value in (
            ("palm", msgs.palm), ("joints", msgs.joints), ("markers", msgs.markers),
            ("tf", msgs.transforms), ("joint_states", msgs.joint_states)) if value)
        return msgs

    def _rotations(self, hand: HandOutput, rigid) -> np.ndarray | None:
        """(J, 3, 3) joint orientations in the output frame (vvhand_core.bones), or None.

        From the fitted model's bend axes when its fit was used, else the palm convention.
        """
        fit = getattr(hand.result, "fit", None)
        axes = None
        if fit is not None and not fit.fell_back:
            axes = fitted_bend_axes(fit)
            if rigid is not None:
                axes = axes @ np.asarray(rigid[0], np.float64).T
        return joint_rotations(hand.joints_mm, self.skeleton, axes)

    def _hands(self, header: Header, results: list, rigid, processing_time_s: float
               ) -> list[tuple[HandOutput, int]]:
        """(HandOutput, slot) of each hand, in the pipeline's order; tracks updated."""
        s, sk = self.settings, self.skeleton
        if not results:
            self.tracks.lost()
            return []
        moved = []
        for k, r in enumerate(results):
            joints, centre = r.joints_mm, r.centre_mm
            if rigid is not None:
                joints, centre = apply_rigid(*rigid, joints), apply_rigid(*rigid, centre)
            key = r.track_id if r.track_id is not None else ("position", k)
            moved.append((key, joints, centre))
        t_s = header.stamp.sec + header.stamp.nanosec * 1e-9
        updates = self.tracks.update(t_s, [(key, joints) for key, joints, _ in moved])
        out = []
        for r, (_, _, centre), (update, slot) in zip(results, moved, updates):
            spread = (r.joint_spread_mm if r.joint_spread_mm is not None
                      else np.full(sk.num_joints, np.nan, np.float32))
            out.append((HandOutput(
                joints_mm=update.joints_mm, smoothed=s.smoothing.enabled,
                track_id=update.track_id, joint_spread_mm=spread,
                confidence=spread_to_confidence(spread, s.confidence_scale_mm),
                centre_mm=np.asarray(centre), result=r, processing_time_s=processing_time_s,
                side=r.side, right_probability=r.right_probability), slot))
        return out


def marker_namespace(slot: int) -> str:
    """RViz marker namespace of the hand in ``slot``: "vvhand", "vvhand_1", ..."""
    return "vvhand" if slot == 0 else f"vvhand_{slot}"


__all__ = ["FrameMessages", "FrameOutput", "OutputSettings", "Wanted", "settings_from"]
