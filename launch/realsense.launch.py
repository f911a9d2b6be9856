"""vvhand next to an Intel RealSense (realsense2_camera ROS 2 wrapper, 4.5x).

Driver defaults: camera_namespace "camera" and camera_name "camera", so the depth stream is
/camera/camera/depth/image_rect_raw (16UC1, millimetres with the default depth scale) with
/camera/camera/depth/camera_info; published with the wrapper's default depth_qos
SYSTEM_DEFAULT (reliable). Start the camera with
`ros2 launch realsense2_camera rs_launch.py` first.
"""

from vvhand_ros.launch_description import generate


def generate_launch_description():
    """RealSense topic names and QoS."""
    return generate({
        "depth_topic": "/camera/camera/depth/image_rect_raw",
        "info_topic": "/camera/camera/depth/camera_info",
        "qos": "system_default",
    })
