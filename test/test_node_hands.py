"""hand_pose_node with two hands over real DDS (issue 27): both hands in ~/hands, each
keeping its track id and TF frame through a crossing while the list order flips.

The node runs as a child process (untrained small checkpoint, geometric localiser, fit
off: these tests are about the node's bookkeeping, not accuracy) and receives the crossing
sequence of test/two_hands.py; hands are told apart by their crop centre (``Hand.center``,
the localiser's), which the untrained networks do not touch.
"""

from __future__ import annotations

import numpy as np
import pytest

from ros_helpers import spin_until, stop

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
from outputs_harness import Harness, start  # noqa: E402
from two_hands import identities, two_hand_sequence  # noqa: E402

N = 12


def _centre_mm(hand) -> np.ndarray:
    return np.array([hand.center.x, hand.center.y, hand.center.z]) * 1000.0


def test_two_hands_keep_track_ids_and_tf_names_through_a_crossing(rclpy_context, ros_env,
                                                                  checkpoint):
    depth, _, centres, intr = two_hand_sequence(N)
    proc = start(ros_env, checkpoint, "max_hands:=2")
    h = Harness(rclpy_context)
    try:
        h.wait_subscribed(proc)
        answers = [h.send_and_wait(proc, depth[i], intr, 300.0 + i / 30.0) for i in range(N)]
        assert spin_until(h.node, lambda: len(h.tf) >= N - 1, 30.0)
        assert proc.poll() is None
    finally:
        out = stop(proc)
        h.node.destroy_node()
    assert "Traceback" not in out
    track_of, frame_of = {}, {}  # true hand (0 = A, 1 = B) -> track id / palm frame
    for i, msg in enumerate(answers[1:], start=1):
        assert len(msg.hands) == 2, f"frame {i}: {len(msg.hands)} hand(s)"
        who = identities([_centre_mm(x) for x in msg.hands], centres[i])
        assert sorted(who) == [0, 1], (i, who)
        assert [x.center.z for x in msg.hands] == sorted(x.center.z for x in msg.hands)
        for x, w in zip(msg.hands, who):
            assert track_of.setdefault(w, x.track_id) == x.track_id, f"ids swapped at {i}"
            assert frame_of.setdefault(w, x.palm_frame) == x.palm_frame, f"TF swapped at {i}"
    assert len(set(track_of.values())) == 2 and len(set(frame_of.values())) == 2
    assert set(frame_of.values()) == {"hand_pose_node/hand_0_palm", "hand_pose_node/hand_1_palm"}
    # the list order flipped (B came to the front) while the names stayed with the hands
    first = identities([_centre_mm(answers[1].hands[0])], centres[1])
    last = identities([_centre_mm(answers[-1].hands[0])], centres[-1])
    assert first == [0] and last == [1]
    # each TF palm frame is broadcast where its hand's palm is
    stamps = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in answers}
    for tf in h.tf:
        for t in tf.transforms:
            msg = stamps[(t.header.stamp.sec, t.header.stamp.nanosec)]
            (hand,) = [x for x in msg.hands if x.palm_frame == t.child_frame_id]
            p = t.transform.translation
            assert (p.x, p.y, p.z) == (hand.palm.position.x, hand.palm.position.y,
                                       hand.palm.position.z)
