"""The node's boundary (vvhand_ros.conversions): every supported case and every rejection."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")
from builtin_interfaces.msg import Time  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from vvhand_core.camera import Intrinsics  # noqa: E402
from vvhand_core.skeletons import HANDS2019_21, NYU_14  # noqa: E402
from vvhand_ros.conversions import (  # noqa: E402
    ConversionError,
    camera_info_to_intrinsics,
    check_image_matches_info,
    depth_mm_to_image,
    hand_pose_msg,
    image_to_depth_mm,
    intrinsics_to_camera_info,
    joint_transforms,
    marker_array_msg,
    pose_array_msg,
)

HEADER = Header(stamp=Time(sec=5, nanosec=6), frame_id="cam_optical")


def _image(array: np.ndarray, encoding: str, big_endian: bool = False, pad: int = 0) -> Image:
    a = array.astype(array.dtype.newbyteorder(">" if big_endian else "<"))
    h, w = a.shape
    rows = a.tobytes()
    row_bytes = w * a.itemsize
    data = b"".join(
        rows[i * row_bytes : (i + 1) * row_bytes] + b"\xee" * pad for i in range(h)
    )
    return Image(header=HEADER, height=h, width=w, encoding=encoding,
                 is_bigendian=int(big_endian), step=row_bytes + pad, data=data)


RNG = np.random.default_rng(0)
DEPTH_U16 = RNG.integers(0, 3000, size=(4, 5)).astype(np.uint16)


@pytest.mark.parametrize("encoding", ["16UC1", "mono16"])
@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("pad", [0, 6])
def test_uint16_depth_is_millimetres(encoding, big_endian, pad):
    out = image_to_depth_mm(_image(DEPTH_U16, encoding, big_endian, pad))
    assert out.dtype == np.float32 and out.shape == (4, 5)
    np.testing.assert_array_equal(out, DEPTH_U16.astype(np.float32))


@pytest.mark.parametrize("big_endian", [False, True])
def test_float_depth_metres_to_mm_with_invalid_values(big_endian):
    metres = np.array([[0.5, np.nan, 0.0], [1.25, -1.0, np.inf]], dtype=np.float32)
    out = image_to_depth_mm(_image(metres, "32FC1", big_endian, pad=4))
    expected = np.array([[500.0, 0.0, 0.0], [1250.0, 0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_round_trip_through_image_encoders():
    depth = RNG.integers(1, 2000, size=(6, 7)).astype(np.float32)
    depth[0, 0] = 0.0
    for enc in ("16UC1", "32FC1"):
        back = image_to_depth_mm(depth_mm_to_image(depth, HEADER, enc))
        np.testing.assert_allclose(back, depth, rtol=1e-6)


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda m: setattr(m, "encoding", "rgb8"), "unsupported depth encoding"),
        (lambda m: setattr(m, "encoding", "8UC1"), "unsupported depth encoding"),
        (lambda m: (setattr(m, "height", 0)), "empty depth image"),
        (lambda m: (setattr(m, "width", 0)), "empty depth image"),
        (lambda m: setattr(m, "data", bytes(m.data)[:-1]), "expected step"),
        (lambda m: setattr(m, "step", 2), "shorter than one row"),
    ],
)
def test_malformed_images_raise_conversion_error(mutate, fragment):
    msg = _image(DEPTH_U16, "16UC1")
    mutate(msg)
    with pytest.raises(ConversionError, match=fragment):
        image_to_depth_mm(msg)


def test_conversion_error_is_a_value_error():
    assert issubclass(ConversionError, ValueError)


def _info(k, w=640, h=480) -> CameraInfo:
    return CameraInfo(header=HEADER, width=w, height=h, k=k)


def test_camera_info_to_intrinsics():
    intr = camera_info_to_intrinsics(
        _info([588.03, 0, 320.5, 0, 587.07, 240.25, 0, 0, 1], 640, 480)
    )
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == pytest.approx((588.03, 587.07, 320.5, 240.25))
    assert (intr.width, intr.height) == (640, 480)
    info = intrinsics_to_camera_info(intr, HEADER)
    assert camera_info_to_intrinsics(info) == intr


@pytest.mark.parametrize(
    "k, w, h, fragment",
    [
        ([0.0] * 9, 640, 480, "focal length"),
        ([500, 0, 320, 0, 0, 240, 0, 0, 1], 640, 480, "focal length"),
        ([float("nan"), 0, 320, 0, 500, 240, 0, 0, 1], 640, 480, "focal length"),
        ([500, 0, 320, 0, 500, 240, 0, 0, 1], 0, 480, "zero image size"),
        ([500, 0, 320, 0, 500, 240, 0, 0, 1], 640, 0, "zero image size"),
        # implausible values overflow downstream (numpy warnings, then "no hand")
        ([1e-30, 0, 320, 0, 500, 240, 0, 0, 1], 640, 480, "focal length"),
        ([500, 0, 320, 0, 1e30, 240, 0, 0, 1], 640, 480, "focal length"),
        ([500, 0, 1e12, 0, 500, 240, 0, 0, 1], 640, 480, "principal point"),
        ([500, 0, 320, 0, 500, -1e12, 0, 0, 1], 640, 480, "principal point"),
    ],
)
def test_bad_camera_info_rejected(k, w, h, fragment):
    with pytest.raises(ConversionError, match=fragment):
        camera_info_to_intrinsics(_info(k, w, h))


def test_image_info_size_mismatch():
    intr = Intrinsics(fx=500.0, fy=500.0, cx=320.0, cy=240.0, width=640, height=480)
    check_image_matches_info((480, 640), intr)
    with pytest.raises(ConversionError, match="640x480"):
        check_image_matches_info((240, 320), intr)


JOINTS_MM = np.arange(21 * 3, dtype=np.float32).reshape(21, 3) * 3.0 + 250.0


def test_hand_pose_fields_in_metres():
    msg = hand_pose_msg(HEADER, HANDS2019_21, JOINTS_MM, np.array([10.0, -20.0, 450.0]), 250.0,
                        25, [12, 3], [0.6, 0.4], np.zeros(25), 0.5, True, 0.02)
    assert msg.header == HEADER
    assert msg.joint_names == list(HANDS2019_21.joint_names)
    got = np.array([[p.x, p.y, p.z] for p in msg.joints])
    np.testing.assert_allclose(got, JOINTS_MM / 1000.0, rtol=1e-6)
    assert (msg.center.x, msg.center.y, msg.center.z) == pytest.approx((0.01, -0.02, 0.45))
    assert msg.cube_size == pytest.approx(0.25)
    assert list(msg.selected_views) == [12, 3] and msg.num_candidate_views == 25
    invalid = hand_pose_msg(HEADER, HANDS2019_21, JOINTS_MM, np.zeros(3), 250.0, 25, [], [],
                            np.zeros(25), 0.0, False, 0.01)
    assert invalid.valid is False and len(invalid.joints) == 0
    with pytest.raises(ValueError):
        hand_pose_msg(HEADER, NYU_14, JOINTS_MM, np.zeros(3), 250.0, 25, [], [], [], 0.0, True, 0)


def test_pose_array():
    msg = pose_array_msg(HEADER, JOINTS_MM)
    assert msg.header == HEADER and len(msg.poses) == 21
    p = msg.poses[4]
    assert (p.position.x, p.position.y, p.position.z) == pytest.approx(tuple(JOINTS_MM[4] / 1000))
    assert p.orientation.w == 1.0


def test_markers_skeleton_lines_and_spheres():
    arr = marker_array_msg(HEADER, HANDS2019_21, JOINTS_MM)
    lines, spheres = arr.markers
    assert lines.type == Marker.LINE_LIST and spheres.type == Marker.SPHERE_LIST
    assert lines.header == HEADER and spheres.header == HEADER
    bones = HANDS2019_21.bones()
    assert len(lines.points) == 2 * len(bones) == 40
    parent, child = bones[5]
    assert lines.points[10].x == pytest.approx(JOINTS_MM[parent, 0] / 1000)
    assert lines.points[11].z == pytest.approx(JOINTS_MM[child, 2] / 1000)
    assert len(spheres.points) == 21 and len(spheres.colors) == 21
    assert spheres.colors[1].r == pytest.approx(HANDS2019_21.colors[1][0])
    assert lines.id != spheres.id


def test_transforms_per_joint():
    tfs = joint_transforms(HEADER, HANDS2019_21, JOINTS_MM, tf_prefix="r/")
    assert [t.child_frame_id for t in tfs] == [f"r/hand_{n}" for n in HANDS2019_21.joint_names]
    assert all(t.header == HEADER for t in tfs)
    t = tfs[7].transform.translation
    assert (t.x, t.y, t.z) == pytest.approx(tuple(JOINTS_MM[7] / 1000))
