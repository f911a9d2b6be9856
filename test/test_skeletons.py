import re

import numpy as np
import pytest

from vvhand_core.skeletons import (
    HANDS2019_21,
    ICVL_16,
    MSRA_21,
    NYU_14,
    Skeleton,
    SkeletonMismatch,
    anatomical_name,
    correspondence,
    get_skeleton,
    joint_map,
)

ALL = (HANDS2019_21, NYU_14, ICVL_16, MSRA_21)


@pytest.mark.parametrize("skel,count", [(HANDS2019_21, 21), (NYU_14, 14), (ICVL_16, 16),
                                        (MSRA_21, 21)])
def test_sizes_and_bones(skel, count):
    assert skel.num_joints == count
    bones = skel.bones()
    assert len(bones) == count - 1  # a tree
    children = {c for _, c in bones}
    assert len(children) == count - 1
    for p, c in bones:
        assert skel.parents[c] == p
    for rgb in skel.colors:
        assert len(rgb) == 3 and all(0.0 <= x <= 1.0 for x in rgb)


@pytest.mark.parametrize("skel", ALL)
def test_names_are_tf_safe(skel):
    for n in skel.joint_names:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", n), n


def test_hands2019_order():
    names = HANDS2019_21.joint_names
    assert names[0] == "wrist"
    assert names[1:5] == ("thumb_mcp", "thumb_pip", "thumb_dip", "thumb_tip")
    assert names[17:21] == ("pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip")
    # each MCP hangs off the wrist, the rest chain along the finger
    for f in range(5):
        base = 1 + 4 * f
        assert HANDS2019_21.parents[base] == 0
        assert HANDS2019_21.parents[base + 1 : base + 4] == (base, base + 1, base + 2)


def test_nyu_and_icvl_roots():
    assert NYU_14.joint_names[NYU_14.parents.index(-1)] == "palm"
    assert NYU_14.parents[NYU_14.index("thumb_tip")] == NYU_14.index("thumb_mid")
    assert NYU_14.parents[NYU_14.index("pinky_tip")] == NYU_14.index("pinky_mid")
    assert ICVL_16.joint_names[0] == "palm" and ICVL_16.parents[0] == -1
    assert ICVL_16.joint_names[1:4] == ("thumb_root", "thumb_mid", "thumb_tip")


def test_get_skeleton():
    for s in ALL:
        assert get_skeleton(s.name) is s
    with pytest.raises(ValueError, match="hands2019_21.*icvl_16|icvl_16.*hands2019_21"):
        get_skeleton("mano")


def test_invalid_skeletons_rejected():
    with pytest.raises(ValueError):
        Skeleton("x", ("a", "b"), (-1,), ((0, 0, 0), (0, 0, 0)))
    with pytest.raises(ValueError):  # two roots
        Skeleton("x", ("a", "b"), (-1, -1), ((0, 0, 0), (0, 0, 0)))
    with pytest.raises(ValueError):  # cycle
        Skeleton("x", ("a", "b", "c"), (-1, 2, 1), ((0, 0, 0),) * 3)


def test_correspondence():
    assert correspondence(NYU_14, NYU_14) == [(i, i) for i in range(14)]
    pairs = correspondence(NYU_14, HANDS2019_21)
    named = {(NYU_14.joint_names[a], HANDS2019_21.joint_names[b]) for a, b in pairs}
    assert ("index_tip", "index_tip") in named
    assert ("index_mid", "index_pip") in named
    assert ("thumb_mid", "thumb_dip") in named
    # palm centre and wrist sides have no counterpart
    assert not any(a in (NYU_14.index("palm"), NYU_14.index("wrist_1")) for a, _ in pairs)
    # symmetric
    back = correspondence(HANDS2019_21, NYU_14)
    assert sorted((b, a) for a, b in back) == sorted(pairs)
    # unique on both sides
    assert len({a for a, _ in pairs}) == len(pairs) == len({b for _, b in pairs})
    icvl = correspondence(ICVL_16, NYU_14)
    names = {(ICVL_16.joint_names[a], NYU_14.joint_names[b]) for a, b in icvl}
    assert ("ring_tip", "ring_tip") in names and ("ring_mid", "ring_mid") in names
    assert anatomical_name(ICVL_16, 0) is None


def test_msra_order_is_the_readmes():
    # the readme: wrist, index/middle/ring/little mcp..tip, thumb mcp..tip ("little" = pinky)
    expected = ["wrist"] + [f"{f}_{p}" for f in ("index", "middle", "ring", "pinky", "thumb")
                            for p in ("mcp", "pip", "dip", "tip")]
    assert list(MSRA_21.joint_names) == expected
    assert MSRA_21.parents[MSRA_21.index("thumb_mcp")] == 0
    assert MSRA_21.parents[MSRA_21.index("index_tip")] == MSRA_21.index("index_dip")


def test_msra_corresponds_to_hands2019_joint_for_joint():
    pairs = correspondence(MSRA_21, HANDS2019_21)
    assert len(pairs) == 21
    assert all(MSRA_21.joint_names[a] == HANDS2019_21.joint_names[b] for a, b in pairs)
    # to NYU exactly as hands2019 does
    by_name = {(HANDS2019_21.joint_names[a], NYU_14.joint_names[b])
               for a, b in correspondence(HANDS2019_21, NYU_14)}
    assert {(MSRA_21.joint_names[a], NYU_14.joint_names[b])
            for a, b in correspondence(MSRA_21, NYU_14)} == by_name


def test_joint_map_reorders_predictions_into_label_order():
    rng = np.random.default_rng(0)
    hands = rng.normal(size=(2, 21, 3))  # two frames in hands2019_21 order
    msra = hands[:, [HANDS2019_21.index(n) for n in MSRA_21.joint_names]]
    m = joint_map(HANDS2019_21, MSRA_21)
    assert m.complete and m.joint_names == MSRA_21.joint_names
    np.testing.assert_array_equal(m.predicted(hands), msra)
    np.testing.assert_array_equal(m.labelled(msra), msra)
    back = joint_map(MSRA_21, HANDS2019_21)
    np.testing.assert_array_equal(back.predicted(msra), hands)


def test_joint_map_refuses_missing_joints_or_scores_the_common_ones():
    with pytest.raises(SkeletonMismatch, match="3 of the 14.*wrist_1, wrist_2, palm"):
        joint_map(HANDS2019_21, NYU_14)
    common = joint_map(HANDS2019_21, NYU_14, "common")
    assert not common.complete and len(common.dst_index) == 11
    assert list(common.dst_index) == sorted(common.dst_index)  # label (NYU file) order
    for a, b in zip(common.src_index, common.dst_index):
        assert anatomical_name(HANDS2019_21, a) == anatomical_name(NYU_14, b)
    with pytest.raises(SkeletonMismatch, match="icvl_16"):  # a 14-joint model: 10 missing
        joint_map(NYU_14, ICVL_16)
    with pytest.raises(ValueError, match="joints must be"):
        joint_map(HANDS2019_21, MSRA_21, "some")
