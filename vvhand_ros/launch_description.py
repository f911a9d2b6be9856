"""The one launch description behind every vvhand launch file.

``launch/vvhand.launch.py`` uses the generic defaults; each camera launch file passes its
driver's topic names, transport-independent base topic, camera model and optical frame.
The subscriptions use sensor-data QoS (REP-2003); change it with the standard
``qos_overrides.<topic>.subscription.<policy>`` parameters in a ``params_file``.
``rviz:=true`` starts RViz with config/vvhand.rviz and ``fixed_frame`` as its fixed frame;
``lifecycle:=true`` starts the managed node (vvhand_ros.lifecycle_node) instead of the plain one.
launch and launch_ros are imported only when a description is generated, so this module
imports without them.
"""

from __future__ import annotations

from pathlib import Path

# (argument, default, description); the node parameter each one sets is in NODE_PARAMETERS.
LAUNCH_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    ("namespace", "", "namespace of the node"),
    ("depth_topic", "/camera/depth/image_raw",
     "depth image base topic (16UC1/mono16 mm or 32FC1 m); compressedDepth is on "
     "<depth_topic>/compressedDepth"),
    ("info_topic", "/camera/depth/camera_info", "camera_info of the depth image"),
    ("depth_transport", "raw", "raw | compressedDepth"),
    ("camera_model", "auto", "rectified (P) | raw (K and D, undistorted) | auto (by topic name)"),
    ("model", "", "checkpoint path; empty = the shipped default model"),
    ("device", "auto", "auto | cpu | cuda | cuda:N"),
    ("num_views", "3", "N views rendered and fused"),
    ("selector", "student", "student | teacher | uniform"),
    ("fit", "true", "fit the hand model to the depth after the network (joint angles, "
     "residual, phantom hands dropped; docs/ros.md 'Hand-model fit'); false: the network's "
     "joints"),
    ("mirror", "false", "also run the networks on the flipped image (twice their time; "
     "docs/ros.md 'Mirror pass')"),
    ("publish_tf", "true", "one TF frame per hand (its palm)"),
    ("publish_joint_tf", "false", "also one TF frame per joint"),
    ("tf_prefix", "", "prefix of the TF frame names; empty = <namespace>/<node name>/"),
    ("target_frame", "", "frame of the outputs (e.g. base_link; needs tf2_ros); empty = the "
     "depth image's frame"),
    ("lifecycle", "false", "true: the managed hand_pose_lifecycle_node (starts unconfigured; "
     "drive it with ros2 lifecycle set or a lifecycle manager); false: the plain node"),
    ("publish_markers", "true", "RViz skeleton markers on ~/markers"),
    ("params_file", "", "node parameters (YAML, e.g. with qos_overrides); default: the "
     "shipped config/vvhand.yaml"),
    ("rviz", "false", "start RViz with config/vvhand.rviz"),
    ("fixed_frame", "camera_depth_optical_frame", "RViz fixed frame: the depth image's frame"),
)

# launch argument -> node parameter
NODE_PARAMETERS: dict[str, str] = {
    "model": "model_path",
    "device": "device",
    "num_views": "num_views",
    "selector": "selector",
    "fit": "fit",
    "mirror": "mirror",
    "depth_transport": "depth_transport",
    "camera_model": "camera_model",
    "publish_tf": "publish_tf",
    "publish_joint_tf": "publish_joint_tf",
    "tf_prefix": "tf_prefix",
    "target_frame": "target_frame",
    "publish_markers": "publish_markers",
}


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


def generate(overrides: dict[str, str] | None = None, extra_actions: list | None = None,
             extra_parameters: dict | None = None):
    """Build the LaunchDescription: launch arguments, hand_pose_node, RViz, then extras.

    ``overrides`` replaces argument defaults (a camera's topics, camera model and frame);
    the node gets its parameters from ``params_file`` (config/vvhand.yaml by default), the
    arguments and ``extra_parameters`` (keys may be tuples of substitutions), and its topics
    remapped; RViz starts when ``rviz`` is true; ``extra_actions`` are appended.
    """
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument
    from launch.conditions import IfCondition, UnlessCondition
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    overrides = dict(overrides or {})
    unknown = set(overrides) - {name for name, _, _ in LAUNCH_ARGUMENTS}
    if unknown:
        raise ValueError(f"unknown launch arguments {sorted(unknown)}")
    defaults = {"params_file": str(default_params_file())}
    actions = [
        DeclareLaunchArgument(name, default_value=overrides.get(name, defaults.get(name, default)),
                              description=text)
        for name, default, text in LAUNCH_ARGUMENTS
    ]
    arg = LaunchConfiguration
    params = [arg("params_file"), {p: arg(a) for a, p in NODE_PARAMETERS.items()},
              *([extra_parameters] if extra_parameters else [])]
    # the plain node, or with lifecycle:=true the managed one (same name, topics, parameters)
    nodes = [Node(
        package="vvhand",
        executable=executable,
        name="hand_pose_node",
        namespace=arg("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=params,
        remappings=[("depth/image", arg("depth_topic")), ("depth/camera_info", arg("info_topic"))],
        condition=condition(arg("lifecycle")),
    ) for executable, condition in (("hand_pose_node", UnlessCondition),
                                    ("hand_pose_lifecycle_node", IfCondition))]
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="rviz2",
        arguments=["-d", str(config_file("vvhand.rviz")), "-f", arg("fixed_frame")],
        condition=IfCondition(arg("rviz")),
    )
    return LaunchDescription([*actions, *nodes, rviz, *(extra_actions or [])])
