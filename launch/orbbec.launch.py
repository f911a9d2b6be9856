"""vvhand next to an Orbbec camera (OrbbecSDK_ROS2: Femto, Astra, Gemini).

Driver defaults: camera_name "camera", /camera/depth/image_raw (16UC1, millimetres) with
/camera/depth/camera_info, published with the driver's default (reliable) image QoS.
"""

from vvhand_ros.launch_description import generate


def generate_launch_description():
    """Orbbec topic names and QoS."""
    return generate({
        "depth_topic": "/camera/depth/image_raw",
        "info_topic": "/camera/depth/camera_info",
        "qos": "reliable",
    })
