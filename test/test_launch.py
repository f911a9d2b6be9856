"""Launch files describe the node, parameters and remaps each camera needs.

launch and launch_ros are not on PyPI, so this test imports each launch file with small
stand-ins for ``launch``, ``launch.actions``, ``launch.conditions``,
``launch.substitutions`` and ``launch_ros.actions`` that record their constructor
arguments (they replace the real modules for the duration of the test, also on a machine
that has them), then checks the returned description: the node, its parameters, its topic
remaps, the declared defaults and the RViz node's fixed frame.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class LaunchDescription(_Recorded):
    pass


class DeclareLaunchArgument(_Recorded):
    pass


class ExecuteProcess(_Recorded):
    pass


class LaunchConfiguration(_Recorded):
    pass


class IfCondition(_Recorded):
    pass


class UnlessCondition(_Recorded):
    pass


class Node(_Recorded):
    pass


@pytest.fixture
def standins(monkeypatch):
    launch = types.ModuleType("launch")
    launch.LaunchDescription = LaunchDescription
    actions = types.ModuleType("launch.actions")
    actions.DeclareLaunchArgument = DeclareLaunchArgument
    actions.ExecuteProcess = ExecuteProcess
    subs = types.ModuleType("launch.substitutions")
    subs.LaunchConfiguration = LaunchConfiguration
    conditions = types.ModuleType("launch.conditions")
    conditions.IfCondition = IfCondition
    conditions.UnlessCondition = UnlessCondition
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")
    ros_actions.Node = Node
    for name, mod in {"launch": launch, "launch.actions": actions, "launch.substitutions": subs,
                      "launch.conditions": conditions, "launch_ros": launch_ros,
                      "launch_ros.actions": ros_actions}.items():
        monkeypatch.setitem(sys.modules, name, mod)


def load(name: str):
    path = REPO / "launch" / name
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def resolve(value, defaults):
    """A LaunchConfiguration resolves to its declared default; a tuple to their text."""
    if isinstance(value, LaunchConfiguration):
        return defaults[value.args[0]]
    if isinstance(value, tuple):
        return "".join(resolve(v, defaults) for v in value)
    return value


def enabled(entity, defaults) -> bool:
    """Whether a Node's condition holds with the declared defaults (no condition: True)."""
    cond = entity.kwargs.get("condition")
    if cond is None:
        return True
    value = resolve(cond.args[0], defaults).lower() == "true"
    return value if isinstance(cond, IfCondition) else not value


def describe(desc, **args):
    """(defaults, node kwargs, remaps, params, entities) of the vvhand node that runs with
    the declared defaults, ``args`` overriding them (as `ros2 launch ... name:=value`)."""
    entities = desc.args[0]
    defaults = {a.args[0]: a.kwargs["default_value"] for a in entities
                if isinstance(a, DeclareLaunchArgument) and "default_value" in a.kwargs}
    defaults.update(args)
    nodes = [e for e in entities if isinstance(e, Node) and e.kwargs["package"] == "vvhand"
             and enabled(e, defaults)]
    assert len(nodes) == 1
    node = nodes[0].kwargs
    remaps = {src: resolve(dst, defaults) for src, dst in node["remappings"]}
    params = {}
    for p in node["parameters"]:
        if isinstance(p, dict):
            params.update({resolve(k, defaults): resolve(v, defaults) for k, v in p.items()})
    return defaults, node, remaps, params, entities


def rviz_of(entities, defaults):
    """(arguments, condition value) of the RViz node."""
    (rviz,) = [e for e in entities if isinstance(e, Node) and e.kwargs["package"] == "rviz2"]
    args = [resolve(a, defaults) for a in rviz.kwargs["arguments"]]
    return args, resolve(rviz.kwargs["condition"].args[0], defaults)


# launch file -> depth topic, camera_info topic, camera_model, optical frame of the depth
CAMERAS = {
    "vvhand.launch.py": ("/camera/depth/image_raw", "/camera/depth/camera_info", "auto",
                         "camera_depth_optical_frame"),
    "realsense.launch.py": ("/camera/camera/depth/image_rect_raw",
                            "/camera/camera/depth/camera_info", "rectified",
                            "camera_depth_optical_frame"),
    "azure_kinect.launch.py": ("/depth/image_raw", "/depth/camera_info", "raw",
                               "depth_camera_link"),
    "orbbec.launch.py": ("/camera/depth/image_raw", "/camera/depth/camera_info", "rectified",
                         "camera_color_optical_frame"),
    "zed.launch.py": ("/zed/zed_node/depth/depth_registered", "/zed/zed_node/depth/camera_info",
                      "rectified", "zed_left_camera_frame_optical"),
}


@pytest.mark.parametrize("launch_file", sorted(CAMERAS))
def test_camera_launch_files(standins, launch_file):
    depth, info, camera_model, frame = CAMERAS[launch_file]
    defaults, node, remaps, params, entities = describe(load(launch_file))
    assert node["package"] == "vvhand" and node["executable"] == "hand_pose_node"
    assert remaps == {"depth/image": depth, "depth/camera_info": info}
    assert params["camera_model"] == camera_model and params["depth_transport"] == "raw"
    assert params["selector"] == "student" and params["num_views"] == "3"
    assert params["model_path"] == "" and params["device"] == "auto"
    assert params["fit"] == "true" and params["mirror"] == "false"  # the node's defaults
    assert not any("qos" in p for p in params)  # sensor-data QoS unless params_file overrides
    for arg in ("depth_topic", "info_topic", "depth_transport", "camera_model", "model",
                "device", "num_views", "selector", "namespace", "params_file", "rviz",
                "fixed_frame", "fit", "mirror"):
        assert arg in defaults, arg
    assert resolve(node["namespace"], defaults) == ""
    # the YAML file handed to the node exists and declares only known parameters
    yaml_files = [resolve(p, defaults) for p in node["parameters"] if not isinstance(p, dict)]
    assert len(yaml_files) == 1 and Path(yaml_files[0]).is_file()
    declared = yaml.safe_load(Path(yaml_files[0]).read_text())["/**"]["ros__parameters"]
    assert set(params) <= set(declared)
    # RViz (off by default) shows the depth image's frame
    args, enabled = rviz_of(entities, defaults)
    assert enabled == "false" and args[:1] == ["-d"] and Path(args[1]).name == "vvhand.rviz"
    assert args[2:] == ["-f", frame]


def test_replay_launch_file(standins):
    defaults, node, remaps, params, entities = describe(load("replay.launch.py"))
    assert remaps == {"depth/image": "/camera/depth/image_raw",
                      "depth/camera_info": "/camera/depth/camera_info"}
    assert params["publish_tf"] == "false"
    assert params["smoothing"] is False  # the replay scores the pipeline's own joints
    # every frame scored: the standard QoS overrides make both subscriptions reliable
    for topic in ("/camera/depth/image_raw", "/camera/depth/image_raw/compressedDepth",
                  "/camera/depth/camera_info"):
        assert params[f"qos_overrides.{topic}.subscription.reliability"] == "reliable"
    assert defaults["rate"] == "1.0"
    assert any(isinstance(e, DeclareLaunchArgument) and e.args[0] == "bag"
               and "default_value" not in e.kwargs for e in entities)  # bag is required
    (proc,) = [e for e in entities if isinstance(e, ExecuteProcess)]
    cmd = [resolve(c, defaults) if not (isinstance(c, LaunchConfiguration)
                                       and c.args[0] == "bag") else "<bag>"
           for c in proc.kwargs["cmd"]]
    assert cmd[:6] == ["vvhand", "replay", "<bag>", "--mode", "live", "--external-node"]
    assert "/camera/depth/image_raw" in cmd


@pytest.mark.parametrize("launch_file", sorted(CAMERAS))
def test_lifecycle_argument_picks_the_managed_node(standins, launch_file):
    desc = load(launch_file)
    _, plain, _, plain_params, _ = describe(desc)
    defaults, managed, remaps, params, _ = describe(desc, lifecycle="true")
    assert plain["executable"] == "hand_pose_node"  # the plain node stays the default
    assert managed["executable"] == "hand_pose_lifecycle_node"
    assert managed["name"] == plain["name"] == "hand_pose_node" and params == plain_params
    assert remaps == {"depth/image": CAMERAS[launch_file][0],
                      "depth/camera_info": CAMERAS[launch_file][1]}
    assert (REPO / "scripts" / "hand_pose_lifecycle_node").is_file()
    # TF: palm frames on, per-joint frames opt-in, no target frame by default
    assert params["publish_tf"] == "true" and params["publish_joint_tf"] == "false"
    assert params["target_frame"] == "" and params["tf_prefix"] == ""


def test_every_launch_file_is_covered():
    shipped = {p.name for p in (REPO / "launch").glob("*.launch.py")}
    assert set(CAMERAS) | {"replay.launch.py"} >= shipped


def test_unknown_override_is_rejected(standins):
    from vvhand_ros.launch_description import generate

    with pytest.raises(ValueError, match="unknown launch arguments"):
        generate({"depth_topc": "/x"})


def test_rviz_config_shows_depth_markers_palms_and_tf():
    cfg = yaml.safe_load((REPO / "config" / "vvhand.rviz").read_text())
    displays = {d["Class"]: d for d in cfg["Visualization Manager"]["Displays"]}
    assert displays["rviz_default_plugins/DepthCloud"]["Depth Map Topic"] == \
        "/camera/depth/image_raw"
    assert displays["rviz_default_plugins/MarkerArray"]["Topic"]["Value"] == \
        "/hand_pose_node/markers"
    assert displays["rviz_default_plugins/PoseArray"]["Topic"]["Value"] == "/hand_pose_node/joints"
    assert "rviz_default_plugins/TF" in displays
    assert displays["rviz_default_plugins/TF"]["Show Axes"]  # the palm frames
    palm = displays["rviz_default_plugins/Pose"]
    assert palm["Topic"]["Value"] == "/hand_pose_node/palm_pose" and palm["Shape"] == "Axes"
    assert cfg["Visualization Manager"]["Global Options"]["Fixed Frame"] == \
        "camera_depth_optical_frame"  # the frame `vvhand synth-bag` stamps
