"""vvhand next to an Orbbec Gemini 330 series camera (OrbbecSDK_ROS2 v2), depth registered.

Camera: `ros2 launch orbbec_camera gemini_330_series.launch.py depth_registration:=true`.
Depth: /camera/depth/image_raw (16UC1 mm) aligned to the colour camera, with
/camera/depth/camera_info (the colour camera's K and P, no distortion), frame
camera_color_optical_frame. Without depth_registration pass
fixed_frame:=camera_depth_optical_frame.
"""

from vvhand_ros.launch_description import generate


def generate_launch_description():
    """Orbbec topic names, camera model and frame."""
    return generate({
        "depth_topic": "/camera/depth/image_raw",
        "info_topic": "/camera/depth/camera_info",
        "camera_model": "rectified",
        "fixed_frame": "camera_color_optical_frame",
    })
