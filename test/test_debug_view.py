"""vvhand_core.debug_view: the picture behind the node's ~/debug_image."""

from __future__ import annotations

import numpy as np
import pytest

from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.debug_view import DebugHand, crop_box, debug_view
from vvhand_core.skeletons import get_skeleton


@pytest.fixture(scope="module")
def frame():
    return SyntheticHandGenerator(SynthConfig(seed=4, background="none")).frame(0)


def _colours(skeleton):
    """The skeleton's drawing colours that are not grey (grey is the depth's)."""
    rgb = {tuple(int(255 * c) for c in col) for col in skeleton.colors}
    return {c for c in rgb if len(set(c)) > 1}


def _hand(frame, joints=None, label=""):
    joints = frame.joints_mm if joints is None else joints
    return DebugHand(joints, joints.mean(axis=0), 250.0, label)


def test_panel_shows_the_hand_and_its_skeleton_where_the_joints_project(frame):
    sk = get_skeleton("hands2019_21")
    rgb = debug_view(frame.depth_mm, frame.intrinsics, [_hand(frame)], sk, panel_px=192)
    assert rgb.shape == (192, 192, 3) and rgb.dtype == np.uint8
    colours = {tuple(p) for p in rgb.reshape(-1, 3)}
    assert len(_colours(sk) & colours) >= 4  # bones drawn in the skeleton's colours
    grey = rgb[..., 0] == rgb[..., 1]
    assert (rgb[grey][:, 0] > 60).sum() > 192 * 192 // 20  # the hand's depth, bright
    # the wrist's dot sits where the wrist projects into the crop
    u0, v0, size = crop_box(frame.joints_mm.mean(axis=0), 250.0, frame.intrinsics)
    k, w = frame.intrinsics, frame.joints_mm[0]
    u = (k.fx * w[0] / w[2] + k.cx - u0) * 192 / size
    v = (k.fy * w[1] / w[2] + k.cy - v0) * 192 / size
    assert tuple(rgb[int(round(v)), int(round(u))]) == tuple(int(255 * c) for c in sk.colors[0])


def test_a_wrong_skeleton_is_not_drawn_on_an_empty_area(frame):
    sk = get_skeleton("hands2019_21")
    far_off = frame.joints_mm + np.array([400.0, 0.0, 0.0])  # outside the crop: nothing drawn
    hand = DebugHand(far_off, frame.joints_mm.mean(axis=0), 250.0)
    rgb = debug_view(frame.depth_mm, frame.intrinsics, [hand], sk)
    assert not _colours(sk) & {tuple(p) for p in rgb.reshape(-1, 3)}


def test_one_panel_per_hand_side_by_side(frame):
    sk = get_skeleton("hands2019_21")
    rgb = debug_view(frame.depth_mm, frame.intrinsics, [_hand(frame, label="left #1"),
                                                        _hand(frame, label="right #2")], sk, 96)
    assert rgb.shape == (96, 192, 3)
    assert np.array_equal(rgb[20:, :96], rgb[20:, 96:])  # same hand below the labels


def test_without_a_hand_the_whole_image_is_shown(frame):
    sk = get_skeleton("hands2019_21")
    h, w = frame.depth_mm.shape
    rgb = debug_view(frame.depth_mm, frame.intrinsics, [], sk, panel_px=120)
    assert rgb.shape == (120, round(w * 120 / h), 3)
    assert rgb.max() > 200 and rgb.min() == 0  # the near hand bright, invalid depth black
    empty = debug_view(np.zeros((48, 64)), frame.intrinsics, [], sk, panel_px=48)
    assert empty.shape == (48, 64, 3) and empty.max() == 0


def test_nan_depth_and_a_hand_at_the_border_do_not_raise(frame):
    sk = get_skeleton("hands2019_21")
    depth = frame.depth_mm.astype(np.float32)
    depth[:, : depth.shape[1] // 2] = np.nan
    corner = DebugHand(frame.joints_mm, np.array([-300.0, -200.0, 400.0]), 250.0)
    rgb = debug_view(depth, frame.intrinsics, [corner], sk)
    assert rgb.shape == (192, 192, 3)


def test_bad_input_is_refused(frame):
    sk = get_skeleton("hands2019_21")
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        debug_view(np.zeros((2, 3, 4)), frame.intrinsics, [], sk)
    with pytest.raises(ValueError, match="panel_px"):
        debug_view(frame.depth_mm, frame.intrinsics, [], sk, panel_px=4)
