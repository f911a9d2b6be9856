"""The one launch description behind every vvhand launch file.

``launch/vvhand.launch.py`` uses the generic defaults; each camera launch file passes its
driver's topic names, camera model and optical frame.

Where the node's parameters come from, later sources winning (launch_ros applies the
``parameters`` list in order):

  1. the shipped config/vvhand.yaml (the node's own defaults, documented),
  2. the launch file's values for its camera (e.g. ``camera_model: rectified``) and its
     ``extra_parameters`` (replay: ``smoothing: false``),
  3. the user's ``params_file``, when one is given,
  4. the launch arguments given on the command line.

A node-parameter argument left empty (its default) is "not given" and sets nothing, so a
value in ``params_file`` is never silently replaced by a launch default; the flip side is that
an argument cannot set a parameter to the empty string.

``depth_reliability:=reliable|best_effort`` sets the subscriptions' QoS reliability through
rclpy's standard ``qos_overrides.<resolved topic>.subscription.reliability`` parameters
(depth image, its compressedDepth topic and camera_info); empty keeps sensor-data QoS
(best effort) or what ``params_file`` says. ``lifecycle:=true`` starts the managed node
(vvhand_ros.lifecycle_node) as a launch_ros LifecycleNode that configures and then
activates itself (``autostart:=false``: it stays unconfigured for a lifecycle manager).
``rviz:=true`` starts RViz with config/vvhand.rviz, its topics rewritten for the launch's depth
topic, transport and namespace and ``fixed_frame`` as its fixed frame (:func:`rviz_config`).
``use_sim_time:=true`` makes the node and RViz follow /clock (a bag replayed with --clock);
empty leaves the node's default (false) or what ``params_file`` says.
launch and launch_ros are imported only when a description is generated, so this module
imports without them.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache, partial
from pathlib import Path

import yaml

NODE_NAME = "hand_pose_node"

# (argument, default, description); the node parameter each one sets is in NODE_PARAMETERS.
LAUNCH_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    ("namespace", "", "namespace of the node"),
    ("depth_topic", "/camera/depth/image_raw",
     "depth image base topic (16UC1/mono16 mm or 32FC1 m); compressedDepth is on "
     "<depth_topic>/compressedDepth"),
    ("info_topic", "/camera/depth/camera_info", "camera_info of the depth image"),
    ("depth_transport", "", "raw | compressedDepth"),
    ("camera_model", "", "rectified (P) | raw (K and D, undistorted) | auto (by topic name)"),
    ("model", "", "checkpoint path (node default: the shipped default model)"),
    ("alternate_model", "", "a second pose model the fit may pick per hand: grasp (the "
     "packaged model of hands holding things), a checkpoint or an export directory; needs "
     "fit (docs/ros.md 'Hands that hold things')"),
    ("device", "", "auto | cpu | cuda | cuda:N"),
    ("num_views", "", "N views rendered and fused"),
    ("selector", "", "student | teacher | uniform"),
    ("fit", "", "true: fit the hand model to the depth after the network (joint angles, "
     "residual, phantom hands dropped; docs/ros.md 'Hand-model fit'); false: the network's "
     "joints"),
    ("mirror", "", "true: also run the networks on the flipped image (twice their time; "
     "docs/ros.md 'Mirror pass')"),
    ("max_hands", "", "most hands estimated per frame (1 = the nearest hand only; "
     "docs/ros.md 'Several hands')"),
    ("publish_tf", "", "one TF frame per hand (its palm)"),
    ("publish_joint_tf", "", "also one TF frame per joint"),
    ("tf_prefix", "", "prefix of the TF frame names (node default: <namespace>/<node name>/)"),
    ("target_frame", "", "frame of the outputs (e.g. base_link; needs tf2_ros; node default: "
     "the depth image's frame)"),
    ("publish_markers", "", "RViz skeleton markers on ~/markers"),
    ("depth_reliability", "", "reliable | best_effort: QoS reliability of the depth, "
     "compressedDepth and camera_info subscriptions (standard qos_overrides parameters); "
     "empty: sensor-data QoS (best effort) or params_file's qos_overrides"),
    ("lifecycle", "false", "true: the managed hand_pose_lifecycle_node (a LifecycleNode, see "
     "autostart); false: the plain node"),
    ("autostart", "true", "with lifecycle:=true: configure and activate the node at start; "
     "false: leave it unconfigured for ros2 lifecycle set or a lifecycle manager"),
    ("params_file", "", "node parameters (YAML, e.g. with qos_overrides); its values win over "
     "this launch file's defaults, arguments given on the command line win over it"),
    ("use_sim_time", "", "true: the node and RViz use /clock (a bag played with --clock); "
     "empty: the node's default (false) or params_file's"),
    ("rviz", "false", "start RViz with config/vvhand.rviz (its topics follow this launch)"),
    ("fixed_frame", "camera_depth_optical_frame", "RViz fixed frame: the depth image's frame"),
)

# launch argument -> node parameter; an empty argument sets nothing (see the module doc)
NODE_PARAMETERS: dict[str, str] = {
    "model": "model_path",
    "alternate_model": "alternate_model",
    "device": "device",
    "num_views": "num_views",
    "selector": "selector",
    "fit": "fit",
    "mirror": "mirror",
    "max_hands": "max_hands",
    "depth_transport": "depth_transport",
    "camera_model": "camera_model",
    "publish_tf": "publish_tf",
    "publish_joint_tf": "publish_joint_tf",
    "tf_prefix": "tf_prefix",
    "target_frame": "target_frame",
    "publish_markers": "publish_markers",
}
RELIABILITIES = ("reliable", "best_effort")


def config_file(name: str) -> Path:
    """config/<name>, found beside launch/ in the source tree and in share/vvhand."""
    here = Path(__file__).resolve().parent
    for base in (here.parent, here.parent.parent / "share" / "vvhand"):
        candidate = base / "config" / name
        if candidate.is_file():
            return candidate
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("vvhand")) / "config" / name
    except Exception:  # noqa: BLE001 - no ament index: fall back to the source layout
        return here.parent / "config" / name


def default_params_file() -> Path:
    """config/vvhand.yaml (source tree or share/vvhand)."""
    return config_file("vvhand.yaml")


@lru_cache(maxsize=1)
def _shipped_parameters() -> dict:
    return yaml.safe_load(default_params_file().read_text())["/**"]["ros__parameters"]


def typed_value(argument: str, text: str):
    """The launch argument's text as its node parameter's type (that of config/vvhand.yaml).

    Raises ValueError naming the argument when the text is not of that type.
    """
    param = NODE_PARAMETERS[argument]
    shipped = _shipped_parameters()[param]
    if isinstance(shipped, str):
        return text
    value = yaml.safe_load(text)
    if isinstance(shipped, bool):
        ok = isinstance(value, bool)
    elif isinstance(shipped, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    if not ok:
        raise ValueError(f"launch argument {argument}:={text!r}: {param} is a "
                         f"{type(shipped).__name__}")
    return value


def resolved_topic(topic: str, namespace: str, node_name: str = NODE_NAME) -> str:
    """The fully qualified name a remapped topic gets in the node (what qos_overrides use)."""
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    if topic.startswith("/"):
        return topic
    if topic.startswith("~"):
        return f"{ns}/{node_name}/{topic[1:].lstrip('/')}"
    return f"{ns}/{topic}"


def reliability_overrides(reliability: str, values: dict[str, str]) -> dict[str, str]:
    """qos_overrides for the depth (raw and compressedDepth) and camera_info subscriptions."""
    if reliability not in RELIABILITIES:
        raise ValueError(f"launch argument depth_reliability:={reliability!r}: one of "
                         f"{RELIABILITIES} (or empty)")
    depth = resolved_topic(values["depth_topic"], values["namespace"])
    info = resolved_topic(values["info_topic"], values["namespace"])
    return {f"qos_overrides.{t}.subscription.reliability": reliability
            for t in (depth, depth.rstrip("/") + "/compressedDepth", info)}


def node_parameters(values: dict[str, str], launch_defaults: dict[str, str],
                    extra_parameters: dict | None = None) -> list:
    """The node's ``parameters`` list, lowest precedence first (see the module doc).

    ``values``: every launch configuration as text (declared defaults filled in);
    ``launch_defaults``: the launch file's own values of node-parameter arguments (its camera
    model, transport, depth_reliability); ``extra_parameters``: further launch-file values.
    """
    def explicit(given: dict[str, str]) -> dict:
        out = {NODE_PARAMETERS[a]: typed_value(a, v) for a, v in given.items()
               if a in NODE_PARAMETERS and v != ""}
        if given.get("depth_reliability"):
            out.update(reliability_overrides(given["depth_reliability"], values))
        if given.get("use_sim_time"):
            out["use_sim_time"] = _flag(given, "use_sim_time")
        return out

    layers: list = [str(default_params_file())]
    file_defaults = {**explicit(launch_defaults), **(extra_parameters or {})}
    if file_defaults:
        layers.append(file_defaults)
    if values.get("params_file"):
        layers.append(values["params_file"])
    given = explicit(values)
    if given:
        layers.append(given)
    return layers


def _flag(values: dict[str, str], name: str) -> bool:
    text = values[name].strip().lower()
    if text not in ("true", "false"):
        raise ValueError(f"launch argument {name}:={values[name]!r}: true or false")
    return text == "true"


def _node_actions(context, launch_defaults: dict[str, str], extra_parameters: dict | None):
    """OpaqueFunction body: the plain node, or the LifecycleNode and its autostart events."""
    from launch_ros.actions import LifecycleNode, Node

    values = dict(context.launch_configurations)
    kwargs = dict(
        package="vvhand",
        name=NODE_NAME,
        namespace=values["namespace"],
        output="screen",
        emulate_tty=True,
        parameters=node_parameters(values, launch_defaults, extra_parameters),
        remappings=[("depth/image", values["depth_topic"]),
                    ("depth/camera_info", values["info_topic"])],
    )
    if not _flag(values, "lifecycle"):
        return [Node(executable="hand_pose_node", **kwargs)]
    node = LifecycleNode(executable="hand_pose_lifecycle_node", **kwargs)
    return [node, *(_autostart(node) if _flag(values, "autostart") else [])]


def _autostart(node) -> list:
    """Autostart events: configure at start, activate once configuring reached inactive.

    Only a configure leads to activate, so a later deactivate is not undone.
    """
    from launch.actions import EmitEvent, RegisterEventHandler
    from launch.events import matches_action
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from lifecycle_msgs.msg import Transition

    def change(transition_id: int):
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                           transition_id=transition_id))

    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, start_state="configuring", goal_state="inactive",
        entities=[change(Transition.TRANSITION_ACTIVATE)]))
    return [activate, change(Transition.TRANSITION_CONFIGURE)]


def rviz_config(values: dict[str, str]) -> str:
    """config/vvhand.rviz (YAML text) with this launch's topics and frame.

    The depth topic and its transport, the node's topics under its namespace, and
    ``fixed_frame`` (``values``: the launch configurations as text).
    """
    cfg = yaml.safe_load(config_file("vvhand.rviz").read_text())
    node_prefix = resolved_topic("~/", values["namespace"])
    manager = cfg["Visualization Manager"]
    manager["Global Options"]["Fixed Frame"] = values["fixed_frame"]
    for display in manager["Displays"]:
        if display["Class"] == "rviz_default_plugins/DepthCloud":
            display["Depth Map Topic"] = values["depth_topic"]
            display["Depth Map Transport Hint"] = (
                "compressedDepth" if values.get("depth_transport") == "compressedDepth" else "raw")
        topic = display.get("Topic")
        if isinstance(topic, dict) and topic["Value"].startswith(f"/{NODE_NAME}/"):
            topic["Value"] = node_prefix + topic["Value"][len(NODE_NAME) + 2:]
    return yaml.safe_dump(cfg, sort_keys=False)


def _rviz_actions(context) -> list:
    """OpaqueFunction body: RViz with :func:`rviz_config` written to a temporary file."""
    values = dict(context.launch_configurations)
    if not _flag(values, "rviz"):
        return []
    from launch_ros.actions import Node

    with tempfile.NamedTemporaryFile("w", prefix="vvhand_", suffix=".rviz",
                                     delete=False) as f:
        f.write(rviz_config(values))
    params = ([{"use_sim_time": _flag(values, "use_sim_time")}]
              if values.get("use_sim_time") else [])
    return [Node(package="rviz2", executable="rviz2", name="rviz2", parameters=params,
                 arguments=["-d", f.name, "-f", values["fixed_frame"]])]


def generate(overrides: dict[str, str] | None = None, extra_actions: list | None = None,
             extra_parameters: dict | None = None):
    """Build the LaunchDescription: launch arguments, the vvhand node, RViz, then extras.

    ``overrides``: the launch file's values of arguments. Topics and the RViz frame become
    the arguments' defaults; node-parameter arguments and ``depth_reliability`` stay empty
    ("not given") and their values rank below ``params_file`` (see the module doc), as do
    ``extra_parameters`` (plain parameter values). ``extra_actions`` are appended. Raises
    ValueError for an unknown argument name or a badly typed value.
    """
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    overrides = dict(overrides or {})
    unknown = set(overrides) - {name for name, _, _ in LAUNCH_ARGUMENTS}
    if unknown:
        raise ValueError(f"unknown launch arguments {sorted(unknown)}")
    below_file = {a: v for a, v in overrides.items()
                  if a in NODE_PARAMETERS or a in ("depth_reliability", "use_sim_time")}
    for a, v in below_file.items():  # a bad value fails here, not when launched
        if a in NODE_PARAMETERS:
            typed_value(a, v)
        elif a == "use_sim_time":
            _flag(below_file, a)
        else:
            reliability_overrides(v, {"depth_topic": "/t", "info_topic": "/t", "namespace": ""})
    actions = []
    for name, default, text in LAUNCH_ARGUMENTS:
        if name in below_file:
            text = f"{text} (this launch file: {below_file[name]}, below params_file)"
        else:
            default = overrides.get(name, default)
        actions.append(DeclareLaunchArgument(name, default_value=default, description=text))
    node = OpaqueFunction(function=partial(_node_actions, launch_defaults=below_file,
                                           extra_parameters=extra_parameters))
    rviz = OpaqueFunction(function=_rviz_actions)
    return LaunchDescription([*actions, node, rviz, *(extra_actions or [])])
