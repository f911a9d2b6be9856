"""The node's input boundary (vvhand_ros.conversions): every supported case and rejection."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")
from builtin_interfaces.msg import Time  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from vvhand_core.camera import Intrinsics  # noqa: E402
from vvhand_ros.conversions import (  # noqa: E402
    ConversionError,
    camera_info_to_intrinsics,
    check_image_matches_info,
    depth_mm_to_image,
    image_to_depth_mm,
    intrinsics_to_camera_info,
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
