"""Replay a rosbag2 bag into hand_pose_node and score its output.

ros2 launch vvhand replay.launch.py bag:=/path/to/bag [rate:=1.0] [model:=...]
Starts hand_pose_node on the bag's topics (defaults: the topics `vvhand synth-bag` writes;
depth_transport:=compressedDepth for a bag that holds <depth_topic>/compressedDepth)
and `vvhand replay BAG --mode live --external-node`, which publishes the bag, records the
node's HandPose answers, and writes replay.json and replay.png next to the bag.
"""

from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration

from vvhand_ros.bag import DEFAULT_DEPTH_TOPIC, DEFAULT_INFO_TOPIC
from vvhand_ros.launch_description import generate


def generate_launch_description():
    """Node with reliable subscriptions on the bag's topics, plus the replay process."""
    depth, info = LaunchConfiguration("depth_topic"), LaunchConfiguration("info_topic")
    # the standard QoS overrides: every frame of the bag is scored, none lost on the way
    reliable = {("qos_overrides.", topic, suffix + ".subscription.reliability"): "reliable"
                for topic, suffix in ((depth, ""), (depth, "/compressedDepth"), (info, ""))}
    replay = ExecuteProcess(
        cmd=["vvhand", "replay", LaunchConfiguration("bag"), "--mode", "live",
             "--external-node", "--rate", LaunchConfiguration("rate"),
             "--depth-topic", LaunchConfiguration("depth_topic"),
             "--info-topic", LaunchConfiguration("info_topic"),
             "--camera-model", LaunchConfiguration("camera_model")],
        output="screen",
    )
    return generate(
        {"depth_topic": DEFAULT_DEPTH_TOPIC, "info_topic": DEFAULT_INFO_TOPIC,
         "publish_tf": "false"},
        extra_parameters={**reliable, "smoothing": False},  # score unfiltered joints
        extra_actions=[
            DeclareLaunchArgument("bag", description="rosbag2 directory to replay"),
            DeclareLaunchArgument("rate", default_value="1.0",
                                  description="1.0 = original timing, 0 = as fast as answered"),
            replay,
        ],
    )
