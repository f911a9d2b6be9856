"""vvhand next to an Intel RealSense (realsense2_camera ROS 2 wrapper, 4.5x).

Camera: `ros2 launch realsense2_camera rs_launch.py` (camera_namespace and camera_name both
"camera"). Depth: /camera/camera/depth/image_rect_raw (16UC1 mm, rectified, so P is used)
with /camera/camera/depth/camera_info, frame camera_depth_optical_frame; compressedDepth on
/camera/camera/depth/image_rect_raw/compressedDepth (depth_transport:=compressedDepth).
"""

from vvhand_ros.launch_description import generate


def generate_launch_description():
    """RealSense topic names, camera model and frame."""
    return generate({
        "depth_topic": "/camera/camera/depth/image_rect_raw",
        "info_topic": "/camera/camera/depth/camera_info",
        "camera_model": "rectified",
        "fixed_frame": "camera_depth_optical_frame",
    })
