"""The rosbags typestore of vvhand bags: the Kilted types plus vvhand's HandPose.

Ground truth in a bag is a HandPose message. Bags written today carry
``vvhand_msgs/msg/HandPose`` (:data:`HAND_POSE_TYPE`, its definition read from the
vvhand_msgs package: the source tree's ``ros/vvhand_msgs/msg`` or the installed
``share/vvhand_msgs/msg``). Bags written before the messages had their own package carry
``vvhand/msg/HandPose`` (:data:`LEGACY_HAND_POSE_TYPE`) with the definition frozen below;
both are registered, so old bags keep replaying. Readers only use the fields both
versions share (header, joints, valid).
"""

from __future__ import annotations

from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

HAND_POSE_TYPE = "vvhand_msgs/msg/HandPose"
LEGACY_HAND_POSE_TYPE = "vvhand/msg/HandPose"
HAND_POSE_TYPES = (HAND_POSE_TYPE, LEGACY_HAND_POSE_TYPE)

# vvhand/msg/HandPose as the `vvhand` package defined it (comments removed); never changes,
# it describes bytes already written.
LEGACY_HAND_POSE_DEFINITION = """\
std_msgs/Header header
string skeleton
string[] joint_names
geometry_msgs/Point[] joints
geometry_msgs/Point center
float32 cube_size
uint32 num_candidate_views
uint32[] selected_views
float32[] view_weights
float32[] view_logits
float32 score
bool valid
float32 processing_time
"""


class MessageDefinitionError(RuntimeError):
    """vvhand_msgs' HandPose.msg is neither in the source tree nor installed."""


def hand_pose_definition() -> str:
    """Text of vvhand_msgs' HandPose.msg (source tree or installed share/vvhand_msgs/msg).

    Raises MessageDefinitionError naming the places looked at when neither has it.
    """
    here = Path(__file__).resolve().parent
    candidates = [here.parent / "ros" / "vvhand_msgs" / "msg" / "HandPose.msg"]
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory("vvhand_msgs"))
        candidates.append(share / "msg" / "HandPose.msg")
    except Exception:  # noqa: BLE001 - no ament index or package: source layout only
        pass
    for path in candidates:
        if path.is_file():
            return path.read_text()
    raise MessageDefinitionError(
        f"cannot find vvhand_msgs' HandPose.msg (looked in {[str(c) for c in candidates]})")


def make_typestore():
    """Kilted message types plus both HandPose types (:data:`HAND_POSE_TYPES`)."""
    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg(hand_pose_definition(), HAND_POSE_TYPE))
    store.register(get_types_from_msg(LEGACY_HAND_POSE_DEFINITION, LEGACY_HAND_POSE_TYPE))
    return store


__all__ = ["HAND_POSE_TYPE", "HAND_POSE_TYPES", "LEGACY_HAND_POSE_DEFINITION",
           "LEGACY_HAND_POSE_TYPE", "MessageDefinitionError", "hand_pose_definition",
           "make_typestore"]
