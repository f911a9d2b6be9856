"""vvhand hand_pose_node for any depth camera.

ros2 launch vvhand vvhand.launch.py depth_topic:=/my/depth info_topic:=/my/depth/camera_info
Arguments: see `ros2 launch vvhand vvhand.launch.py --show-args` (vvhand_ros.launch_description).
"""

from vvhand_ros.launch_description import generate


def generate_launch_description():
    """Generic defaults: /camera/depth/image_raw, raw transport, camera model by topic name."""
    return generate()
