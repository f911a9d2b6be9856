"""Depth images paired with the camera_info of their stamp, in memory and on bags."""

from __future__ import annotations

import pytest

from vvhand_ros.bag import SyntheticBagFrame, read_frames, write_bag
from vvhand_ros.pairing import NO_INFO, NO_MATCH, TIME_JUMP, Pair, StampPairer, Unpaired

MS = 1_000_000


def kinds(outcomes):
    return [(type(o).__name__, o.stamp_ns) for o in outcomes]


def test_exact_pairing_does_not_depend_on_arrival_order():
    p = StampPairer()
    assert p.add_image(100, "img100") == []        # waits for its camera_info
    (pair,) = p.add_info(100, "info100")
    assert isinstance(pair, Pair) and (pair.image, pair.info) == ("img100", "info100")
    p.add_info(133, "info133")                       # camera_info first this time
    (pair,) = p.add_image(133, "img133")
    assert pair.info == "info133"
    assert p.waiting() == 0


def test_an_image_whose_info_will_not_come_is_dropped_with_a_reason():
    p = StampPairer()
    p.add_info(100, "info100")
    assert p.add_image(150, "img150") == []          # could still come
    out = p.add_info(200, "info200")                 # a newer one: 150's never will
    assert kinds(out) == [("Unpaired", 150)]
    assert out[0].kind == NO_MATCH and "newest camera_info is 0.000000200" in out[0].reason
    # an image older than the newest camera_info, without its own, goes at once
    (late,) = p.add_image(180, "img180")
    assert isinstance(late, Unpaired) and late.kind == NO_MATCH
    (pair,) = p.add_image(100, "img100")             # its own is still kept
    assert pair.info == "info100"


def test_no_camera_info_at_all_overflows_the_queue_and_flushes():
    p = StampPairer(queue_size=3)
    out = []
    for i in range(5):
        out += p.add_image(i, f"img{i}")
    assert kinds(out) == [("Unpaired", 0), ("Unpaired", 1)]
    assert all(o.kind == NO_INFO for o in out) and "no camera_info received yet" in out[0].reason
    assert [o.stamp_ns for o in p.flush()] == [2, 3, 4] and p.waiting() == 0


def test_approximate_pairing_takes_the_nearest_within_slop():
    p = StampPairer(slop_ns=10 * MS)
    p.add_info(100 * MS, "a")
    p.add_info(108 * MS, "b")
    (pair,) = p.add_image(105 * MS, "img")
    assert pair.info == "b"                          # 3 ms beats 5 ms
    (pair,) = p.add_image(95 * MS, "img2")
    assert pair.info == "a"
    assert p.add_image(125 * MS, "img3") == []       # nothing within 10 ms yet
    (pair,) = p.add_info(130 * MS, "c")
    assert pair.image == "img3" and pair.info == "c"
    with pytest.raises(ValueError):
        StampPairer(slop_ns=-1)


def test_bag_frames_are_paired_by_stamp_not_by_recording_order(tmp_path):
    """camera_info recorded after its image, one frame with none: the bag pairs like the node."""
    from vvhand_core.data.synthetic.generator import sample_sequence
    from vvhand_ros.synth_bag import live_camera_config

    frames = list(sample_sequence(live_camera_config(3), 4))
    path = tmp_path / "late_info"
    write_bag(path, [SyntheticBagFrame(1000 + i * 66 * MS, f.depth_mm, f.intrinsics, None,
                                       write_info=(i != 2))
                     for i, f in enumerate(frames)], info_after_image=True)
    out = list(read_frames(path))
    assert sorted(f.index for f in out) == [0, 1, 2, 3]
    by_index = {f.index: f for f in out}
    for i in (0, 1, 3):
        assert by_index[i].info is not None
        assert by_index[i].info.header.stamp == by_index[i].image.header.stamp
    assert by_index[2].info is None and "no camera_info with the same stamp" in by_index[2].reason


def _pair_all(p, stamps, image_first):
    out = []
    for s in stamps:
        if image_first:
            out += p.add_image(s, f"img{s}") + p.add_info(s, f"info{s}")
        else:
            out += p.add_info(s, f"info{s}") + p.add_image(s, f"img{s}")
    return out


@pytest.mark.parametrize("image_first", [False, True], ids=["info_first", "image_first"])
def test_time_going_backwards_starts_a_new_timeline(image_first):
    """A bag that loops (stamps 100..109, then 50..): the first frame after the jump pairs."""
    p = StampPairer(0, 10)
    assert all(isinstance(o, Pair) for o in _pair_all(p, range(100, 110), image_first))
    out = _pair_all(p, [50], image_first)
    assert kinds(out) == [("Pair", 50)], out
    assert out[0].info == "info50"
    out = _pair_all(p, range(51, 60), image_first)
    assert kinds(out) == [("Pair", s) for s in range(51, 60)]


def test_images_of_the_old_timeline_are_given_up_with_their_own_reason():
    p = StampPairer(0, 10)
    p.add_info(100, "info100")
    p.add_image(100, "img100")
    assert p.add_image(101, "img101") == []          # waits for info 101
    out = p.add_info(5, "info5")                     # a camera reset
    assert kinds(out) == [("Unpaired", 101)] and out[0].kind == TIME_JUMP
    assert "time went backwards on the camera_info" in out[0].reason
    (pair,) = p.add_image(5, "img5")
    assert pair.info == "info5" and p.waiting() == 0


@pytest.mark.parametrize("image_first", [False, True], ids=["info_first", "image_first"])
def test_one_far_future_camera_info_does_not_block_pairing(image_first):
    p = StampPairer(0, 10)
    _pair_all(p, range(100, 105), image_first)
    p.add_info(2_000_000_000 * 10**9, "info2033")     # a stray stamp, its image never comes
    out = _pair_all(p, range(105, 115), image_first)
    answered = [o.stamp_ns for o in out if isinstance(o, Pair)]
    # image-first, the first image after the stray stamp cannot tell it is stray yet
    assert answered == list(range(105 + image_first, 115)), kinds(out)


def test_a_zero_stamped_pair_is_paired_and_time_resumes():
    p = StampPairer(0, 10)
    _pair_all(p, range(100, 110), False)             # a full queue of camera_info
    for image_first in (False, True):
        assert kinds(_pair_all(p, [0], image_first)) == [("Pair", 0)]
        assert kinds(_pair_all(p, [110 + image_first], image_first)) == [
            ("Pair", 110 + image_first)]


def test_a_stray_far_future_image_is_given_up_when_its_topic_resumes():
    p = StampPairer(0, 10)
    _pair_all(p, range(100, 103), False)
    assert p.add_image(10**18, "stray") == []
    out = _pair_all(p, [103], True)
    assert kinds(out) == [("Unpaired", 10**18), ("Pair", 103)] and out[0].kind == TIME_JUMP
