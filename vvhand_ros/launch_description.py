"""The one launch description behind every vvhand launch file.

``launch/vvhand.launch.py`` uses the generic defaults; each camera launch file passes its
driver's default topic names and depth QoS. launch and launch_ros are imported only when
a description is generated, so this module imports without them.
"""

from __future__ import annotations

from pathlib import Path

# (argument, default, description); the node parameter each one sets is in NODE_PARAMETERS.
LAUNCH_ARGUMENTS: tuple[tuple[str, str, str], ...] = (
    ("namespace", "", "namespace of the node"),
    ("depth_topic", "/camera/depth/image_raw", "depth image (16UC1/mono16 mm or 32FC1 m)"),
    ("info_topic", "/camera/depth/camera_info", "camera_info of the depth image"),
    ("model", "", "checkpoint path; empty = the shipped default model"),
    ("device", "auto", "auto | cpu | cuda | cuda:N"),
    ("num_views", "3", "N views rendered and fused"),
    ("selector", "student", "student | teacher | uniform"),
    ("qos", "sensor_data", "depth subscription QoS: sensor_data | reliable | system_default"),
    ("publish_tf", "true", "one TF frame per joint"),
    ("tf_prefix", "", "prefix of the joint TF frames"),
    ("publish_markers", "true", "RViz skeleton markers on ~/markers"),
)

# launch argument -> node parameter
NODE_PARAMETERS: dict[str, str] = {
    "model": "model_path",
    "device": "device",
    "num_views": "num_views",
    "selector": "selector",
    "qos": "depth_qos",
    "publish_tf": "publish_tf",
    "tf_prefix": "tf_prefix",
    "publish_markers": "publish_markers",
}


def default_params_file() -> Path:
    """config/vvhand.yaml, found beside launch/ in the source tree and in share/vvhand."""
    here = Path(__file__).resolve().parent
    for base in (here.parent, here.parent.parent / "share" / "vvhand"):
        candidate = base / "config" / "vvhand.yaml"
        if candidate.is_file():
            return candidate
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("vvhand")) / "config" / "vvhand.yaml"
    except Exception:  # noqa: BLE001 - no ament index: fall back to the source layout
        return here.parent / "config" / "vvhand.yaml"


def generate(overrides: dict[str, str] | None = None, extra_actions: list | None = None):
    """Build the LaunchDescription: launch arguments, then hand_pose_node, then extras.

    ``overrides`` replaces argument defaults (a camera's topics and QoS); the node gets its
    parameters from config/vvhand.yaml and the arguments, and its topics remapped;
    ``extra_actions`` are appended.
    """
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    overrides = dict(overrides or {})
    unknown = set(overrides) - {name for name, _, _ in LAUNCH_ARGUMENTS}
    if unknown:
        raise ValueError(f"unknown launch arguments {sorted(unknown)}")
    actions = [
        DeclareLaunchArgument(name, default_value=overrides.get(name, default), description=text)
        for name, default, text in LAUNCH_ARGUMENTS
    ]
    arg = LaunchConfiguration
    params = [str(default_params_file()), {p: arg(a) for a, p in NODE_PARAMETERS.items()}]
    node = Node(
        package="vvhand",
        executable="hand_pose_node",
        name="hand_pose_node",
        namespace=arg("namespace"),
        output="screen",
        emulate_tty=True,
        parameters=params,
        remappings=[("depth/image", arg("depth_topic")), ("depth/camera_info", arg("info_topic"))],
    )
    return LaunchDescription([*actions, node, *(extra_actions or [])])
