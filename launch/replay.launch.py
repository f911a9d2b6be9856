"""Replay a rosbag2 bag into hand_pose_node and score its output.

ros2 launch vvhand replay.launch.py bag:=/path/to/bag [rate:=1.0] [model:=...]
Starts hand_pose_node on the bag's topics (defaults: the topics `vvhand synth-bag` writes;
depth_transport:=compressedDepth for a bag that holds <depth_topic>/compressedDepth)
and `vvhand replay BAG --mode live --external-node`, which publishes the bag, records the
node's HandPose answers, and writes replay.json and replay.png next to the bag.
The subscriptions are reliable (depth_reliability), so every frame of the bag is scored,
and smoothing is off (the pipeline's own joints are scored); like every launch-file value
these rank below a params_file and arguments given on the command line. The replay
process scores with camera_model when that argument is given, else auto.
"""

from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction

from vvhand_ros.launch_description import generate

# the topics `vvhand synth-bag` writes (vvhand_ros.bag's defaults, checked by test_launch.py;
# not imported: `ros2 launch` runs under the system Python, which may not see rosbags)
DEFAULT_DEPTH_TOPIC = "/camera/depth/image_raw"
DEFAULT_INFO_TOPIC = "/camera/depth/camera_info"


def replay_process(context):
    """`vvhand replay` against the launched node, with the launch's topics and namespace."""
    values = context.launch_configurations
    return [ExecuteProcess(
        cmd=["vvhand", "replay", values["bag"], "--mode", "live", "--external-node",
             "--rate", values["rate"], "--namespace", values["namespace"],
             "--depth-topic", values["depth_topic"], "--info-topic", values["info_topic"],
             "--camera-model", values["camera_model"] or "auto"],
        output="screen",
    )]


def generate_launch_description():
    """Node with reliable subscriptions on the bag's topics, plus the replay process."""
    return generate(
        {"depth_topic": DEFAULT_DEPTH_TOPIC, "info_topic": DEFAULT_INFO_TOPIC,
         "publish_tf": "false", "depth_reliability": "reliable"},
        extra_parameters={"smoothing": False},
        extra_actions=[
            DeclareLaunchArgument("bag", description="rosbag2 directory to replay"),
            DeclareLaunchArgument("rate", default_value="1.0",
                                  description="1.0 = original timing, 0 = as fast as answered"),
            OpaqueFunction(function=replay_process),
        ],
    )
