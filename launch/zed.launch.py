"""vvhand next to a Stereolabs ZED camera (zed_ros2_wrapper).

Driver defaults: camera_name "zed", node zed_node, so the depth map is
/zed/zed_node/depth/depth_registered (32FC1 in metres; 16UC1 millimetres when the wrapper's
openni_depth_mode is on) with /zed/zed_node/depth/camera_info; reliable QoS by default.
The ZED's depth is registered to the left camera, whose optical frame the outputs use.
"""

from vvhand_ros.launch_description import generate


def generate_launch_description():
    """ZED topic names and QoS."""
    return generate({
        "depth_topic": "/zed/zed_node/depth/depth_registered",
        "info_topic": "/zed/zed_node/depth/camera_info",
        "qos": "reliable",
    })
