"""vvhand_ros: the ROS 2 side of vvhand (node, message conversions, rosbag replay).

Converts between ROS messages (metres) and vvhand_core (millimetres) at its boundary.
"""
