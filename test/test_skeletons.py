import re

import pytest

from vvhand_core.skeletons import (
    HANDS2019_21,
    ICVL_16,
    NYU_14,
    Skeleton,
    anatomical_name,
    correspondence,
    get_skeleton,
)

ALL = (HANDS2019_21, NYU_14, ICVL_16)


@pytest.mark.parametrize("skel,count", [(HANDS2019_21, 21), (NYU_14, 14), (ICVL_16, 16)])
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
