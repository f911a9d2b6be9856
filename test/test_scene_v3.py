"""Scene version 3 (hands that hold and touch things; three camera placements; two hands).

Correctness on a small fixed set of frames (seed 9, frames 0..23, drawn once per module):
each scene part, grasp type, placement and the second hand's labels must be there and
consistent with the rendered depth and label image. Timings live in `vvhand bench synth`.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from vvhand_core.camera import project_np
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.data.synthetic.grasps import (
    CONTACT_TOLERANCE_MM,
    GRASP_TYPES,
    HELD,
    object_sdf,
    sample_grasp,
)
from vvhand_core.data.synthetic.hand_model import HandShape, pose_hand
from vvhand_core.data.synthetic.placements import PLACEMENTS
from vvhand_core.data.synthetic.scene_v3 import LABELS, VISIBILITY
from vvhand_core.side import side_score
from vvhand_core.skeletons import HANDS2019_21

SEED, COUNT = 9, 24
# sha256 of depth, joints, meta["hands"] (JSON) and labels of seed 15 (leg 6's training
# frames): frozen since version 3 was first used for training
V3_HASHES = {
    "0": "9af33d956fcb029a12c526dec8ad51ac17a30c3992e0497f649c6a28bae908e4",
    "1": "5ce8b1f27b5517f837b2d92e03b5e5f88b26a333db4fe0d4b3a4ec0da01285b6",
    "2": "d6e4332e4a23e513770aa6e8230155a7397adf0e2d0fd74122db7c38400552a5",
    "3": "748d081fa9052c29028971c03d09b8caad36dbaa9d41ab7611b9bf599f639468",
    "4,nohand": "9e40f021ce228a383fa39f6364637ab68e0d6ec1c8a12c8bb2e1db37a6713d03",
}


def _scene_hash(scene) -> str:
    x = hashlib.sha256()
    x.update(scene.frame.depth_mm.tobytes())
    x.update(scene.frame.joints_mm.tobytes())
    x.update(json.dumps(scene.frame.meta["hands"], sort_keys=True).encode())
    x.update(scene.labels.tobytes())
    return x.hexdigest()


@pytest.fixture(scope="module")
def scenes():
    gen = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=SEED))
    return [gen.scene(i) for i in range(COUNT)]


def test_frames_depend_only_on_seed_and_index(scenes):
    gen = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=SEED))
    for i in (5, 2):  # another order, another generator
        frame = gen.frame(i)
        assert np.array_equal(frame.depth_mm, scenes[i].frame.depth_mm)
        assert np.array_equal(frame.joints_mm, scenes[i].frame.joints_mm)
    other = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=SEED + 1)).frame(2)
    assert not np.array_equal(other.joints_mm, scenes[2].frame.joints_mm)


def test_v3_frames_are_frozen():
    gen = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=15))
    for i in range(4):
        assert _scene_hash(gen.scene(i)) == V3_HASHES[str(i)], f"v3 frame (15, {i}) changed"
    assert _scene_hash(gen.scene(4, hands=False)) == V3_HASHES["4,nohand"]


def test_every_placement_and_both_hands_occur(scenes):
    metas = [s.frame.meta for s in scenes]
    assert {m["placement"] for m in metas} == set(PLACEMENTS)
    assert sum(m["num_hands"] == 2 for m in metas) >= 5
    assert sum(m["grasp"] in HELD for m in metas) >= 8


def test_hand_labels_are_consistent(scenes):
    for s in scenes:
        m, f = s.frame.meta, s.frame
        assert m["scene_version"] == 3 and m["num_hands"] == len(m["hands"]) >= 1
        h0 = m["hands"][0]
        assert np.allclose(np.asarray(h0["joints_mm"]), f.joints_mm, atol=1e-3)
        assert m["side"] == h0["side"] and m["grasp"] == h0["grasp"]
        for h in m["hands"]:
            j = np.asarray(h["joints_mm"])
            assert np.allclose(j.mean(axis=0), h["center_mm"], atol=1e-2)
            assert np.allclose(project_np(j, f.intrinsics), h["uv"], atol=0.02)
            assert set(h["visibility"]) <= set(VISIBILITY) and len(h["visibility"]) == 21
            assert h["grasp"] in GRASP_TYPES
            # the side label matches the joints' chirality (the right hand scores > 0)
            assert np.sign(side_score(j, HANDS2019_21)) == (1 if h["side"] == "right" else -1)
        if m["num_hands"] == 2:
            assert {h["side"] for h in m["hands"]} == {"left", "right"}


def test_visibility_codes_agree_with_the_label_image(scenes):
    counts = {c: 0 for c in VISIBILITY}
    for s in scenes:
        intr = s.frame.intrinsics
        for k, h in enumerate(s.frame.meta["hands"]):
            own = (LABELS["hand"], LABELS["second_hand"])[k]
            uv = np.rint(np.asarray(h["uv"])).astype(int)
            for (u, v), code in zip(uv, h["visibility"]):
                counts[code] += 1
                if code == "outside":
                    assert not (0 <= u < intr.width and 0 <= v < intr.height)
                    continue
                lab = s.labels[v, u]
                if code == "object":
                    assert lab in (LABELS["held_object"], LABELS["objects"])
                elif code == "self":
                    assert lab == own
                elif code == "other":
                    assert lab not in (own, LABELS["held_object"], LABELS["objects"])
    assert counts["visible"] > 0 and counts["object"] > 0 and counts["self"] > 0


def test_held_objects_are_rendered_and_touched(scenes):
    held = [s for s in scenes if s.frame.meta["grasp"] in HELD]
    assert sum((s.labels == LABELS["held_object"]).any() for s in held) >= len(held) // 2
    for s in held:
        h0 = s.frame.meta["hands"][0]
        gaps = [g for g in h0["contact_gap_mm"] if g is not None]
        assert min(gaps) >= 0.0 and h0["touching"]


def test_placements_look_from_where_they_say(scenes):
    for s in scenes:
        m = s.frame.meta
        up = np.asarray(m["up_cam"])  # the world's up in the camera frame
        dist = float(np.linalg.norm(m["center_mm"]))
        if m["placement"] == "egocentric":
            assert 250.0 - 1 <= dist <= 600.0 + 1
            # head-mounted: the forearm comes from below the hand (image down is +v)
            h0 = m["hands"][0]
            elbow_v = project_np(np.asarray([h0["elbow_mm"]]), s.frame.intrinsics)[0, 1]
            assert elbow_v > h0["uv"][0][1] or h0["elbow_mm"][2] < 0
        elif m["placement"] == "overhead":
            assert -up[2] > np.cos(np.radians(36.0))  # looking down within 35 deg
        else:
            assert 350.0 - 1 <= dist <= 900.0 + 1
        assert up[1] < 0.2 or m["placement"] == "overhead"  # up is not image-down


def test_table_and_clutter(scenes):
    assert all((s.labels == LABELS["table"]).any() for s in scenes)
    assert sum((s.labels == LABELS["objects"]).any() for s in scenes) >= 6


def test_hand_free_scene_has_no_hand():
    gen = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=SEED))
    with_hands, without = gen.scene(3), gen.scene(3, hands=False)
    for lab in ("hand", "second_hand", "arm", "held_object"):
        assert not (without.labels == LABELS[lab]).any()
    assert (with_hands.labels == LABELS["hand"]).any()
    m = without.frame.meta
    assert m["hand_free"] and m["hands"] == [] and not any(m["visible"])


@pytest.mark.parametrize("kind", HELD)
def test_grasps_touch_without_passing_through(kind):
    """Checked on the generator's own geometry (pose_hand), not the search's numpy twin."""
    rng = np.random.default_rng(11)
    needed = {"power": 4, "spherical": 4, "pinch": 2, "tripod": 3, "lateral": 1, "hook": 3}
    touching = []
    for _ in range(6):
        g = sample_grasp(rng, HandShape(), 1.0, kind)
        assert g.kind == kind and g.held is not None
        geom = pose_hand(g.articulation_deg)
        j, r = geom.joints, geom.joint_radius
        fingers = [1, 2, 3, 4] if kind == "hook" else list(range(21))[1:]
        # every finger joint sphere stays outside the object (0.1 mm of rounding)
        assert np.all(object_sdf(g.held, j[fingers]) >= r[fingers] - 0.1)
        touching.append(len(g.touching()))
        assert np.all(g.contact_gap_mm >= 0.0)
    assert np.median(touching) >= needed[kind]
    assert all(t >= 1 for t in touching)


def test_touching_means_within_tolerance():
    g = sample_grasp(np.random.default_rng(3), HandShape(), 1.0, "power")
    gaps = dict(zip(("thumb", "index", "middle", "ring", "pinky"), g.contact_gap_mm))
    assert all(gaps[f] < CONTACT_TOLERANCE_MM for f in g.touching())


def test_training_reads_v3_frames_unchanged():
    """The training data path takes v3 frames with no other change (issue 24)."""
    from vvhand_core.train.cache import _WideCrops
    from vvhand_core.train.config import DataConfig
    from vvhand_core.train.splits import open_split

    data = DataConfig(synth={"scene_version": 3}, train_frames=2, val_frames=1)
    frames = open_split(data, "train")
    item = _WideCrops(frames, 300.0, 96)[1]
    assert item["crop"].shape == (96, 96) and (item["crop"] > 0).any()


def test_training_mixture_of_scene_versions():
    """data.synth_mix: each frame from one version, deterministic, shares respected."""
    from vvhand_core.train.cache import source_description
    from vvhand_core.train.config import ConfigError, DataConfig
    from vvhand_core.train.splits import MixedFrames, open_split

    data = DataConfig(synth_mix={2: 0.4, 3: 0.6}, train_frames=200, val_frames=1)
    frames = open_split(data, "train")
    assert isinstance(frames, MixedFrames)
    versions = [frames.version_of(i) for i in range(200)]
    assert 0.5 < versions.count(3) / 200 < 0.7 and set(versions) == {2, 3}
    k = versions.index(3)
    assert frames[k].meta["scene_version"] == 3
    assert frames[versions.index(2)].meta["scene_version"] == 2
    again = open_split(data, "train")[k]
    assert np.array_equal(again.depth_mm, frames[k].depth_mm)
    plain = DataConfig(synth={"scene_version": 3}, train_frames=200, val_frames=1)
    assert source_description(data) != source_description(plain)
    assert "mix" not in source_description(plain)  # old caches keep their keys
    with pytest.raises(ConfigError, match="synth_mix"):
        DataConfig(synth_mix={4: 1.0})
    with pytest.raises(ConfigError, match="exclude"):
        DataConfig(synth={"scene_version": 2}, synth_mix={3: 1.0})
