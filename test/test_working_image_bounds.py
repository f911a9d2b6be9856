"""Working images are bounded by the input image's own size, whatever the intrinsics say;
the ROS input path refuses intrinsics no depth camera has (issue 25, item 3)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from vvhand_core.camera import Intrinsics, project_np
from vvhand_core.detector.ops import MAX_UPSCALE, canonical_camera, canonical_depth
from vvhand_ros.camera_model import FOV_RANGE_DEG, camera_model, field_of_view_deg
from vvhand_ros.depth_encoding import ConversionError
from vvhand_ros.node_support import reason_label

VGA = dict(cx=319.5, cy=239.5, width=640, height=480)


@pytest.mark.parametrize("f", [1.0, 5.0, 10.0, 59.0])
def test_short_focal_lengths_do_not_blow_up_the_detector_image(f):
    """fx = 1 px at 640x480 asked for a 76800x57600 canonical image (33 GiB of indices)."""
    intr = Intrinsics(fx=f, fy=f, **VGA)
    cam = canonical_camera(intr, 120.0)
    assert cam.width <= MAX_UPSCALE * 640 and cam.height <= MAX_UPSCALE * 480
    assert cam.fx == pytest.approx(MAX_UPSCALE * f) and cam.fx == pytest.approx(cam.fy)


def test_the_bound_keeps_the_rays_and_leaves_real_cameras_alone():
    assert canonical_camera(Intrinsics(fx=475.0, fy=470.0, **VGA), 120.0).fx == 120.0
    # a low-resolution wide camera: resampled up to the bound, no further
    small = Intrinsics(fx=70.0, fy=70.0, cx=39.5, cy=29.5, width=80, height=60)
    cam = canonical_camera(small, 120.0)
    assert cam.fy == pytest.approx(min(120.0, 70.0 * MAX_UPSCALE))
    assert cam.width <= MAX_UPSCALE * 80 and cam.height <= MAX_UPSCALE * 60
    # bounded: a point still lands on the ray of its original pixel
    intr = Intrinsics(fx=4.0, fy=3.0, **VGA)
    depth = np.zeros((480, 640), np.float32)
    depth[200:260, 300:380] = 600.0
    canon, cam = canonical_depth(depth, intr, 120.0)
    # the longer scale (40x rows) is bounded, the other shrunk alike: square pixels
    assert canon.shape == (cam.height, cam.width) == (round(480 * MAX_UPSCALE),
                                                      round(640 * 0.75 * MAX_UPSCALE))
    assert cam.fx == pytest.approx(cam.fy) == pytest.approx(3.0 * MAX_UPSCALE)
    p = np.array([[1.0, -0.5, 600.0]])
    uv_c, uv = project_np(p, cam), project_np(p, intr)
    np.testing.assert_allclose((uv_c[:, 0] + 0.5) * intr.fx / cam.fx - 0.5, uv[:, 0])


def _info(fx, fy, w=640, h=480):
    return SimpleNamespace(width=w, height=h, distortion_model="plumb_bob", d=[0.0] * 5,
                           k=[fx, 0, w / 2, 0, fy, h / 2, 0, 0, 1],
                           p=[fx, 0, w / 2, 0, 0, fy, h / 2, 0, 0, 0, 1, 0])


@pytest.mark.parametrize("fx, fy", [(1.0, 1.0), (5.0, 5.0), (10.0, 10.0), (1e5, 1e5),
                                    (385.0, 1e4)])
def test_intrinsics_no_depth_camera_has_are_refused_with_one_reason(fx, fy):
    with pytest.raises(ConversionError, match="field of view") as err:
        camera_model(_info(fx, fy), rectified=True)
    assert reason_label(str(err.value)) == (
        "camera_info P gives a field of view no depth camera has")


@pytest.mark.parametrize("name, fx, fy, w, h", [
    ("RealSense D435 848x480", 421.0, 421.0, 848, 480),
    ("Azure Kinect WFOV 1024x1024", 504.0, 504.0, 1024, 1024),
    ("Azure Kinect WFOV binned 512x512", 252.0, 252.0, 512, 512),
    ("Orbbec Femto Mega 320x288", 252.0, 252.0, 320, 288),
    ("narrow structured light 1920x1200", 2700.0, 2700.0, 1920, 1200),
])
def test_real_depth_cameras_are_accepted(name, fx, fy, w, h):
    model = camera_model(_info(fx, fy, w, h), rectified=True)
    lo, hi = FOV_RANGE_DEG
    assert lo <= field_of_view_deg(fx, w) <= hi and model.intrinsics.fx == fx, name
