"""Launch files describe the node, parameters and remaps each camera needs.

launch and launch_ros are not on PyPI, so each launch file is imported with stand-ins for
them and its description played with test/launch_harness.py (see there); the checks are
on what the node would get: its executable, remaps and effective parameters, and the
lifecycle states its events lead to.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from launch_harness import (
    REPO,
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    LifecycleNode,
    Node,
    RegisterEventHandler,
    drive,
    effective,
    install,
    launch_,
    load,
    vvhand_node,
)


@pytest.fixture
def standins(monkeypatch):
    install(monkeypatch)


SHIPPED = yaml.safe_load((REPO / "config" / "vvhand.yaml").read_text())["/**"]["ros__parameters"]

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

# a user's params_file: every parameter a launch argument names, none at its default
USER_VALUES = {"model_path": "/models/mine.pt", "alternate_model": "grasp", "device": "cpu",
               "num_views": 5,
               "selector": "teacher", "fit": False, "mirror": True, "max_hands": 1,
               "depth_transport": "compressedDepth", "camera_model": "raw",
               "publish_tf": False, "publish_joint_tf": True, "tf_prefix": "left_cam/",
               "target_frame": "base_link", "publish_markers": False}


def params_file(tmp_path, values: dict, key: str = "/**") -> str:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({key: {"ros__parameters": values}}))
    return str(path)


@pytest.mark.parametrize("launch_file", sorted(CAMERAS))
def test_camera_launch_files(standins, launch_file):
    depth, info, camera_model, frame = CAMERAS[launch_file]
    configs, actions = launch_(load(launch_file))
    node = vvhand_node(actions)
    assert type(node) is Node and node.kwargs["executable"] == "hand_pose_node"
    assert node.kwargs["name"] == "hand_pose_node" and node.kwargs["namespace"] == ""
    assert dict(node.kwargs["remappings"]) == {"depth/image": depth, "depth/camera_info": info}
    params = effective(node)
    # the shipped config/vvhand.yaml, with the camera's model on top
    assert params == {**SHIPPED, "camera_model": camera_model}
    assert not any("qos" in p for p in params)  # sensor-data QoS unless asked
    for arg in ("depth_topic", "info_topic", "depth_transport", "camera_model", "model",
                "device", "num_views", "selector", "namespace", "params_file", "rviz",
                "fixed_frame", "fit", "mirror", "max_hands", "depth_reliability", "lifecycle",
                "autostart", "use_sim_time"):
        assert arg in configs, arg
    assert "use_sim_time" not in params  # the node's default unless given
    assert not _rviz_nodes(actions)  # RViz is off by default
    # RViz shows this camera's depth topic in its depth image's frame
    (rviz,) = _rviz_nodes(launch_(load(launch_file), rviz="true")[1])
    args = rviz.kwargs["arguments"]
    assert args[0] == "-d" and args[2:] == ["-f", frame]
    cfg = yaml.safe_load(Path(args[1]).read_text())
    assert _displays(cfg)["rviz_default_plugins/DepthCloud"]["Depth Map Topic"] == depth
    assert cfg["Visualization Manager"]["Global Options"]["Fixed Frame"] == frame


def _rviz_nodes(actions) -> list:
    return [a for a in actions if isinstance(a, Node) and a.kwargs["package"] == "rviz2"]


def _displays(cfg: dict) -> dict:
    return {d["Class"]: d for d in cfg["Visualization Manager"]["Displays"]}


def test_use_sim_time_and_rviz_topics_follow_the_launch(standins, tmp_path):
    _, actions = launch_(load("realsense.launch.py"), use_sim_time="true", rviz="true",
                         namespace="left", depth_transport="compressedDepth")
    assert effective(vvhand_node(actions))["use_sim_time"] is True
    (rviz,) = _rviz_nodes(actions)
    assert rviz.kwargs["parameters"] == [{"use_sim_time": True}]
    displays = _displays(yaml.safe_load(Path(rviz.kwargs["arguments"][1]).read_text()))
    cloud = displays["rviz_default_plugins/DepthCloud"]
    assert cloud["Depth Map Topic"] == "/camera/camera/depth/image_rect_raw"
    assert cloud["Depth Map Transport Hint"] == "compressedDepth"
    node_topics = {c: d["Topic"]["Value"] for c, d in displays.items() if "Topic" in d}
    assert node_topics == {
        "rviz_default_plugins/MarkerArray": "/left/hand_pose_node/markers",
        "rviz_default_plugins/PoseArray": "/left/hand_pose_node/joints",
        "rviz_default_plugins/Pose": "/left/hand_pose_node/palm_pose",
        "rviz_default_plugins/Image": "/left/hand_pose_node/debug_image"}
    # a params_file's use_sim_time is kept when the argument is not given
    _, actions = launch_(load("realsense.launch.py"),
                         params_file=params_file(tmp_path, {"use_sim_time": True}))
    assert effective(vvhand_node(actions))["use_sim_time"] is True


@pytest.mark.parametrize("launch_file", sorted(CAMERAS) + ["replay.launch.py"])
def test_params_file_wins_over_launch_defaults(standins, tmp_path, launch_file):
    """Every parameter a launch argument names keeps the user's value from params_file."""
    from vvhand_ros.launch_description import NODE_PARAMETERS

    assert set(USER_VALUES) == set(NODE_PARAMETERS.values()) and len(USER_VALUES) == 15
    bag = {"bag": "/b"} if launch_file == "replay.launch.py" else {}
    _, actions = launch_(load(launch_file), params_file=params_file(tmp_path, USER_VALUES), **bag)
    params = effective(vvhand_node(actions))
    assert {k: params[k] for k in USER_VALUES} == USER_VALUES
    # a section named after the node counts too (launch_ros passes the file as is)
    path = params_file(tmp_path, {"num_views": 9}, key="hand_pose_node")
    _, actions = launch_(load(launch_file), params_file=path, **bag)
    assert effective(vvhand_node(actions))["num_views"] == 9


@pytest.mark.parametrize("launch_file", ["realsense.launch.py", "replay.launch.py"])
def test_given_arguments_win_over_params_file(standins, tmp_path, launch_file):
    bag = {"bag": "/b"} if launch_file == "replay.launch.py" else {}
    _, actions = launch_(load(launch_file), params_file=params_file(tmp_path, USER_VALUES),
                         num_views=7, camera_model="rectified", fit="true", tf_prefix="r/",
                         device="cuda:1", **bag)
    params = effective(vvhand_node(actions))
    given = {"num_views": 7, "camera_model": "rectified", "fit": True, "tf_prefix": "r/",
             "device": "cuda:1"}
    assert {k: params[k] for k in given} == given  # typed as the node declares them
    rest = set(USER_VALUES) - set(given)
    assert {k: params[k] for k in rest} == {k: USER_VALUES[k] for k in rest}
    # without a params_file the given argument still beats the camera's default
    _, actions = launch_(load(launch_file), camera_model="raw", **bag)
    assert effective(vvhand_node(actions))["camera_model"] == "raw"


@pytest.mark.parametrize("args, match", [({"num_views": "three"}, "num_views"),
                                         ({"fit": "yes please"}, "fit"),
                                         ({"depth_reliability": "sometimes"}, "reliab"),
                                         ({"lifecycle": "maybe"}, "lifecycle"),
                                         ({"use_sim_time": "1"}, "use_sim_time")])
def test_bad_argument_values_are_named(standins, args, match):
    with pytest.raises(ValueError, match=match):
        launch_(load("vvhand.launch.py"), **args)


@pytest.mark.parametrize("launch_file", sorted(CAMERAS))
def test_depth_reliability_sets_the_standard_qos_overrides(standins, tmp_path, launch_file):
    depth, info = CAMERAS[launch_file][:2]
    _, actions = launch_(load(launch_file), depth_reliability="reliable")
    qos = {k: v for k, v in effective(vvhand_node(actions)).items() if k.startswith("qos_")}
    assert qos == {f"qos_overrides.{t}.subscription.reliability": "reliable"
                   for t in (depth, depth + "/compressedDepth", info)}
    # a relative topic in a namespace: the resolved name, as rclpy keys the override
    _, actions = launch_(load(launch_file), depth_reliability="best_effort", namespace="cam1",
                         depth_topic="depth/image_raw", info_topic="/abs/camera_info")
    qos = {k: v for k, v in effective(vvhand_node(actions)).items() if k.startswith("qos_")}
    assert set(qos) == {"qos_overrides./cam1/depth/image_raw.subscription.reliability",
                        "qos_overrides./cam1/depth/image_raw/compressedDepth.subscription"
                        ".reliability",
                        "qos_overrides./abs/camera_info.subscription.reliability"}
    assert set(qos.values()) == {"best_effort"}


def test_resolved_topic_is_what_rclpy_resolves(rclpy_context):
    """The names the overrides are keyed by equal rclpy's own resolution of the remap."""
    from rclpy.node import Node as RclpyNode

    from vvhand_ros.launch_description import resolved_topic

    for namespace, target in (("", "/a/depth"), ("", "a/depth"), ("cam1", "a/depth"),
                              ("/cam1", "/a/depth"), ("/cam1", "a/depth"), ("cam1", "~/depth")):
        node = RclpyNode("hand_pose_node", namespace=namespace, context=rclpy_context,
                         cli_args=["--ros-args", "-r", f"depth/image:={target}"])
        try:
            assert resolved_topic(target, namespace) == node.resolve_topic_name("depth/image")
        finally:
            node.destroy_node()


def test_replay_launch_file(standins, tmp_path):
    from vvhand_ros.bag import DEFAULT_DEPTH_TOPIC, DEFAULT_INFO_TOPIC

    configs, actions = launch_(load("replay.launch.py"), bag="/data/bag")
    node = vvhand_node(actions)
    assert dict(node.kwargs["remappings"]) == {"depth/image": "/camera/depth/image_raw",
                                               "depth/camera_info": "/camera/depth/camera_info"}
    assert (DEFAULT_DEPTH_TOPIC, DEFAULT_INFO_TOPIC) == (configs["depth_topic"],
                                                         configs["info_topic"])
    params = effective(node)
    assert params["publish_tf"] is False
    assert params["smoothing"] is False  # the replay scores the pipeline's own joints
    # every frame scored: the standard QoS overrides make the subscriptions reliable
    for topic in ("/camera/depth/image_raw", "/camera/depth/image_raw/compressedDepth",
                  "/camera/depth/camera_info"):
        assert params[f"qos_overrides.{topic}.subscription.reliability"] == "reliable"
    assert configs["rate"] == "1.0"
    assert not any(isinstance(e, DeclareLaunchArgument) and e.args[0] == "bag"
                   and "default_value" in e.kwargs for e in load("replay.launch.py").args[0])
    (proc,) = [e for e in actions if isinstance(e, ExecuteProcess)]
    cmd = proc.kwargs["cmd"]
    assert cmd[:6] == ["vvhand", "replay", "/data/bag", "--mode", "live", "--external-node"]
    assert cmd[cmd.index("--camera-model") + 1] == "auto"
    assert cmd[cmd.index("--depth-topic") + 1] == "/camera/depth/image_raw"
    # the replay process follows the node's namespace, topics and a given camera model
    _, actions = launch_(load("replay.launch.py"), bag="/b", namespace="cam1",
                         depth_topic="/d", camera_model="raw")
    (proc,) = [e for e in actions if isinstance(e, ExecuteProcess)]
    cmd = proc.kwargs["cmd"]
    assert [cmd[cmd.index(o) + 1] for o in ("--namespace", "--depth-topic", "--camera-model")] \
        == ["cam1", "/d", "raw"]
    # the user's file may still say otherwise
    path = params_file(tmp_path, {"smoothing": True, "qos_overrides./camera/depth/image_raw"
                                  ".subscription.reliability": "best_effort"})
    _, actions = launch_(load("replay.launch.py"), bag="/b", params_file=path)
    params = effective(vvhand_node(actions))
    assert params["smoothing"] is True
    assert params["qos_overrides./camera/depth/image_raw.subscription.reliability"] == \
        "best_effort"


@pytest.mark.parametrize("launch_file", sorted(CAMERAS) + ["replay.launch.py"])
def test_lifecycle_argument_starts_a_self_activating_lifecycle_node(standins, launch_file):
    from lifecycle_msgs.msg import Transition

    bag = {"bag": "/b"} if launch_file == "replay.launch.py" else {}
    _, plain_actions = launch_(load(launch_file), **bag)
    _, actions = launch_(load(launch_file), lifecycle="true", **bag)
    plain, managed = vvhand_node(plain_actions), vvhand_node(actions)
    assert type(plain) is Node and plain.kwargs["executable"] == "hand_pose_node"
    assert isinstance(managed, LifecycleNode)
    assert managed.kwargs["executable"] == "hand_pose_lifecycle_node"
    assert (REPO / "scripts" / "hand_pose_lifecycle_node").is_file()
    same = ("name", "namespace", "remappings", "parameters")
    assert {k: managed.kwargs[k] for k in same} == {k: plain.kwargs[k] for k in same}
    # configured and activated at start; a later deactivate is not undone
    assert drive(managed, actions) == "active"
    assert drive(managed, actions, later=(Transition.TRANSITION_DEACTIVATE,)) == "inactive"
    # autostart:=false leaves it unconfigured for a lifecycle manager
    _, actions = launch_(load(launch_file), lifecycle="true", autostart="false", **bag)
    assert drive(vvhand_node(actions), actions) == "unconfigured"
    assert not any(isinstance(a, EmitEvent | RegisterEventHandler) for a in actions)


def test_launch_files_load_without_pip_only_packages():
    """`ros2 launch` runs under the system Python, which does not see the packages a venv
    holds (torch, rosbags, onnxruntime...): no launch file may need them."""
    from test_package_manifest import PIP_ONLY

    files = sorted(p.name for p in (REPO / "launch").glob("*.launch.py"))
    code = textwrap.dedent(f"""
        import sys
        for name in {sorted(PIP_ONLY)!r}:
            sys.modules[name] = None  # import fails as where it is not installed
        sys.path.insert(0, {str(REPO / "test")!r})
        import pytest, launch_harness
        launch_harness.install(pytest.MonkeyPatch())
        for f in {files!r}:
            launch_harness.load(f)
        print("loaded", len({files!r}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"loaded {len(files)}"


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
    assert displays["rviz_default_plugins/Image"]["Topic"]["Value"] == \
        "/hand_pose_node/debug_image"
    assert cfg["Visualization Manager"]["Global Options"]["Fixed Frame"] == \
        "camera_depth_optical_frame"  # the frame `vvhand synth-bag` stamps
