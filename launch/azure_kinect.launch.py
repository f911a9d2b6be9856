"""vvhand next to a Microsoft Azure Kinect (Azure_Kinect_ROS_Driver, ROS 2 branch).

Driver defaults: depth/image_raw with depth/camera_info (relative, so /depth/... without a
namespace); encoding from the driver's depth_unit parameter, 16UC1 millimetres by default
(32FC1 metres is also accepted by the node); default (reliable) QoS.
"""

from vvhand_ros.launch_description import generate


def generate_launch_description():
    """Azure Kinect topic names and QoS."""
    return generate({
        "depth_topic": "/depth/image_raw",
        "info_topic": "/depth/camera_info",
        "qos": "reliable",
    })
