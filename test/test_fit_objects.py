"""The fit next to things that are not the hand: an object beside or in front of it, a wall.

Synthetic v1 hands (seed 3) with a sphere or a wall added to their depth (the nearer
surface per pixel, a ray-cast sphere), fitted from the true joints plus 5 mm of noise:
the object-aware fit (``FitConfig()``: gate, plane, unexplained points dropped) against
the fit without those parts (``UNAWARE``: the fit before them). Errors are averaged over
six frames, so no single frame decides. Then the safeguard's "unexplained" rule on v3 frames
(hands holding things) and the bench's rows per fitted side.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from vvhand_core.benchmarks import fit_objects
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.fit import FitConfig, bench, fit_hand
from vvhand_core.fit.planes import dominant_plane, on_plane
from vvhand_core.fit.problem import MIN_EXPLAINED, SideProblem, drop_unexplained
from vvhand_core.fit.terms import pack

UNAWARE = FitConfig(gate_mm=40.0, explain_mm=0.0, plane_mm=0.0)
INDEX = [6, 7, 8]  # index PIP, DIP, tip
MIDDLE_RING = [10, 11, 12, 14, 15, 16]
NODE_LIMIT_MM = 5.0  # the node's default fit_max_residual_mm


@pytest.fixture(scope="module")
def hands():
    """(frame, joints (21, 3), start joints) of six v1 frames."""
    gen = SyntheticHandGenerator(SynthConfig(seed=3))
    out = []
    for i in range(6):
        f = gen.frame(i)
        joints = np.asarray(f.joints_mm, np.float64)
        out.append((f, joints, bench.noisy_joints(joints, 5.0, np.random.default_rng(i))))
    return out


def sphere_depth(intr, shape: tuple[int, int], centre: np.ndarray, radius: float) -> np.ndarray:
    """Depth (mm) of a sphere seen by the camera, inf where its rays miss it."""
    v, u = np.mgrid[0:shape[0], 0:shape[1]]
    ray = np.stack([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, np.ones(shape)], -1)
    rr, rc = (ray * ray).sum(-1), ray @ centre
    disc = rc * rc - rr * (centre @ centre - radius * radius)
    return np.where(disc > 0, (rc - np.sqrt(np.maximum(disc, 0.0))) / rr, np.inf)


def nearer(depth_mm: np.ndarray, other_mm: np.ndarray) -> np.ndarray:
    """The nearer valid surface per pixel (0 where neither is)."""
    both = np.minimum(np.where(depth_mm > 0, depth_mm, np.inf), other_mm)
    return np.where(np.isfinite(both), both, 0.0).astype(np.float32)


def joint_error(fit, joints: np.ndarray, which) -> float:
    return float(np.linalg.norm(fit.joints_mm[which] - joints[which], axis=1).mean())


def test_an_object_beyond_the_fingertip_does_not_pull_the_finger(hands):
    """A ball 3 mm beyond the index tip: the unexplained ball must not stretch the finger.

    Nor does it make the hand look like a phantom: the fit residual hardly rises.
    """
    errors = {"aware": [], "unaware": [], "kept": []}
    rise = []
    for f, joints, start in hands:
        along = (joints[8] - joints[7]) / np.linalg.norm(joints[8] - joints[7])
        depth = nearer(f.depth_mm, sphere_depth(f.intrinsics, f.depth_mm.shape,
                                                joints[8] + 33.0 * along, 30.0))
        for name, cfg in (("aware", FitConfig()), ("unaware", UNAWARE),
                          ("kept", FitConfig(explain_mm=0.0))):
            fit = fit_hand(depth, f.intrinsics, start, config=cfg)
            errors[name].append(joint_error(fit, joints, INDEX))
            if name == "aware":
                rise.append(fit.residual_mm - fit_hand(f.depth_mm, f.intrinsics,
                                                       start).residual_mm)
    aware, unaware, kept = (float(np.mean(v)) for v in errors.values())
    assert aware < 0.6 * unaware
    assert aware < kept - 0.5  # dropping the unexplained points is what holds the finger
    assert np.mean(rise) < 0.6  # the residual's quantile leaves the ball's points out


def test_an_occluder_in_front_does_not_pull_the_fingers_forward(hands):
    """A ball in front of the middle and ring fingers hides them: they stay where they are."""
    errors, shift = {"aware": [], "unaware": []}, {"aware": [], "unaware": []}
    for f, joints, start in hands:
        centre = joints[[10, 11, 14, 15]].mean(0) - [0.0, 0.0, 45.0]  # toward the camera
        depth = nearer(f.depth_mm, sphere_depth(f.intrinsics, f.depth_mm.shape, centre, 25.0))
        for name, cfg in (("aware", FitConfig()), ("unaware", UNAWARE)):
            fit = fit_hand(depth, f.intrinsics, start, config=cfg)
            errors[name].append(joint_error(fit, joints, MIDDLE_RING))
            shift[name].append(float((fit.joints_mm[MIDDLE_RING, 2]
                                      - joints[MIDDLE_RING, 2]).mean()))
    assert np.mean(errors["aware"]) < np.mean(errors["unaware"]) - 2.0
    assert np.mean(shift["unaware"]) < -2.0 < np.mean(shift["aware"])  # pulled toward it


def test_a_wall_behind_the_hand_is_not_taken_for_it(hands):
    """A wall 8 mm behind the farthest joint: its points lie on a plane, not on the hand.

    The hand is kept (residual under the node's limit), as a hand touching a table is.
    """
    errors = {"aware": [], "unaware": [], "no plane": []}
    residual = []
    for f, joints, start in hands:
        depth = nearer(f.depth_mm, np.full(f.depth_mm.shape, joints[:, 2].max() + 8.0))
        for name, cfg in (("aware", FitConfig()), ("unaware", UNAWARE),
                          ("no plane", FitConfig(plane_mm=0.0))):
            fit = fit_hand(depth, f.intrinsics, start, config=cfg)
            errors[name].append(bench.frame_error_mm(fit.joints_mm, joints))
            if name == "aware":
                residual.append(fit.residual_mm)
    aware, unaware, no_plane = (float(np.mean(v)) for v in errors.values())
    assert aware < 0.5 * unaware and aware < no_plane - 0.7
    assert max(residual) < NODE_LIMIT_MM


def test_a_hand_model_on_a_bare_wall_is_a_phantom(hands):
    """No hand at all, joints on a wall: the residual stays above the node's limit."""
    for f, joints, start in hands:
        wall = np.full(f.depth_mm.shape, joints[:, 2].mean(), np.float32)
        assert fit_hand(wall, f.intrinsics, start).residual_mm > 2 * NODE_LIMIT_MM


def test_fits_without_objects_converge_as_before(hands):
    """Plain v1 frames: the object-aware fit is as good as the fit without those parts."""
    aware, unaware, dropped = [], [], []
    for f, joints, start in hands:
        fit = fit_hand(f.depth_mm, f.intrinsics, start)
        aware.append(bench.frame_error_mm(fit.joints_mm, joints))
        dropped.append(fit.residual_terms["dropped"])
        unaware.append(bench.frame_error_mm(
            fit_hand(f.depth_mm, f.intrinsics, start, config=UNAWARE).joints_mm, joints))
    assert np.mean(aware) < np.mean(unaware) + 0.3 and np.mean(aware) < 2.0
    assert np.mean(start_error(hands)) > 3 * np.mean(aware)
    assert max(dropped) < 0.15  # a hand the model explains keeps its points


def start_error(hands) -> list[float]:
    return [bench.frame_error_mm(start, joints) for _, joints, start in hands]


def test_dominant_plane_finds_the_table_and_only_with_support():
    rng = np.random.default_rng(1)
    table = np.column_stack([rng.uniform(-150, 150, (400, 2)), np.full(400, 600.0)])
    table[:, 2] += 0.3 * table[:, 0] + rng.normal(0, 0.5, 400)  # tilted, a little noise
    blob = rng.normal([0, 0, 560], 15, (150, 3))  # something standing on it
    plane = dominant_plane(np.vstack([table, blob]), 4.0, 0.3)
    assert plane is not None
    centre, normal = plane
    expected = np.array([-0.3, 0.0, 1.0]) / np.linalg.norm([-0.3, 0.0, 1.0])
    assert abs(abs(normal @ expected) - 1.0) < 1e-3
    assert on_plane(table, plane, 4.0).mean() > 0.95 and on_plane(blob, plane, 4.0).mean() < 0.3
    assert dominant_plane(np.vstack([table[:40], blob]), 4.0, 0.3) is None  # too little of it
    assert dominant_plane(table[:20], 4.0, 0.3) is None  # too few points to look
    assert not on_plane(blob, None, 4.0).any()


def test_unexplained_points_are_dropped_and_the_rest_keep_their_weight(hands):
    f, joints, start = hands[0]
    fit = fit_hand(f.depth_mm, f.intrinsics, start)  # a posed model to measure against
    from vvhand_core.fit.fit import _shape

    shape = _shape(FitConfig())
    x = pack(np.zeros(3), fit.translation_mm, fit.scale, fit.angles_deg, fit.finger_lengths)
    near = fit.joints_mm[[4, 8, 12]].astype(np.float64)  # on the model's axes: explained
    far = near + [0.0, 0.0, -40.0]
    pts = np.vstack([np.repeat(near, 4, axis=0), far])
    p = SideProblem(fit.side, x, x, fit.rotation, 0.0, None, pts, None, 0, count=len(pts))
    p.obs = object()  # observed: the points are all drop_unexplained reads
    p.depth_costs[b"x"] = 1.0
    drop_unexplained(p, shape, 12.0)
    assert len(p.pts) == 12 and p.dropped == 3 and p.count == 15 and not p.depth_costs
    p2 = SideProblem(fit.side, x, x, fit.rotation, 0.0, object(), pts[-(MIN_EXPLAINED + 2):],
                     None, 0, count=MIN_EXPLAINED + 2)
    drop_unexplained(p2, shape, 12.0)  # too few would be left: all kept
    assert len(p2.pts) == MIN_EXPLAINED + 2 and p2.dropped == 0


def test_the_start_cost_after_dropping_is_the_start_evaluated_on_the_points_kept(hands):
    """The safeguard's IK-start cost on the points kept, from its residuals per point."""
    from vvhand_core.fit.fit import _shape
    from vvhand_core.fit.problem import refine, start

    f, joints, start_joints = hands[1]
    cfg = FitConfig(side="right")
    shape = _shape(cfg)
    conf = np.ones(21)
    depth = nearer(f.depth_mm, np.full(f.depth_mm.shape, joints[:, 2].max() + 8.0))
    p = start(depth, f.intrinsics, start_joints, conf, "right", shape, cfg, None, None)
    args = (start_joints, conf, shape, cfg.weights)
    refine(p, *args, 6, cfg.scale_range, None, None, cfg.finger_length_range)
    drop_unexplained(p, shape, 1.0)  # a tight threshold: some points go
    assert p.dropped > 0 and len(p.pts) >= MIN_EXPLAINED
    stored = p.depth_cost(p.x_ik)
    p.depth_costs.clear()
    calls = p.calls
    refine(p, *args, 1, cfg.scale_range, None, None, cfg.finger_length_range)
    assert p.calls == calls + 2  # the LM's one call, then the start evaluated again
    assert stored == pytest.approx(p.depth_cost(p.x_ik), rel=1e-9)


@pytest.fixture(scope="module")
def held():
    """Frames 1, 4, 7 and 9 of the v3 tuning split (seed 7): hands holding or near things."""
    gen = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=7))
    return [gen.frame(i) for i in (1, 4, 7, 9)]


def collapsed(joints: np.ndarray) -> np.ndarray:
    """Joints that no hand reaches: averaged with their own point mirror through the centre."""
    centre = joints.mean(0)
    return 0.5 * joints + 0.5 * (2 * centre - joints)


def test_joints_no_hand_reaches_and_unexplained_depth_give_the_network_back(held):
    """Neither the joints (far from the IK model) nor the depth (residual) show a hand.

    Without that rule (``guard_start_mm=0``) the fit from such joints lands in a pose
    worse than the joints it started from; with it, the start comes back ("unexplained").
    """
    worse = []
    for f in held:
        joints = np.asarray(f.joints_mm, np.float64)
        start = collapsed(joints)
        fit = fit_hand(f.depth_mm, f.intrinsics, start)
        assert fit.fallback == "unexplained" and fit.fell_back
        assert np.allclose(fit.joints_mm, start, atol=1e-3)
        off = fit_hand(f.depth_mm, f.intrinsics, start, config=FitConfig(guard_start_mm=0))
        terms = off.residual_terms
        assert off.fallback == ""
        assert terms["start_joints_mm"] > FitConfig().guard_start_mm
        assert terms["data_mm"] > FitConfig().guard_residual_mm
        worse.append(bench.frame_error_mm(off.joints_mm, joints)
                     - bench.frame_error_mm(start, joints))
    assert min(worse) > 0 and np.mean(worse) > 5.0


def test_a_hand_start_near_the_truth_is_not_refused(held):
    """The same frames from the true joints plus 10 mm of noise: the fits are kept."""
    before, after = [], []
    for i, f in enumerate(held):
        joints = np.asarray(f.joints_mm, np.float64)
        start = bench.noisy_joints(joints, 10.0, np.random.default_rng(i))
        fit = fit_hand(f.depth_mm, f.intrinsics, start)
        assert fit.fallback == ""
        before.append(bench.frame_error_mm(start, joints))
        after.append(bench.frame_error_mm(fit.joints_mm, joints))
    assert np.mean(after) < np.mean(before)


def test_the_groups_count_the_frames_fitted_as_the_wrong_side():
    """``fit_objects.group_rows``: one row for the frames fitted as their side, one for not."""
    frames = [SimpleNamespace(meta={"placement": "overhead", "grasp": "power", "side": s})
              for s in ("right", "left", "left")]
    fits = [SimpleNamespace(side=s) for s in ("right", "right", "left")]
    out = {"per_frame": {"before_mm": np.array([10.0, 20.0, 30.0]),
                         "after_mm": np.array([8.0, 26.0, 27.0])}, "fits": fits}
    rows = {r[1]: r for r in fit_objects.group_rows("s", frames, out)}
    assert rows["fitted side: wrong"][2:4] == [1, 20.0]
    assert rows["fitted side: right"][2] == 2 and rows["fitted side: right"][5] == 17.5
    assert list(rows)[-2:] == ["fitted side: right", "fitted side: wrong"]
