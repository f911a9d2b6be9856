"""One frame's outputs from one HandPoseResult: transform, track, filter, confidence, palm.

Order per frame: the joints and centre are moved into the output frame (target_frame, when
set), the hand's track is updated and its joints filtered there (vvhand_core.smoothing),
the per-joint confidence is derived from the views' spread (vvhand_core.confidence), the
palm frame is computed from the published joints (vvhand_core.palm), then every message
is built. Nothing here publishes; the node does, so this is testable without DDS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from geometry_msgs.msg import PoseArray, PoseStamped
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from vvhand.msg import HandPose, HandPoseArray
from vvhand_core.confidence import spread_to_confidence
from vvhand_core.skeletons import Skeleton
from vvhand_core.smoothing import HandTrack, SmoothingConfig
from vvhand_ros.conversions import hand_pose_msg, marker_array_msg, pose_array_msg
from vvhand_ros.diagnostics import DiagnosticBounds
from vvhand_ros.hand_msgs import (
    HandOutput,
    frame_prefix,
    hand_array_msg,
    hand_joint_transforms,
    hand_msg,
    palm_frame_name,
    palm_pose,
    palm_pose_msg,
    palm_transform,
)
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
    """The node's runtime output parameters, validated together."""

    smoothing: SmoothingConfig
    bounds: DiagnosticBounds
    publish_tf: bool = True
    publish_joint_tf: bool = False
    publish_markers: bool = True
    tf_prefix: str = ""
    confidence_scale_mm: float = 20.0


def settings_from(value) -> OutputSettings:
    """OutputSettings from ``value(name)`` (a parameter getter); ValueError when invalid."""
    smoothing = SmoothingConfig(
        enabled=bool(value("smoothing")), min_cutoff_hz=float(value("smoothing_min_cutoff_hz")),
        beta=float(value("smoothing_beta")), d_cutoff_hz=float(value("smoothing_d_cutoff_hz")),
        jump_mm=float(value("track_jump_mm")), max_gap_s=float(value("track_max_gap_s")))
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
                          float(value("confidence_scale_mm")))


@dataclass
class FrameMessages:
    """Everything to publish for one frame (None / empty = not published)."""

    hand_pose: HandPose
    hands: HandPoseArray
    palm: PoseStamped | None = None
    joints: PoseArray | None = None
    markers: MarkerArray | None = None
    transforms: list = field(default_factory=list)


class FrameOutput:
    """Per-node output state (the hand's track and filter) and message building."""

    def __init__(self, skeleton: Skeleton, node_fqn: str) -> None:
        self.skeleton, self.node_fqn = skeleton, node_fqn
        self.track = HandTrack()
        self.settings: OutputSettings | None = None

    def configure(self, settings: OutputSettings) -> None:
        """New settings (the filter restarts when its parameters change)."""
        if self.settings is None or settings.smoothing != self.settings.smoothing:
            self.track.configure(settings.smoothing)  # validates (ValueError)
        self.settings = settings

    def build(self, header: Header, result, rigid, target, processing_time_s: float
              ) -> FrameMessages:
        """Messages for one frame. ``rigid``: (R, t mm) camera -> target_frame, or None."""
        s, sk = self.settings, self.skeleton
        out_header = Header(stamp=header.stamp,
                            frame_id=target.frame if target is not None else header.frame_id)
        hand = None
        if result.valid:
            joints, centre = result.joints_mm, result.centre_mm
            if rigid is not None:
                joints, centre = apply_rigid(*rigid, joints), apply_rigid(*rigid, centre)
            t_s = header.stamp.sec + header.stamp.nanosec * 1e-9
            update = self.track.update(t_s, joints)
            spread = (result.joint_spread_mm if result.joint_spread_mm is not None
                      else np.full(sk.num_joints, np.nan, np.float32))
            hand = HandOutput(joints_mm=update.joints_mm, smoothed=s.smoothing.enabled,
                              track_id=update.track_id, joint_spread_mm=spread,
                              confidence=spread_to_confidence(spread, s.confidence_scale_mm),
                              centre_mm=np.asarray(centre), result=result,
                              processing_time_s=processing_time_s, side=result.side,
                              right_probability=result.right_probability)
        else:
            self.track.lost()
        pose = hand_pose_msg(
            out_header, sk, hand.joints_mm if hand else result.joints_mm,
            hand.centre_mm if hand else result.centre_mm, result.cube_mm,
            result.num_candidates, result.selected_views, result.weights, result.logits,
            result.score, result.valid, processing_time_s)
        if hand is None:
            return FrameMessages(pose, hand_array_msg(out_header, sk, []))
        prefix = frame_prefix(s.tf_prefix, self.node_fqn)
        palm_name = palm_frame_name(prefix, 0)
        palm = palm_pose(hand.joints_mm, sk)
        msgs = FrameMessages(pose, hand_array_msg(out_header, sk,
                                                  [hand_msg(hand, sk, palm, palm_name)]))
        msgs.joints = pose_array_msg(out_header, hand.joints_mm)
        if s.publish_markers:
            msgs.markers = marker_array_msg(out_header, sk, hand.joints_mm)
        if palm is not None:
            msgs.palm = palm_pose_msg(out_header, palm)
            if s.publish_tf:
                msgs.transforms.append(palm_transform(out_header, palm_name, palm))
        if s.publish_joint_tf:
            msgs.transforms += hand_joint_transforms(out_header, sk, hand.joints_mm, prefix, 0)
        return msgs


__all__ = ["FrameMessages", "FrameOutput", "OutputSettings", "settings_from"]
