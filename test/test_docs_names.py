"""README.md and docs/ros.md name the topics, services and TF frames the code makes.

Topics and services: the rows of docs/ros.md's "Topics" table (direction, name, type) are
exactly the publishers, subscriptions and services of a real hand_pose_node built in this
process (rclpy; once with each depth transport), with the documented types, and every
``~/name`` README.md mentions is one of them. TF frames: every frame-name pattern the two
documents write (``<prefix>hand_<slot>_palm``, ...) is a name vvhand_ros.hand_msgs builds,
each kind of frame the node broadcasts is documented, and so are the JointState names.
"""

from __future__ import annotations

import re

import pytest

from ros_helpers import REPO

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
from vvhand_core.fit.stage import ANGLE_NAMES  # noqa: E402
from vvhand_core.skeletons import HANDS2019_21  # noqa: E402
from vvhand_ros.hand_msgs import (  # noqa: E402
    frame_prefix,
    hand_joint_frame_name,
    joint_state_name_prefix,
    palm_frame_name,
    side_frame_name,
)

README = (REPO / "README.md").read_text()
ROS_MD = (REPO / "docs" / "ros.md").read_text()
NODE = "/hand_pose_node"
# what rclpy gives every node, not vvhand's interface
BUILTIN_TOPICS = {"/parameter_events", "/rosout"}
BUILTIN_SERVICES = {"describe_parameters", "get_parameter_types", "get_parameters",
                    "get_type_description", "list_parameters", "set_parameters",
                    "set_parameters_atomically"}


def _type_name(cls) -> str:
    return f"{cls.__module__.split('.')[0]}/{cls.__name__}"


def _absolute(name: str) -> str:
    if name.startswith("~/"):
        return f"{NODE}/{name[2:]}"
    return name if name.startswith("/") else "/" + name


def documented_interface() -> set[tuple[str, str, str]]:
    """(direction, absolute name, type) of each row of docs/ros.md's "Topics" table."""
    section = ROS_MD.split("\n## Topics\n", 1)[1].split("\n## ", 1)[0]
    rows = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] not in ("in", "out", "service"):
            continue
        name = re.match(r"`([^`]+)`", cells[1]).group(1)
        rows.add((cells[0], _absolute(name), cells[2]))
    return rows


def node_interface(context, checkpoint) -> set[tuple[str, str, str]]:
    """(direction, absolute name, type) of hand_pose_node's own topics and services."""
    from vvhand_ros.node import HandPoseNode

    found = set()
    for transport in ("raw", "compressedDepth"):
        node = HandPoseNode(context=context, parameter_overrides=[
            rclpy.parameter.Parameter("model_path", value=str(checkpoint)),
            rclpy.parameter.Parameter("device", value="cpu"),
            rclpy.parameter.Parameter("backend", value="torch"),
            rclpy.parameter.Parameter("depth_transport", value=transport)])
        try:
            assert node.get_fully_qualified_name() == NODE
            found |= {("out", p.topic_name, _type_name(p.msg_type)) for p in node.publishers
                      if p.topic_name not in BUILTIN_TOPICS}
            found |= {("in", s.topic_name, _type_name(s.msg_type)) for s in node.subscriptions}
            found |= {("service", _absolute(s.srv_name), _type_name(s.srv_type))
                      for s in node.services
                      if s.srv_name.rsplit("/", 1)[-1] not in BUILTIN_SERVICES}
        finally:
            node.destroy_node()
    return found


def test_topics_table_and_readme_name_the_nodes_interface(rclpy_context, checkpoint):
    node = node_interface(rclpy_context, checkpoint)
    documented = documented_interface()
    assert documented - node == set(), "documented in docs/ros.md, not in the node"
    assert node - documented == set(), "in the node, not in docs/ros.md's table"
    names = {name for _, name, _ in node}
    mentioned = {_absolute(m) for m in re.findall(r"`(~/[a-z_]+)`", README)}
    assert mentioned and mentioned <= names, f"README names {mentioned - names}"


# ------------------------------------------------------------------------ TF frames
PREFIX, SLOT = "cam1/", 3


def _frame_patterns(text: str) -> list[str]:
    """Backticked TF frame names and patterns: `[<prefix>]hand_..._palm` or `..._<joint_name>`.

    (Worked examples with a concrete prefix: :func:`test_the_default_prefix_example...`.)
    """
    return [t for t in re.findall(r"`((?:<[a-z_]+>)?hand_[^`\s]*)`", text)
            if t.endswith(("_palm", "<joint_name>"))]


def _render(pattern: str) -> list[str]:
    """The names a documented pattern stands for (placeholders filled in)."""
    name = re.sub(r"<(tf_)?prefix>", PREFIX, pattern)
    name = re.sub(r"<(s|slot)>", str(SLOT), name)
    if "<joint_name>" not in name:
        return [name]
    return [name.replace("<joint_name>", j) for j in HANDS2019_21.joint_names]


def _code_frames(prefix: str) -> dict[str, set[str]]:
    return {"palm": {palm_frame_name(prefix, SLOT)},
            "side": {side_frame_name(prefix, s) for s in ("left", "right")},
            "joint": {hand_joint_frame_name(prefix, SLOT, j) for j in HANDS2019_21.joint_names}}


@pytest.mark.parametrize("doc", ["README.md", "docs/ros.md"])
def test_documented_tf_frames_are_the_ones_the_code_names(doc):
    text = README if doc == "README.md" else ROS_MD
    patterns = _frame_patterns(text)
    assert patterns, f"{doc} names no TF frame"
    kinds = set()
    for pattern in patterns:
        prefix = PREFIX if pattern.startswith("<") else ""
        code = _code_frames(prefix)
        for name in _render(pattern):
            kind = next((k for k, names in code.items() if name in names), None)
            assert kind is not None, f"{doc}: `{pattern}` ({name}) is not a frame the node names"
            kinds.add(kind)
    if doc == "docs/ros.md":  # the reference lists every kind of frame the node broadcasts
        assert kinds == {"palm", "side", "joint"}


def test_the_default_prefix_example_and_joint_state_names():
    """docs/ros.md's worked examples, as the code builds them."""
    example = re.search(r"`(/[^`]+)` broadcasts `([^`]+)`", ROS_MD)
    node_name, frame = example.groups()
    assert palm_frame_name(frame_prefix("", node_name), 0) == frame
    side, slot = re.search(r"\(`(right_[a-z_]+)`\), else by its slot \(`(hand_1_[a-z_]+)`\)",
                           ROS_MD).groups()
    assert side.removeprefix("right_") in ANGLE_NAMES
    assert joint_state_name_prefix("right", 1) + side.removeprefix("right_") == side
    assert joint_state_name_prefix("unknown", 1) + slot.removeprefix("hand_1_") == slot
