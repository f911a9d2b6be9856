"""Camera model from CameraInfo: P for rectified images, K and D (undistorted) for raw ones."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from vvhand_core.data.synthetic.generator import sample_sequence
from vvhand_ros.bag import SyntheticBagFrame, read_frames, write_bag
from vvhand_ros.camera_model import distort_normalised, resolve_rectified
from vvhand_ros.depth_encoding import ConversionError
from vvhand_ros.depth_input import DepthInput
from vvhand_ros.synth_bag import live_camera_config

# Azure-Kinect-like: rational_polynomial, 8 coefficients (k1 k2 p1 p2 k3 k4 k5 k6)
RATIONAL = [-0.12, 0.05, 0.001, -0.0005, 0.0, 0.05, 0.0, 0.0]


def info(w=64, h=48, k=(50.0, 50.0, 32.0, 24.0), p=None, model="plumb_bob", d=(0.0,) * 5):
    fx, fy, cx, cy = k
    pp = p or (fx, fy, cx, cy)
    return SimpleNamespace(width=w, height=h, distortion_model=model, d=list(d),
                           k=[fx, 0, cx, 0, fy, cy, 0, 0, 1],
                           p=[pp[0], 0, pp[2], 0, 0, pp[1], pp[3], 0, 0, 0, 1, 0])


def image(depth_mm):
    h, w = depth_mm.shape
    data = np.rint(depth_mm).astype("<u2")
    return SimpleNamespace(encoding="16UC1", height=h, width=w, step=2 * w, is_bigendian=0,
                           data=data.tobytes())


def test_auto_follows_the_topic_name():
    assert resolve_rectified("auto", "/camera/camera/depth/image_rect_raw")
    assert resolve_rectified("auto", "/camera/depth/image_rect")
    assert not resolve_rectified("auto", "/depth/image_raw")
    assert not resolve_rectified("auto", "/zed/zed_node/depth/depth_registered")
    assert resolve_rectified("rectified", "/depth/image_raw")
    assert not resolve_rectified("raw", "/x/image_rect")
    with pytest.raises(ValueError):
        resolve_rectified("pinhole", "/x")


def test_rectified_uses_p_and_raw_uses_k():
    cam = info(k=(50.0, 51.0, 32.0, 24.0), p=(45.0, 46.0, 31.0, 23.0))
    depth = np.full((48, 64), 800.0)
    _, k_rect = DepthInput("rectified").prepare(image(depth), cam)
    _, k_raw = DepthInput("raw").prepare(image(depth), cam)
    assert (k_rect.fx, k_rect.fy, k_rect.cx, k_rect.cy) == (45.0, 46.0, 31.0, 23.0)
    assert (k_raw.fx, k_raw.fy, k_raw.cx, k_raw.cy) == (50.0, 51.0, 32.0, 24.0)
    no_p = info()
    no_p.p = [0.0] * 12  # hand-made camera_info without P: K it is
    _, k = DepthInput("rectified").prepare(image(depth), no_p)
    assert k.fx == 50.0


def test_zero_distortion_leaves_the_depth_untouched():
    depth = np.random.default_rng(0).uniform(300, 900, (48, 64)).round()
    out, _ = DepthInput("raw").prepare(image(depth), info())
    np.testing.assert_array_equal(out, depth)


def test_unusable_distortion_is_a_conversion_error():
    depth = np.full((48, 64), 800.0)
    with pytest.raises(ConversionError, match="unsupported distortion model"):
        DepthInput("raw").prepare(image(depth), info(model="weird", d=(0.1,)))
    with pytest.raises(ConversionError, match="only the first 5"):
        DepthInput("raw").prepare(image(depth), info(d=(0.1, 0, 0, 0, 0, 0.3)))
    # rectified images ignore D whatever its model, and say so once
    inp = DepthInput("rectified")
    inp.prepare(image(depth), info(model="weird", d=(0.1,)))
    inp.prepare(image(depth), info(model="weird", d=(0.1,)))
    (note,) = inp.notes()
    assert "weird distortion" in note and "P is used" in note


BAD_PINHOLES = [  # (fx, fy, cx, cy): values that would only overflow downstream
    ((1e-30, 50.0, 32.0, 24.0), "focal length"),
    ((50.0, 1e30, 32.0, 24.0), "focal length"),
    ((50.0, 50.0, 1e12, 24.0), "principal point"),
    ((50.0, 50.0, 32.0, -1e12), "principal point"),
    ((1.0, 1.0, 32.0, 24.0), "field of view"),       # 176 deg: blows up working images
    ((50.0, 1e4, 32.0, 24.0), "field of view"),      # 0.3 deg vertically
]


@pytest.mark.parametrize("camera_model", ["rectified", "raw"])
@pytest.mark.parametrize("k, fragment", BAD_PINHOLES)
def test_implausible_intrinsics_are_rejected(camera_model, k, fragment):
    """P (rectified) and K (raw) alike; a good K does not rescue a bad P."""
    depth = image(np.full((48, 64), 800.0))
    with pytest.raises(ConversionError, match=fragment):
        DepthInput(camera_model).prepare(depth, info(k=k))
    if camera_model == "rectified":
        with pytest.raises(ConversionError, match=fragment):
            DepthInput(camera_model).prepare(depth, info(p=k))


def test_empty_frame_id_is_a_conversion_error():
    from vvhand_ros.depth_input import require_frame_id

    require_frame_id(SimpleNamespace(frame_id="cam"))
    with pytest.raises(ConversionError, match="frame_id"):
        require_frame_id(SimpleNamespace(frame_id=""))


def test_equidistant_matches_its_definition():
    x, y = np.array([0.3]), np.array([-0.2])
    d = np.array([0.1, -0.02, 0.003, 0.0])
    xd, yd = distort_normalised(x, y, "equidistant", d)
    r = np.hypot(0.3, 0.2)
    theta = np.arctan(r)
    theta_d = theta * (1 + 0.1 * theta**2 - 0.02 * theta**4 + 0.003 * theta**6)
    np.testing.assert_allclose([xd[0], yd[0]], [0.3 * theta_d / r, -0.2 * theta_d / r])


def distort_depth(ideal: np.ndarray, intr, d) -> np.ndarray:
    """What a raw (distorted) camera sees: each ideal pixel moved to where D puts it."""
    h, w = ideal.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    xd, yd = distort_normalised((u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy,
                                "rational_polynomial", np.asarray(d))
    us = np.rint(xd * intr.fx + intr.cx).astype(int)
    vs = np.rint(yd * intr.fy + intr.cy).astype(int)
    ok = (us >= 0) & (us < w) & (vs >= 0) & (vs < h)
    raw = np.zeros_like(ideal)
    raw[vs[ok], us[ok]] = ideal[ok]
    return raw


def centroid_mm(depth, intr, mask):
    v, u = np.nonzero(mask)
    z = depth[v, u]
    keep = z > 0
    u, v, z = u[keep], v[keep], z[keep]
    pts = np.stack([(u - intr.cx) * z / intr.fx, (v - intr.cy) * z / intr.fy, z], axis=1)
    return pts.mean(axis=0)


def test_raw_distorted_depth_from_a_bag_is_undistorted(tmp_path):
    """A bag with rational_polynomial camera_info: raw mode restores the ideal depth."""
    frame = next(iter(sample_sequence(live_camera_config(6), 1)))
    ideal = np.rint(frame.depth_mm)
    intr = frame.intrinsics
    raw = distort_depth(ideal, intr, RATIONAL)
    path = tmp_path / "kinect_like"
    write_bag(path, [SyntheticBagFrame(5, raw, intr, None)],
              distortion=("rational_polynomial", RATIONAL), depth_topic="/depth/image_raw",
              info_topic="/depth/camera_info", frame_id="depth_camera_link")
    (f,) = read_frames(path, "/depth/image_raw", "/depth/camera_info")
    assert f.info.distortion_model == "rational_polynomial" and len(f.info.d) == 8
    auto = DepthInput("auto", "/depth/image_raw")  # a raw topic: K and D
    undistorted, k = auto.prepare(f.image, f.info)
    (note,) = auto.notes()
    assert "undistorting" in note and "rational_polynomial" in note
    as_is, _ = DepthInput("rectified").prepare(f.image, f.info)
    np.testing.assert_array_equal(as_is, raw)

    # nearest neighbour: each pixel takes a raw pixel at most about one pixel off, so the
    # depth agrees to 1 % except at depth edges; the distorted depth as it is does not
    valid = ideal > 0
    agree = (np.abs(undistorted - ideal) <= 0.01 * ideal)[valid].mean()
    agree_as_is = (np.abs(as_is - ideal) <= 0.01 * ideal)[valid].mean()
    assert agree > 0.98 and agree_as_is < 0.8, (agree, agree_as_is)
    # the hand (nearest object) lands where it is, not where the lens shows it
    hand = valid & (ideal < np.percentile(ideal[valid], 5))
    err = np.linalg.norm(centroid_mm(undistorted, k, hand) - centroid_mm(ideal, k, hand))
    err_as_is = np.linalg.norm(centroid_mm(as_is, k, hand) - centroid_mm(ideal, k, hand))
    assert err < 3.0 and err_as_is > 3 * err, (err, err_as_is)
