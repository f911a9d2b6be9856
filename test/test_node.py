"""hand_pose_node over real DDS: outputs, runtime parameters, bad input, compressedDepth
input, camera_info paired by stamp, sensor-data QoS and its overrides (bursts and fuzz:
test_node_load.py).

The node runs as a child process (``python -m vvhand_ros.node``) with an untrained,
randomly initialised small checkpoint: these tests are about the node's behaviour, not
accuracy. This process publishes depth images and camera_info and listens to the outputs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ros_helpers import REPO, spin_until, stop

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
from node_harness import Harness, header, start_node  # noqa: E402
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.qos import ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from vvhand_ros.compressed_depth import depth_mm_to_compressed  # noqa: E402
from vvhand_ros.conversions import depth_mm_to_image, intrinsics_to_camera_info  # noqa: E402
from vvhand_ros.hand_msgs import duration_s  # noqa: E402


def test_outputs_keep_the_header_and_runtime_parameters(rclpy_context, ros_env, checkpoint,
                                                        hand_frame):
    proc = start_node(ros_env, checkpoint, "tf_prefix:=right_")
    h = Harness(rclpy_context)
    try:
        h.wait_ready(proc)
        # the standard QoS override parameters took effect
        for topic in ("/depth/image", "/depth/camera_info"):
            assert h.subscription_reliability(topic) == ReliabilityPolicy.RELIABLE
        h.send(hand_frame.depth_mm, header(1), hand_frame.intrinsics)
        assert spin_until(h.node, lambda: len(h.poses) >= 1 and len(h.tf) >= 1, 30.0), stop(proc)
        pose = h.poses[-1]
        assert pose.valid, "the synthetic hand must be found"
        assert pose.header.frame_id == "cam_optical"
        assert (pose.header.stamp.sec, pose.header.stamp.nanosec) == (101, 1)
        assert len(pose.joints) == 21 and pose.num_candidate_views == 25
        assert len(pose.selected_views) == 3 and math.isclose(sum(pose.view_weights), 1.0,
                                                              rel_tol=1e-4)
        assert len(pose.view_logits) == 25 and 0.0 <= pose.score <= 1.0
        assert duration_s(pose.processing_time) > 0.0
        z = np.array([p.z for p in pose.joints])
        assert np.all(np.abs(z - pose.center.z) <= pose.cube_size)  # joints near the hand
        assert spin_until(h.node, lambda: h.joints and h.markers, 5.0)
        assert h.joints[-1].header == pose.header and h.markers[-1].markers[0].header == pose.header
        tf = h.tf[-1].transforms
        # one palm frame per hand by default (per-joint frames are opt-in: publish_joint_tf)
        assert tf[0].header.frame_id == "cam_optical"
        assert tf[0].child_frame_id == "right_hand_0_palm"

        # runtime parameters: N and the selector change without restart; bad values refused
        client = h.node.create_client(SetParameters, "/hand_pose_node/set_parameters")
        assert client.wait_for_service(timeout_sec=10.0)

        def set_params(**kw):
            req = SetParameters.Request()
            for name, value in kw.items():
                if isinstance(value, bool):
                    pv = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
                elif isinstance(value, int):
                    pv = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
                else:
                    pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
                req.parameters.append(Parameter(name=name, value=pv))
            fut = client.call_async(req)
            assert spin_until(h.node, fut.done, 10.0)
            return [r.successful for r in fut.result().results]

        assert set_params(selector="nonsense") == [False]
        assert set_params(num_views=4) == [True]  # student: any N in 1..25
        assert set_params(selector="uniform") == [False]  # 4 is no uniform grid size
        assert set_params(num_views=9) == [True]
        assert set_params(publish_tf=False, publish_markers=False) == [True, True]
        n_tf, n_markers, n_pose = len(h.tf), len(h.markers), len(h.poses)
        h.send(hand_frame.depth_mm, header(2), hand_frame.intrinsics)
        assert spin_until(h.node, lambda: len(h.poses) > n_pose, 30.0), stop(proc)
        assert len(h.poses[-1].selected_views) == 9
        h.spin(0.5)
        assert len(h.tf) == n_tf and len(h.markers) == n_markers
        assert set_params(selector="uniform", num_views=25) == [True, True]
        h.send(hand_frame.depth_mm, header(3), hand_frame.intrinsics)
        assert spin_until(h.node, lambda: len(h.poses) > n_pose + 1, 30.0), stop(proc)
        assert sorted(h.poses[-1].selected_views) == list(range(25))
        # the mirror pass at run time: both passes' views (the image's, then the mirror's)
        assert set_params(mirror=True, num_views=3, selector="student") == [True] * 3
        h.send(hand_frame.depth_mm, header(4), hand_frame.intrinsics)
        assert spin_until(h.node, lambda: len(h.poses) > n_pose + 2, 30.0), stop(proc)
        assert h.poses[-1].valid and len(h.poses[-1].selected_views) == 6
        assert math.isclose(sum(h.poses[-1].view_weights), 1.0, rel_tol=1e-4)
        assert proc.poll() is None
    finally:
        out = stop(proc)
        h.node.destroy_node()
    assert "parameters changed" in out
    assert "networks run in onnxruntime" in out  # backend: auto on the CPU


def test_bad_model_path_fails_startup_with_one_message(ros_env, tmp_path):
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(b"PK\x03\x04 not really a checkpoint")
    for path in (bad, tmp_path / "missing.pt"):
        proc = start_node(ros_env, path)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 1, out
        assert str(path) in out and "cannot start" in out
        assert "Traceback" not in out


def _bad_inputs(frame):
    """(description, camera_info or None, image) cases the node must survive and report.

    Each camera_info carries its image's stamp, as drivers publish them.
    """
    intr = frame.intrinsics

    def info(i, intrinsics=intr):
        return intrinsics_to_camera_info(intrinsics, header(i))

    rgb = depth_mm_to_image(frame.depth_mm, header(2))
    rgb.encoding = "rgb8"
    nan = np.full(frame.depth_mm.shape, np.nan, np.float32)
    nan_img = Image(header=header(3), height=nan.shape[0], width=nan.shape[1], encoding="32FC1",
                    step=nan.shape[1] * 4, data=nan.tobytes())
    zero = depth_mm_to_image(np.zeros_like(frame.depth_mm), header(4))
    far = depth_mm_to_image(np.where(frame.depth_mm > 0, 5000.0, 0.0), header(6))
    short = depth_mm_to_image(frame.depth_mm, header(8))
    short.data = bytes(short.data)[:100]
    return [
        ("no camera_info yet", None, depth_mm_to_image(frame.depth_mm, header(1))),
        ("wrong encoding", info(2), rgb),
        ("NaN-filled 32FC1", info(3), nan_img),
        ("all-zero frame", info(4), zero),
        ("info size disagrees", info(5, intr.scaled(0.5, 0.5)),
         depth_mm_to_image(frame.depth_mm, header(5))),
        ("no hand in range", info(6), far),
        ("K of zeros", CameraInfo(header=header(7), width=intr.width, height=intr.height),
         depth_mm_to_image(frame.depth_mm, header(7))),
        ("truncated data", info(8), short),
    ]


def test_bad_input_is_reported_and_the_node_keeps_serving(rclpy_context, ros_env, checkpoint,
                                                          hand_frame):
    proc = start_node(ros_env, checkpoint)
    h = Harness(rclpy_context)
    try:
        h.wait_ready(proc)

        def count(*keys):
            status = h.latest_status()
            return sum(status.get(k, 0) for k in keys)

        done = 0
        for name, info, img in _bad_inputs(hand_frame):
            # one case at a time (the worker keeps only the newest frame): wait until the
            # node has dealt with it, or for the frame without camera_info, received it
            if info is None:
                keys, target = ("frames_in",), 1
            else:
                h.pub_info.publish(info)
                done += 1
                keys, target = ("processed", "rejected"), done
            h.pub_img.publish(img)
            assert spin_until(h.node, lambda k=keys, t=target: count(*k) >= t, 30.0), name
            assert proc.poll() is None, stop(proc)
        h.spin(1.0)
        status = h.latest_status()
        assert status["rejected"] >= 4 and status["no_hand"] >= 3, status
        # the frame without camera_info waited, then was dropped once newer ones came
        assert status["unpaired"] == 1 and status["unpaired.no_matching_info"] == 1, status
        assert status["failed"] == 0, status
        invalid = [p for p in h.poses if not p.valid]
        assert len(invalid) >= 3 and all(len(p.joints) == 0 for p in invalid)
        # and a valid frame still gets through
        h.send(hand_frame.depth_mm, header(9), hand_frame.intrinsics)
        assert spin_until(h.node, lambda: any(p.valid for p in h.poses), 30.0), stop(proc)
    finally:
        out = stop(proc)
        h.node.destroy_node()
    for fragment in ("no camera_info received yet", "unsupported depth encoding 'rgb8'",
                     "describes", "focal length", "no hand", "expected step*height",
                     "no camera_info with the same stamp"):
        assert fragment in out, (fragment, out)


def test_compressed_depth_paired_by_stamp_with_sensor_data_qos(rclpy_context, ros_env,
                                                               checkpoint, hand_frame):
    """compressedDepth (png and rvl) on depth/image/compressedDepth, default QoS.

    camera_info is published after its image (pairing is by stamp, not arrival); a frame
    whose camera_info never comes is dropped with a reason; bad headers and truncated
    payloads are rejected with one line each and the node keeps serving.
    """
    proc = start_node(ros_env, checkpoint, "depth_transport:=compressedDepth", qos_overrides=[])
    h = Harness(rclpy_context)
    intr = hand_frame.intrinsics

    def compressed(hdr, encoding="16UC1", codec="png", cut=None, header_bytes=None):
        fmt, data = depth_mm_to_compressed(hand_frame.depth_mm, encoding, codec)
        data = (header_bytes or data[:12]) + data[12:cut]
        return CompressedImage(header=hdr, format=fmt, data=data)

    def answered(i):
        return any(p.header.stamp == header(i).stamp for p in h.poses)

    try:
        h.wait_ready(proc, pub=h.pub_comp)
        # REP-2003 default: sensor data (best effort) on both subscriptions
        for topic in ("/depth/image/compressedDepth", "/depth/camera_info"):
            assert h.subscription_reliability(topic) == ReliabilityPolicy.BEST_EFFORT
        for i, (encoding, codec) in enumerate([("16UC1", "png"), ("32FC1", "rvl")], start=1):
            h.pub_comp.publish(compressed(header(i), encoding, codec))
            h.spin(0.2)  # the image waits for its camera_info
            h.pub_info.publish(intrinsics_to_camera_info(intr, header(i)))
            assert spin_until(h.node, lambda i=i: answered(i), 30.0), stop(proc)
        assert all(p.valid for p in h.poses[:2])
        # a frame whose camera_info does not come, then bad payloads with their camera_info
        h.pub_comp.publish(compressed(header(3)))
        bad = [compressed(header(4), cut=200), compressed(header(5), codec="rvl", cut=300),
               compressed(header(6), header_bytes=b"" + bytes(11))]
        for k, msg in enumerate(bad, start=1):  # one at a time: the worker keeps the newest
            h.pub_info.publish(intrinsics_to_camera_info(intr, msg.header))
            h.pub_comp.publish(msg)
            assert spin_until(h.node, lambda k=k: h.latest_status().get("rejected", 0) >= k,
                              15.0), (k, h.latest_status())
        h.pub_info.publish(intrinsics_to_camera_info(intr, header(7)))
        h.pub_comp.publish(compressed(header(7), codec="rvl"))
        assert spin_until(h.node, lambda: answered(7), 30.0), stop(proc)
        status = h.latest_status()
        assert proc.poll() is None
    finally:
        out = stop(proc)
        h.node.destroy_node()
    assert status["unpaired"] == 1 and status["failed"] == 0, status
    assert not any(answered(i) for i in (3, 4, 5, 6))
    assert "/depth/image/compressedDepth" in out
    for fragment in ("no camera_info with the same stamp", "compressedDepth PNG cannot be "
                     "decoded", "RVL stream ends", "only 0 (INV_DEPTH) is defined"):
        assert fragment in out, (fragment, out)
    assert "Traceback" not in out


def test_yaml_and_docs_cover_every_declared_parameter(rclpy_context, checkpoint):
    """config/vvhand.yaml and docs/ros.md list exactly the parameters the node declares (the
    retired millimetre names, declared unset to be refused, only in the docs' migration)."""
    import yaml

    from vvhand_ros.node import HandPoseNode
    from vvhand_ros.param_units import RETIRED

    node = HandPoseNode(context=rclpy_context, parameter_overrides=[
        rclpy.parameter.Parameter("model_path", value=str(checkpoint)),
        rclpy.parameter.Parameter("device", value="cpu")])
    try:
        builtin = {"use_sim_time", "start_type_description_service"}
        declared = {p for p in node._parameters  # rclpy declares qos_overrides.* itself
                    if p not in builtin and not p.startswith("qos_overrides.")}
        assert any(p.startswith("qos_overrides./depth/image.") for p in node._parameters)
        for name in declared:
            assert node.describe_parameter(name).description, name
        for old in RETIRED:
            assert node.get_parameter(old).value is None, old
        declared -= set(RETIRED)
    finally:
        node.destroy_node()
    cfg = yaml.safe_load((REPO / "config" / "vvhand.yaml").read_text())
    assert set(cfg["/**"]["ros__parameters"]) == declared
    docs = (REPO / "docs" / "ros.md").read_text()
    assert all(f"`{name}`" in docs for name in declared)


def test_track_jump_reaches_the_pipeline(rclpy_context, checkpoint):
    """track_jump_m is one threshold: the node's output tracks and the pipeline's (the fit's
    sequence; both in mm), at start and when changed at run time."""
    from vvhand_ros.node import HandPoseNode

    node = HandPoseNode(context=rclpy_context, parameter_overrides=[
        rclpy.parameter.Parameter("model_path", value=str(checkpoint)),
        rclpy.parameter.Parameter("device", value="cpu"),
        rclpy.parameter.Parameter("track_jump_m", value=0.12)])
    try:
        assert node.pipeline.config.track_jump_mm == 120.0
        result = node.set_parameters([rclpy.parameter.Parameter("track_jump_m", value=0.05)])
        assert result[0].successful, result[0].reason
        assert node.pipeline.config.track_jump_mm == 50.0
        assert node._frame_out.settings.smoothing.jump_mm == 50.0
    finally:
        node.destroy_node()
