"""vvhand next to a Stereolabs ZED camera (zed_ros2_wrapper 4.x / 5.x).

Camera: `ros2 launch zed_wrapper zed_camera.launch.py camera_model:=zed2i` (camera_name
defaults to "zed"). Depth: /zed/zed_node/depth/depth_registered (32FC1 m; 16UC1 mm with
openni_depth_mode), rectified and registered to the left camera, with
/zed/zed_node/depth/camera_info, frame zed_left_camera_frame_optical.
"""

from vvhand_ros.launch_description import generate


def generate_launch_description():
    """ZED topic names, camera model and frame."""
    return generate({
        "depth_topic": "/zed/zed_node/depth/depth_registered",
        "info_topic": "/zed/zed_node/depth/camera_info",
        "camera_model": "rectified",
        "fixed_frame": "zed_left_camera_frame_optical",
    })
