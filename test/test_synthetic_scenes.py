"""Scene versions of the synthetic generator: v1 frozen, v2 "person" scenes (issue 10).

Correctness only (timings live in ``vvhand bench synth``). Every scene part of v2 has a
test that fails when the part disappears from the generator or stops showing in the depth.
"""

import hashlib
import json

import numpy as np
import pytest

from vvhand_core.camera import project_np
from vvhand_core.cli import main as cli_main
from vvhand_core.data.synthetic.generator import (
    NEW_SCENES_SPLIT,
    SynthConfig,
    SyntheticHandGenerator,
    sample_sequence,
)
from vvhand_core.data.synthetic.io import SyntheticDataset, write_dataset
from vvhand_core.data.synthetic.scene_v2 import LABELS
from vvhand_core.skeletons import HANDS2019_21 as SK

# sha256 over depth bytes, joint bytes and visibility flags of v1 frames (640x480 defaults),
# computed with the generator as it was before scene versions existed.
V1_HASHES = {
    (0, 0): "37e475c9bcbd779e0e31cf757aba963929f1c08a32d2eeb9a0090fa3a0f66664",
    (0, 1): "a13cabb292271adeb3a6372eea044fc6349d6e094bc54ae0691fca54335d7a3f",
    (0, 2): "c163498d0045a9edd30dbc9c79614cdc9dab2069b75bcf26a76cf27148862042",
    (3, 0): "ef7e5dda3dd6d22b0708a3ac4d84eb55b65e81df539e9db1767a1bf8d79634a7",
    (3, 1): "1782480a6447fe10923feedc608c6e3941eb2f0f640c0e9cd34645d373301b8a",
    (3, 2): "c02ea1a0358d35107c4aee412d15c71f1caa1f222cbfc6faf80374809f485972",
}


# the same over v2 scenes (and their label images), computed before scene version 3 existed
V2_HASHES = {
    "5,0": "ca04cfa2dc6df7361952963f36f826e6670f6665c30ac68da816a779e879fda6",
    "5,1": "b870fced3deb648985928e2685ead04183926dbbcda6aa8020176a02bb27c5bc",
    "5,2": "a930dba1c6c883eb0a76104581b1744bb38f6e4e28b3496d45d848afe331420f",
    "5,3,nohand": "6ff2b259b7df1dd4712e68bcfbb6ee3b44cd970de4d21eed6bec30800fce92c2",
    "14,0": "b1148b5e92ba7d3f7cb475f29f1e5f6a7e31b327ee4e207949ce3bf841b565e7",
    "14,1": "91a9bee176c953d069d4dced4635d5525db117fce74f9b35fa1ea1a762fec25c",
    "14,2": "91bf4772522fb222c1da6de3f740d86d9c3552249f0fc2df9856e60fd388ab21",
    "14,3,nohand": "e93d8902512045373071f8e970028efd38c51aa3e84e918dea2614daf5fe4af2",
}


def _frame_hash(frame, labels=None) -> str:
    h = hashlib.sha256()
    h.update(frame.depth_mm.tobytes())
    h.update(frame.joints_mm.tobytes())
    h.update(bytes(frame.meta["visible"]))
    if labels is not None:
        h.update(labels.tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("seed", [0, 3])
def test_v1_frames_are_bit_identical_to_before(seed):
    """Old splits (seed 1 train, 2 val, 3 test) must keep their frames under scene_version 1."""
    gen = SyntheticHandGenerator(SynthConfig(seed=seed))
    for i in range(3):
        assert _frame_hash(gen.frame(i)) == V1_HASHES[(seed, i)], f"v1 frame ({seed}, {i}) changed"


# ----------------------------------------------------------------- version 2: determinism

SMALL = dict(width=320, height=240, fx=260.0, fy=260.0, cx=159.5, cy=119.5, random_camera=False)
N_SCENES = 60


def _v2(seed=4, **kw):
    return SyntheticHandGenerator(SynthConfig(scene_version=2, seed=seed, **{**SMALL, **kw}))


@pytest.fixture(scope="module")
def scenes():
    """N_SCENES small v2 scenes (frame, clean depth, labels) of one seed."""
    gen = _v2()
    return [gen.scene(i) for i in range(N_SCENES)]


@pytest.mark.parametrize("seed", [5, 14])
def test_v2_frames_are_bit_identical_to_before(seed):
    """v2 splits (seed 5: new scenes; 14: leg 5's training frames) keep their bytes."""
    gen = SyntheticHandGenerator(SynthConfig(scene_version=2, seed=seed))
    for i in range(3):
        scene = gen.scene(i)
        assert _frame_hash(scene.frame, scene.labels) == V2_HASHES[f"{seed},{i}"], (seed, i)
    scene = gen.scene(3, hands=False)
    assert _frame_hash(scene.frame, scene.labels) == V2_HASHES[f"{seed},3,nohand"]


def test_v2_frame_depends_only_on_seed_and_index():
    a, b = _v2(seed=11), _v2(seed=11)
    f3 = a.frame(3)
    _ = b.frame(5)
    g3 = b.frame(3)
    assert f3.depth_mm.dtype == np.uint16 and f3.meta["scene_version"] == 2
    assert f3.depth_mm.tobytes() == g3.depth_mm.tobytes()
    assert f3.joints_mm.tobytes() == g3.joints_mm.tobytes()
    assert json.dumps(f3.meta) == json.dumps(g3.meta)  # JSON-ready and identical
    assert not np.array_equal(_v2(seed=12).frame(3).joints_mm, f3.joints_mm)
    v1 = SyntheticHandGenerator(SynthConfig(seed=11, **{k: v for k, v in SMALL.items()
                                                        if k != "random_camera"})).frame(3)
    assert not np.array_equal(v1.joints_mm, f3.joints_mm)


def test_config_fields_validate_and_round_trip():
    cfg = SynthConfig(**NEW_SCENES_SPLIT)
    assert cfg.scene_version == 2 and SynthConfig().scene_version == 1
    assert SynthConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="scene_version"):
        SynthConfig(scene_version=4)
    with pytest.raises(ValueError, match="sensor"):
        SynthConfig(scene_version=2, sensor="lidar")
    with pytest.raises(ValueError, match="scene_version 2 or 3"):
        SyntheticHandGenerator(SynthConfig()).scene(0)


# ----------------------------------------------------------------- version 2: scene parts


def _touches(mask_a, mask_b):
    """Whether a pixel of mask_a has a 4-neighbour in mask_b."""
    near = np.zeros_like(mask_b)
    near[1:] |= mask_b[:-1]
    near[:-1] |= mask_b[1:]
    near[:, 1:] |= mask_b[:, :-1]
    near[:, :-1] |= mask_b[:, 1:]
    return bool((mask_a & near).any())


def _share(flags):
    return float(np.mean(flags))


def test_parts_listed_are_the_parts_shown(scenes):
    for s in scenes:
        shown = {name for name, k in LABELS.items() if (s.labels == k).any()}
        assert set(s.frame.meta["parts"]) == shown - {"none", "hand"}
        assert (s.labels == LABELS["hand"]).sum() > 50  # the labelled hand always shows


def test_arm_attached_to_the_hand_and_leaving_it(scenes):
    hand = [s.labels == LABELS["hand"] for s in scenes]
    arm = [s.labels == LABELS["arm"] for s in scenes]
    assert _share([_touches(a, h) for a, h in zip(arm, hand)]) > 0.9
    # the arm runs out of the frame or into the torso (never a floating stump)
    border = np.zeros_like(arm[0])
    border[[0, -1], :] = border[:, [0, -1]] = True
    leaves = [(a & border).any() or _touches(a, s.labels == LABELS["torso"])
              for a, s in zip(arm, scenes)]
    assert _share(leaves) > 0.85
    elbows = np.array([s.frame.meta["elbow_mm"] for s in scenes])
    wrists = np.array([s.frame.joints_mm[0] for s in scenes])
    forearm = np.linalg.norm(elbows - wrists, axis=1)
    assert np.all((forearm > 170) & (forearm < 350))
    modes = [s.frame.meta["pose_mode"] for s in scenes]
    assert 0.05 < _share([m == "point" for m in modes]) < 0.3  # forearm at the camera
    pointing = [s for s in scenes if s.frame.meta["pose_mode"] == "point"]
    for s in pointing:  # elbow straight behind the wrist, seen from the camera
        w, e = s.frame.joints_mm[0], np.array(s.frame.meta["elbow_mm"])
        ray = w / np.linalg.norm(w)
        assert (e - w) @ ray > 0.8 * np.linalg.norm(e - w)


def test_torso_behind_the_hand(scenes):
    near_hand = []
    for s in scenes:
        f = s.frame
        uv = project_np(f.joints_mm, f.intrinsics)
        u0, v0 = np.maximum(np.floor(uv.min(0)).astype(int) - 10, 0)
        u1, v1 = np.ceil(uv.max(0)).astype(int) + 10
        z = f.joints_mm[:, 2].mean()
        lab, d = s.labels[v0:v1, u0:u1], s.clean_depth_mm[v0:v1, u0:u1]
        torso = (lab == LABELS["torso"]) & (d > z) & (d < z + 400)
        near_hand.append(torso.sum() > 0.05 * lab.size)
        hand_px = s.labels == LABELS["hand"]
        assert not (s.labels == LABELS["torso"])[hand_px].any()
    assert _share(near_hand) > 0.3
    assert _share(["torso" in s.frame.meta["parts"] for s in scenes]) > 0.8
    gaps = [s.frame.meta["body_gap_mm"] for s in scenes]
    assert _share([g is not None and 0 <= g <= 400 for g in gaps]) > 0.15


def test_second_hand_is_farther_and_objects_near_the_border(scenes):
    with_second = [s for s in scenes if "second_hand" in s.frame.meta["parts"]]
    assert 0.1 < len(with_second) / len(scenes) < 0.5
    for s in with_second:
        z1 = s.frame.meta["center_mm"][2]
        assert s.frame.meta["second_hand_center_mm"][2] >= z1 + 100
        d = s.clean_depth_mm
        first, second = d[s.labels == LABELS["hand"]], d[s.labels == LABELS["second_hand"]]
        assert np.median(second) > np.median(first) + 50
    with_objects = [s for s in scenes if "objects" in s.frame.meta["parts"]]
    assert 0.15 < len(with_objects) / len(scenes) < 0.6
    for s in with_objects:
        v, u = np.nonzero(s.labels == LABELS["objects"])
        h, w = s.labels.shape
        to_border = np.minimum(np.minimum(u, w - 1 - u) / w, np.minimum(v, h - 1 - v) / h)
        assert to_border.min() < 0.15


def test_wall_and_table_stay_behind_the_hand(scenes):
    for kind in ("wall", "table"):
        with_kind = [s for s in scenes if kind in s.frame.meta["parts"]]
        assert len(with_kind) / len(scenes) > 0.15, kind
        for s in with_kind:
            hand_far = s.clean_depth_mm[s.labels == LABELS["hand"]].max()
            plane = s.clean_depth_mm[s.labels == LABELS[kind]]
            if kind == "wall":
                assert plane.min() > hand_far
            n = np.array(s.frame.meta["background"][0][:3])
            h = s.frame.meta["background"][0][3]
            assert np.all(s.frame.joints_mm @ n < h)  # joints on the camera's side


def test_left_and_right_hands_have_opposite_chirality(scenes):
    sides = [s.frame.meta["side"] for s in scenes]
    assert 0.3 < _share([x == "left" for x in sides]) < 0.7
    for s in scenes:
        j = s.frame.joints_mm
        palm = np.array(s.frame.meta["rotation"]) @ np.array([0.0, 0.0, 1.0])
        across = j[SK.index("index_mcp")] - j[SK.index("pinky_mcp")]
        up = j[SK.index("middle_mcp")] - j[0]
        sign = np.sign(np.cross(across, up) @ palm)
        assert sign == (1 if s.frame.meta["side"] == "right" else -1)


def test_hand_shapes_vary(scenes):
    scales = np.array([s.frame.meta["scale"] for s in scenes])
    assert scales.min() >= 0.8 and scales.max() <= 1.2 and np.ptp(scales) > 0.25
    length = np.array([s.frame.meta["finger_length_scale"] for s in scenes])
    width = np.array([s.frame.meta["finger_width_scale"] for s in scenes])
    for f in (length, width):
        assert f.min() >= 0.9 and f.max() <= 1.1 and np.ptp(f, axis=0).min() > 0.12
    middle = [SK.index(f"middle_{p}") for p in ("mcp", "pip", "dip", "tip")]
    for s, lf in zip(scenes, length):  # the ground truth carries the drawn finger length
        j = s.frame.joints_mm[middle]
        bones = np.linalg.norm(np.diff(j, axis=0), axis=1).sum()
        assert bones == pytest.approx(95.0 * s.frame.meta["scale"] * lf[2], rel=1e-4)


# ----------------------------------------------------------------- version 2: cameras, I/O


def test_new_scenes_split_draws_a_camera_per_frame(tmp_path):
    gen = SyntheticHandGenerator(SynthConfig(**NEW_SCENES_SPLIT))
    frames = [gen.frame(i) for i in range(3)]
    assert len({f.intrinsics for f in frames}) == 3
    for f in frames:
        k, cam = f.intrinsics, f.meta["camera"]
        assert 200.0 <= k.fx <= 650.0 and (k.width, k.height) == f.depth_mm.shape[::-1]
        assert (cam["fx"], cam["width"], cam["height"]) == (k.fx, k.width, k.height)
        assert f.meta["sensor"] in ("structured_light", "tof")
    # a folder written from these frames keeps each frame's camera and meta
    write_dataset(tmp_path / "v2", SynthConfig(**NEW_SCENES_SPLIT), 3, progress=False)
    ds = SyntheticDataset(tmp_path / "v2")
    assert ds.meta["version"] == 2 and ds.config.scene_version == 2
    for f, g in zip(frames, ds):
        assert g.intrinsics == f.intrinsics and np.array_equal(g.depth_mm, f.depth_mm)
        for key in ("side", "sensor", "parts", "scene_version", "visible"):
            assert g.meta[key] == f.meta[key]


def test_v2_sequence_is_smooth_and_deterministic():
    cfg = SynthConfig(scene_version=2, seed=2, **SMALL)
    frames = list(sample_sequence(cfg, 12, keyframe_interval=10))
    joints = np.stack([f.joints_mm for f in frames])
    assert np.linalg.norm(np.diff(joints, axis=0), axis=-1).max() < 50.0
    assert np.linalg.norm(joints[-1] - joints[0], axis=-1).max() > 5.0
    assert len({f.meta["side"] for f in frames}) == 1
    assert len({json.dumps(f.meta["background"]) for f in frames}) == 1
    again = list(sample_sequence(cfg, 12, keyframe_interval=10))
    assert all(np.array_equal(a.depth_mm, b.depth_mm) for a, b in zip(frames, again))


def test_cli_synth_writes_version_2(tmp_path):
    assert cli_main(["synth", "--out", str(tmp_path / "s"), "--frames", "2", "--seed", "6",
                     "--scene-version", "2", "--clean", "--no-progress"]) == 0  # fmt: skip
    ds = SyntheticDataset(tmp_path / "s")
    assert ds.config.scene_version == 2 and ds.config.sensor == "ideal"
    assert all(f.meta["sensor"] == "ideal" and f.meta["scene_version"] == 2 for f in ds)
