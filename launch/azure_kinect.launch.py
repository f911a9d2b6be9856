"""vvhand next to a Microsoft Azure Kinect (Azure_Kinect_ROS_Driver, ROS 2 branch).

Camera: `ros2 launch azure_kinect_ros_driver driver.launch.py`. Depth: /depth/image_raw
(16UC1 mm; 32FC1 m with depth_unit:=32FC1) with /depth/camera_info, frame
depth_camera_link. That image is raw, distorted (rational_polynomial, 8 coefficients), so
the node takes K and D and undistorts it (camera_model raw).
"""

from vvhand_ros.launch_description import generate


def generate_launch_description():
    """Azure Kinect topic names, camera model and frame."""
    return generate({
        "depth_topic": "/depth/image_raw",
        "info_topic": "/depth/camera_info",
        "camera_model": "raw",
        "fixed_frame": "depth_camera_link",
    })
