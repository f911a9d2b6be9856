import json

import numpy as np
import pytest

from vvhand_core.camera import Intrinsics, project_np
from vvhand_core.cli import main as cli_main
from vvhand_core.data.base import DatasetError
from vvhand_core.data.synthetic.generator import (
    HandState,
    SynthConfig,
    SyntheticHandGenerator,
    place_hand,
    sample_sequence,
)
from vvhand_core.data.synthetic.hand_model import (
    LIMITS_DEG,
    NUM_PARAMS,
    PARAM_NAMES,
    HandGeometry,
    HandShape,
    pose_hand,
)
from vvhand_core.data.synthetic.io import SyntheticDataset, write_dataset
from vvhand_core.data.synthetic.poses import GESTURES, orientation_ok, sample_articulation
from vvhand_core.data.synthetic.raycast import render_geometry, render_planes
from vvhand_core.data.synthetic.sensor import apply_sensor_effects, silhouette_edges
from vvhand_core.skeletons import HANDS2019_21 as SK

SMALL = dict(width=160, height=120, fx=118.75, fy=118.75, cx=79.5, cy=59.5)
CLEAN = dict(noise_sigma_mm=0.0, edge_dropout=0.0, random_dropout=0.0, quantize=False)
# camera-from-hand rotations: palm towards the camera / back of the hand towards the camera
PALM_VIEW = np.array([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])
BACK_VIEW = np.array([[-1.0, 0, 0], [0, -1, 0], [0, 0, 1]])


def _geom(spheres=(), capsules=(), ellipsoids=()):
    ell = list(ellipsoids)
    return HandGeometry(
        joints=np.zeros((21, 3)),
        joint_radius=np.zeros(21),
        spheres=np.asarray(spheres, dtype=float).reshape(-1, 4),
        capsules=np.asarray(capsules, dtype=float).reshape(-1, 7),
        ell_centers=np.array([e[0] for e in ell], dtype=float).reshape(-1, 3),
        ell_rotations=np.array([e[1] for e in ell], dtype=float).reshape(-1, 3, 3),
        ell_semi_axes=np.array([e[2] for e in ell], dtype=float).reshape(-1, 3),
    )


INTR = Intrinsics(**SMALL)


# ----------------------------------------------------------------- ray casting, exact cases


def test_sphere_depth_and_silhouette_are_exact():
    intr = Intrinsics(100.0, 100.0, 40.0, 30.0, 81, 61)
    depth, part = render_geometry(_geom(spheres=[[0, 0, 500, 50]]), intr)
    assert depth[30, 40] == pytest.approx(450.0, abs=1e-3)
    # off-centre pixel: nearest root of |t d - c| = r
    d = np.array([(50 - 40) / 100, (30 - 30) / 100, 1.0])
    a, b, c = d @ d, d @ np.array([0, 0, 500.0]), 500.0**2 - 50.0**2
    assert depth[30, 50] == pytest.approx((b - np.sqrt(b * b - a * c)) / a, abs=1e-3)
    # silhouette radius = f * r / sqrt(z^2 - r^2) = 10.05 px
    row = depth[30] > 0
    assert row.sum() == 21  # pixels 30..50
    assert set(np.unique(part)) == {-1, 0}


def test_capsule_and_ellipsoid_fronts():
    intr = Intrinsics(100.0, 100.0, 40.0, 30.0, 81, 61)
    cap = _geom(
        spheres=[[-60, 0, 400, 10], [60, 0, 400, 10]], capsules=[[-60, 0, 400, 60, 0, 400, 10]]
    )
    depth, part = render_geometry(cap, intr)
    assert depth[30, 40] == pytest.approx(390.0, abs=1e-3)
    assert part[30, 40] == 2  # the cylinder, not an end sphere
    assert depth[30, 25] > 0 and depth[20, 40] == 0  # long along x, thin along y
    ell = _geom(ellipsoids=[([0, 0, 600], np.eye(3), [80, 20, 30])])
    depth, _ = render_geometry(ell, intr)
    assert depth[30, 40] == pytest.approx(570.0, abs=1e-3)
    assert depth[30, 40 + 12] > 0 and depth[30 + 5, 40] == 0  # 80 mm wide, 20 mm tall


def test_planes():
    intr = Intrinsics(100.0, 100.0, 40.0, 30.0, 81, 61)
    wall = render_planes(np.array([[0, 0, 1, 800.0]]), intr, max_depth_mm=2000)
    assert np.all(wall == 800.0)
    assert np.all(render_planes(np.array([[0, 0, 1, 800.0]]), intr, max_depth_mm=700) == 0)
    n = np.array([0.0, 1.0, 1.0]) / np.sqrt(2)
    floor = render_planes(np.array([[*n, 300.0]]), intr, max_depth_mm=5000)
    v = 50
    expected = 300.0 / (n @ np.array([0.0, (v - 30) / 100, 1.0]))
    assert floor[v, 10] == pytest.approx(expected, rel=1e-5)


# ----------------------------------------------------------------- hand model


def test_adult_proportions():
    shape = HandShape()
    assert 180.0 <= shape.hand_length_mm() <= 200.0
    for radii in (*shape.radii, shape.thumb_radii[1:]):
        for r in radii:
            assert 6.5 <= r <= 10.0  # finger widths 13..20 mm
    g = pose_hand(GESTURES["open"])
    tip = g.joints[SK.index("middle_tip")]
    assert 180.0 <= np.linalg.norm(tip - g.joints[0]) <= 200.0


def _bone_lengths(joints):
    return np.array([np.linalg.norm(joints[c] - joints[p]) for p, c in SK.bones()])


def test_bone_lengths_rigid_and_within_limits():
    rest = _bone_lengths(pose_hand(GESTURES["open"]).joints)
    rng = np.random.default_rng(0)
    for _ in range(30):
        a = sample_articulation(rng)
        assert np.all(a >= LIMITS_DEG[:, 0]) and np.all(a <= LIMITS_DEG[:, 1])
        np.testing.assert_allclose(_bone_lengths(pose_hand(a).joints), rest, atol=1e-9)
    for (p, c), length in zip(SK.bones(), rest):
        if p == 0:  # wrist to the five finger roots (thumb root is shorter)
            assert (25.0 if c == 1 else 70.0) <= length <= 100.0
        else:  # phalanges and the thumb metacarpal
            assert 15.0 <= length <= 50.0, (SK.joint_names[c], length)


def _angle_deg(a, b):
    return np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


def test_flexion_respects_limits():
    a = LIMITS_DEG[:, 1].copy()  # everything at its upper limit
    j = pose_hand(a).joints
    for f in ("index", "middle", "ring", "pinky"):
        mcp, pip, dip, tip = (j[SK.index(f"{f}_{p}")] for p in ("mcp", "pip", "dip", "tip"))
        assert _angle_deg(pip - mcp, dip - pip) == pytest.approx(
            LIMITS_DEG[PARAM_NAMES.index(f"{f}_pip"), 1]
        )
        assert _angle_deg(dip - pip, tip - dip) == pytest.approx(
            LIMITS_DEG[PARAM_NAMES.index(f"{f}_dip"), 1]
        )
    # flexion bends towards the palm (+z in the hand frame)
    flexed = np.zeros(NUM_PARAMS)
    flexed[PARAM_NAMES.index("index_mcp")] = 60.0
    j = pose_hand(flexed).joints
    assert j[SK.index("index_tip"), 2] > 30.0


def test_thumb_opposition_reaches_index():
    j = pose_hand(GESTURES["pinch"]).joints
    assert np.linalg.norm(j[SK.index("thumb_tip")] - j[SK.index("index_tip")]) < 25.0
    j = pose_hand(GESTURES["open"]).joints
    assert np.linalg.norm(j[SK.index("thumb_tip")] - j[SK.index("index_tip")]) > 60.0


def test_capsule_ends_are_covered_by_spheres():
    """The renderer draws only cylinder sides: every end needs a sphere at least as wide."""
    rng = np.random.default_rng(3)
    for a in [GESTURES["fist"], *(sample_articulation(rng) for _ in range(5))]:
        g = pose_hand(a)
        for cap in g.capsules:
            for end in (cap[0:3], cap[3:6]):
                dist = np.linalg.norm(g.spheres[:, :3] - end, axis=1)
                assert np.any((dist < 1e-6) & (g.spheres[:, 3] >= cap[6] - 1e-9))


def test_orientation_filter():
    assert orientation_ok(PALM_VIEW) and orientation_ok(BACK_VIEW)
    assert not orientation_ok(BACK_VIEW, palm_view_max_deg=90.0)
    towards_camera = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # hand -y -> camera -z
    assert not orientation_ok(towards_camera)


# ----------------------------------------------------------------- rendered hands


def _render(state, **cfg):
    gen = SyntheticHandGenerator(SynthConfig(**SMALL, **CLEAN, background="none", **cfg))
    return gen.render_state(state, np.random.default_rng(0))


def test_joints_project_onto_rendered_hand():
    gen = SyntheticHandGenerator(SynthConfig(**SMALL, **CLEAN, background="none", seed=7))
    checked = 0
    for i in range(12):
        f = gen.frame(i)
        uv = np.rint(project_np(f.joints_mm, f.intrinsics)).astype(int)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < 160) & (uv[:, 1] >= 0) & (uv[:, 1] < 120)
        d = f.depth_mm[uv[inside, 1], uv[inside, 0]]
        assert np.all(d > 0), f"frame {i}: joint off the silhouette"
        # the visible surface is never behind a joint's centre
        assert np.all(d <= f.joints_mm[inside, 2] + 1e-3)
        checked += inside.sum()
    assert checked > 200


def test_visible_joints_sit_on_the_surface():
    state = HandState(np.array(GESTURES["open"]), PALM_VIEW, np.array([0.0, 0.0, 400.0]), 1.0)
    f = _render(state)
    assert all(f.meta["visible"])
    geom = place_hand(state)
    for name in ("index_tip", "middle_tip", "ring_tip", "pinky_tip"):
        j = SK.index(name)
        u, v = np.rint(project_np(f.joints_mm[j], f.intrinsics)).astype(int)
        assert f.depth_mm[v, u] == pytest.approx(f.joints_mm[j, 2] - geom.joint_radius[j], abs=1.0)


def _surface_gap(frame, joints):
    """How far in front of each joint's centre the visible surface at its pixel is (mm)."""
    uv = np.rint(project_np(frame.joints_mm[joints], frame.intrinsics)).astype(int)
    return frame.joints_mm[joints, 2] - frame.depth_mm[uv[:, 1], uv[:, 0]]


def test_fist_occlusion_from_front_and_back():
    centre = np.array([0.0, 0.0, 450.0])
    front = _render(HandState(np.array(GESTURES["fist"]), PALM_VIEW, centre, 1.0))
    back = _render(HandState(np.array(GESTURES["fist"]), BACK_VIEW, centre, 1.0))
    fingers = ("index", "middle", "ring", "pinky")
    tips = [SK.index(f"{f}_tip") for f in fingers]
    knuckles = [SK.index(f"{f}_mcp") for f in fingers]
    radius = place_hand(HandState(np.array(GESTURES["fist"]), BACK_VIEW, centre, 1.0)).joint_radius
    # from the back: the knuckles are on the surface, the curled fingertips behind the hand
    assert np.all(_surface_gap(back, knuckles) < radius[knuckles] + 1.0)
    assert np.all(_surface_gap(back, tips) > 20.0)
    assert [back.meta["visible"][j] for j in knuckles] == [True] * 4
    assert not any(back.meta["visible"][j] for j in tips)
    # from the palm side: the curled fingers hide the knuckles
    assert np.all(_surface_gap(front, knuckles) > 20.0)
    assert not any(front.meta["visible"][j] for j in knuckles)


def test_background_never_covers_the_hand():
    for kind in ("wall", "table"):
        gen = SyntheticHandGenerator(SynthConfig(**SMALL, **CLEAN, background=kind, seed=3))
        for i in range(6):
            rng = np.random.default_rng([3, 0, i])
            state = gen.sample_state(rng)
            geom = place_hand(state)
            hand, part = render_geometry(geom, gen.intrinsics)
            f = gen.frame(i)
            # frame(i) uses the same stream: same state, so hand pixels must be identical
            np.testing.assert_allclose(f.joints_mm, geom.joints, atol=1e-4)
            # the far forearm may pass through a wall or table; the hand never
            on_hand = (part >= 0) & ~geom.forearm_mask()[part]
            np.testing.assert_allclose(f.depth_mm[on_hand], hand[on_hand], atol=1e-3)
            assert (f.depth_mm > 0).sum() > on_hand.sum()  # the plane shows somewhere


def test_sensor_effects():
    clean = np.zeros((40, 50), dtype=np.float32)
    clean[10:30, 10:40] = 500.0
    edges = silhouette_edges(clean, 20.0)
    assert edges.sum() == 2 * 20 + 2 * 28  # the ring of the rectangle
    rng = np.random.default_rng(0)
    out = apply_sensor_effects(clean, rng, 2.0, 1.0, 20.0, 0.0, quantize=False)
    assert np.all(out[edges] == 0) and np.all(out[~edges & (clean > 0)] > 0)
    noise = out[~edges & (clean > 0)] - 500.0
    assert 1.6 < noise.std() < 2.4  # sigma at 500 mm
    q = apply_sensor_effects(clean, rng, 0.0, 0.0, 20.0, 0.0, quantize=True)
    assert q.dtype == np.uint16 and np.array_equal(q, clean.astype(np.uint16))


# ----------------------------------------------------------------- determinism, sequences


def test_same_seed_same_bytes_independent_of_order():
    cfg = SynthConfig(**SMALL, seed=11)
    a = SyntheticHandGenerator(cfg)
    b = SyntheticHandGenerator(SynthConfig(**SMALL, seed=11))
    f3 = a.frame(3)
    _ = b.frame(5)
    g3 = b.frame(3)
    assert f3.depth_mm.dtype == np.uint16
    assert f3.depth_mm.tobytes() == g3.depth_mm.tobytes()
    assert f3.joints_mm.tobytes() == g3.joints_mm.tobytes()
    other = SyntheticHandGenerator(SynthConfig(**SMALL, seed=12)).frame(3)
    assert not np.array_equal(other.joints_mm, f3.joints_mm)


def test_sequence_is_smooth_and_deterministic():
    cfg = SynthConfig(**SMALL, seed=2, background="wall")
    frames = list(sample_sequence(cfg, 25, keyframe_interval=10))
    assert len(frames) == 25
    joints = np.stack([f.joints_mm for f in frames])
    step = np.linalg.norm(np.diff(joints, axis=0), axis=-1).max()
    assert step < 40.0
    assert np.linalg.norm(joints[-1] - joints[0], axis=-1).max() > 5.0  # it does move
    again = list(sample_sequence(cfg, 25, keyframe_interval=10))
    assert all(np.array_equal(x.depth_mm, y.depth_mm) for x, y in zip(frames, again))
    assert len({json.dumps(f.meta["background"]) for f in frames}) == 1  # one fixed wall


# ----------------------------------------------------------------- on-disk round trip


def test_write_and_read_back(tmp_path):
    cfg = SynthConfig(**SMALL, seed=5)
    n = write_dataset(tmp_path / "ds", cfg, 3, progress=False)
    assert n == 3
    ds = SyntheticDataset(tmp_path / "ds")
    gen = SyntheticHandGenerator(cfg)
    assert len(ds) == 3 and ds.skipped == [] and ds.config == cfg
    for i in range(3):
        f, g = ds[i], gen.frame(i)
        assert np.array_equal(f.depth_mm, g.depth_mm)
        np.testing.assert_allclose(f.joints_mm, g.joints_mm, atol=1e-3)
        assert f.intrinsics == g.intrinsics and f.skeleton is SK
        assert f.meta["visible"] == g.meta["visible"]
    (tmp_path / "ds" / "depth" / "000001.png").unlink()
    with pytest.raises(DatasetError, match="000001.png"):
        SyntheticDataset(tmp_path / "ds")
    ds = SyntheticDataset(tmp_path / "ds", on_missing="skip")
    assert len(ds) == 2 and len(ds.skipped) == 1 and "000001.png" in ds.skipped[0][0]
    ann = tmp_path / "ds" / "annotations.jsonl"
    ann.write_text("\n".join(ann.read_text().splitlines()[:2]) + "\n")
    with pytest.raises(DatasetError, match="meta.json says 3"):
        SyntheticDataset(tmp_path / "ds", on_missing="skip")
    (tmp_path / "ds" / "meta.json").unlink()
    with pytest.raises(DatasetError, match="meta.json"):
        SyntheticDataset(tmp_path / "ds")


def test_cli_synth(tmp_path):
    assert cli_main(["synth", "--out", str(tmp_path / "s"), "--frames", "2", "--seed", "4",
                     "--no-progress", "--background", "none"]) == 0  # fmt: skip
    ds = SyntheticDataset(tmp_path / "s")
    assert len(ds) == 2 and ds[0].depth_mm.shape == (480, 640)
    assert ds.config.seed == 4 and ds.config.background == "none"
