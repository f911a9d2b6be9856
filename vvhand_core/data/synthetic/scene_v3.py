"""Scene version 3: hands that hold and touch things at a table, seen from three places.

One frame, drawn from ``rng`` in a fixed order (world frame and cameras: :mod:`placements`):
a camera model, a placement (third person, egocentric, overhead), the person (build,
shoulders, torso facing the table), the shown hand's side, shape and size (both hands of
a person share them, mirrored), its grasp (:mod:`grasps`: power, spherical, pinch,
tripod, lateral, hook with a held object; flat on the table; pressing a button; or empty),
its arm by two-link IK from the shoulder, in ``TWO_HANDS_PROB`` of frames the other hand
with a grasp of its own, a table (a wide flat ellipsoid whose near edge lies in front of
the person) with clutter near the hand, a floor or wall, the camera, and a sensor model.

Every hand in view is labelled (``meta["hands"]``: side, joints, centre, per-joint
visibility, grasp, object); hand 0 is the shown hand and its joints are the frame's
``joints_mm``. Per-joint visibility (``VISIBILITY``): ``visible``, hidden by an ``object``
(held or on the table), by the hand itself (``self``), by anything ``other`` (the other
hand, an arm, the body), or ``outside`` the image.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vvhand_core.camera import Intrinsics, project_np
from vvhand_core.data.synthetic.camera_sampling import sample_camera
from vvhand_core.data.synthetic.grasps import Grasp, object_sdf, sample_grasp
from vvhand_core.data.synthetic.hand_model import PARAM_NAMES, HandGeometry
from vvhand_core.data.synthetic.person import (
    HAND_SCALE_RANGE,
    forearm_axis,
    primitives,
    rotation_about,
    rotation_between,
    sample_body,
    sample_hand_shape,
)
from vvhand_core.data.synthetic.placements import (
    PLACEMENT_PROBS,
    PLACEMENTS,
    UP,
    camera_pose,
    elbow_ik,
    look_at,
    plane_to_camera,
    table_top_z,
    unit,
    up_hint,
)
from vvhand_core.data.synthetic.raycast import VISIBILITY_TOLERANCE_MM, ray_depths
from vvhand_core.data.synthetic.scene_v2 import posed_hand
from vvhand_core.data.synthetic.sensor_models import SensorModel, sample_sensor

LABELS = {"none": 0, "hand": 1, "arm": 2, "torso": 3, "second_hand": 4, "objects": 5,
          "wall": 6, "table": 7, "held_object": 8, "floor": 9}  # fmt: skip
VISIBILITY = ("visible", "object", "self", "other", "outside")
TWO_HANDS_PROB = 0.6
CLUTTER_PROB = 0.7
_TRIES = 12
_WRIST_FLEX = PARAM_NAMES.index("wrist_flex")
_WRIST_DEV = PARAM_NAMES.index("wrist_dev")


@dataclass
class PlacedHand:
    """One hand of the person in W: geometry, held object, arm, grasp, side."""

    left: bool
    grasp: Grasp
    hand: HandGeometry
    held: HandGeometry | None
    arm: HandGeometry
    center_mm: np.ndarray


@dataclass
class SceneSpecV3:
    """Everything one v3 frame shows, drawn but not rendered (camera frame, mm)."""

    intr: Intrinsics
    placement: str
    hands: list[PlacedHand]
    body: HandGeometry
    table: HandGeometry
    clutter: HandGeometry | None
    planes: np.ndarray
    plane_labels: list[int]
    sensor: SensorModel
    meta: dict


def _forearm_axis(art: np.ndarray, left: bool) -> np.ndarray:
    """Unit wrist -> elbow direction in the hand frame (``hand_model.pose_hand``'s r_fore)."""
    flex, dev = np.radians(art[_WRIST_FLEX]), np.radians(art[_WRIST_DEV])
    axis = np.array([np.sin(dev), -np.cos(dev) * np.cos(flex), np.cos(dev) * np.sin(flex)])
    return axis * [-1.0, 1.0, 1.0] if left else axis


def _palm_down_rotation(axis_local: np.ndarray, forearm_dir: np.ndarray) -> np.ndarray:
    """Hand rotation: the forearm along -``forearm_dir``, then rolled palm (+z) down."""
    a = -forearm_dir
    r0 = rotation_between(axis_local, a)
    n0 = r0 @ np.array([0.0, 0.0, 1.0])
    n0p, wp = n0 - a * (a @ n0), -UP - a * (a @ -UP)
    if np.linalg.norm(wp) < 1e-6:
        return r0
    return rotation_about(a, float(np.arctan2(a @ np.cross(n0p, wp), n0p @ wp))) @ r0


def _place_hand(rng, grasp: Grasp, shape, scale, left, body, shoulder, outward, table):
    """Pose one hand and its arm in W (None when it cannot be placed plausibly)."""
    sigma = 1.0 if not left else -1.0  # +x is the person's right
    flat = grasp.kind in ("flat", "press")
    wrist_t = shoulder + np.array([sigma * rng.uniform(-250.0, 120.0) - sigma * 80.0,
                                   rng.uniform(150.0, 480.0), 0.0])
    wrist_t[2] = 0.0 if flat else rng.uniform(60.0, 350.0)
    elbow, wrist = elbow_ik(shoulder, wrist_t, body.upper_arm_mm, body.forearm_mm, outward,
                            rng.uniform(-10.0, 50.0))  # fmt: skip
    forearm_dir = unit(wrist - elbow)
    art = grasp.articulation_deg.copy()
    if flat:  # the wrist extends until the palm faces the table
        best = None
        for flex in (-50.0, -35.0, -20.0, -5.0, 10.0):
            art[_WRIST_FLEX] = flex + rng.uniform(-5, 5)
            rot = _palm_down_rotation(_forearm_axis(art, left), forearm_dir)
            tilt = np.degrees(np.arccos(np.clip(-(rot @ [0.0, 0.0, 1.0])[2], -1, 1)))
            if best is None or tilt < best[0]:
                best = (tilt, art.copy(), rot)
        if best[0] > 30.0:
            return None
        _, art, rot = best
        local = posed_hand(art, shape, scale, left, body.forearm_mm)
    else:
        art[_WRIST_FLEX] = rng.uniform(-30, 30)
        local = posed_hand(art, shape, scale, left, body.forearm_mm)
        r0 = rotation_between(forearm_axis(local), -forearm_dir)
        rot = rotation_about(-forearm_dir, rng.uniform(0, 2 * np.pi)) @ r0
    hand = local.transformed(rot, wrist - rot @ local.joints[0])
    held = None
    if grasp.held is not None:
        obj = grasp.held.mirrored() if left else grasp.held
        held = obj.transformed(rot, wrist - rot @ local.joints[0])
    # down to the table (flat, press: touching it; held: above it, or resting on it)
    keep = ~hand.forearm_mask()
    low = -replace(hand, is_forearm=~keep).support(-UP, forearm_keep_mm=0.0)
    if held is not None:
        low = min(low, -held.support(-UP, forearm_keep_mm=np.inf))
    top = table_top_z(wrist[:2], *table)
    if not np.isfinite(top):
        return None
    if flat:
        lift = top + 0.5 - low
    elif low < top + 5.0:
        lift = top + rng.uniform(5.0, 80.0) - low
    else:
        lift = 0.0
    if grasp.kind in ("power", "spherical") and rng.random() < 0.35:
        lift = top + 0.5 - low  # the bottle or ball still stands on the table
    shift = np.array([0.0, 0.0, lift])
    hand = hand.transformed(np.eye(3), shift)
    held = None if held is None else held.transformed(np.eye(3), shift)
    elbow = elbow + shift
    upper = np.linalg.norm(elbow - shoulder)
    if not 0.75 * body.upper_arm_mm <= upper <= 1.3 * body.upper_arm_mm:
        return None
    r_up = 40.0 * body.scale
    arm = primitives(spheres=[[*elbow, r_up], [*shoulder, 52.0 * body.scale]],
                     capsules=[[*elbow, *shoulder, r_up]])  # fmt: skip
    grasp = replace(grasp, articulation_deg=art)
    return PlacedHand(left, grasp, hand, held, arm, hand.joints.mean(axis=0))


def _apart(a: PlacedHand, b: PlacedHand) -> bool:
    """Whether two hands (and what they hold) stay >= 5 mm apart (joint spheres)."""
    for x, y in ((a, b), (b, a)):
        d = np.linalg.norm(x.hand.joints[:, None] - y.hand.joints[None], axis=2)
        if np.any(d < x.hand.joint_radius[:, None] + y.hand.joint_radius[None] + 5.0):
            return False
        if y.held is not None and np.any(object_sdf(y.held, x.hand.joints)
                                         < x.hand.joint_radius + 5.0):
            return False
    return True


def _body(rng, body, centre, lateral, facing, hands_used: set[bool], shoulders):
    """Torso, neck, head and the arms not placed (hanging down), in W."""
    s = body.scale
    top = centre + UP * body.shoulder_height_mm
    rb = np.stack([lateral, -UP, facing], axis=1)  # torso semi-axes along these columns
    spheres, caps = [[*(top + UP * 40 * s), 50.0 * s]], []
    for left, sh in shoulders.items():
        if left in hands_used:
            continue
        elbow = sh - UP * body.upper_arm_mm + facing * 40.0
        wrist = elbow - UP * body.forearm_mm * 0.6 + facing * body.forearm_mm * 0.7
        spheres += [[*sh, 52.0 * s], [*elbow, 40.0 * s], [*wrist, 32.0 * s]]
        caps += [[*sh, *elbow, 40.0 * s], [*elbow, *wrist, 32.0 * s]]
    head = top + UP * (body.head_radius_mm + 90.0 * s)
    ells = [(centre, rb, body.torso_semi_mm), (head, rb, np.array([0.85, 1.15, 1.0])
                                                 * body.head_radius_mm)]
    return primitives(spheres, caps, ells), head


def sample_scene_v3(config, rng: np.random.Generator) -> SceneSpecV3:
    """Draw one v3 scene from ``rng`` (``config``: a SynthConfig).

    A person, hand or camera that cannot be placed plausibly is drawn again (the whole
    scene, up to ``_TRIES`` times; RuntimeError after that, never seen in the tests).
    """
    for _ in range(_TRIES):
        spec = _sample_once(config, rng)
        if spec is not None:
            return spec
    raise RuntimeError(f"scene v3: no plausible scene in {_TRIES} draws")


def _sample_once(config, rng: np.random.Generator) -> SceneSpecV3 | None:
    if config.random_camera is False:
        intr, cam_meta = config.intrinsics(), {}
    else:
        intr, cam_meta = sample_camera(rng)
    placement = PLACEMENTS[int(rng.choice(len(PLACEMENTS), p=PLACEMENT_PROBS))]
    shape, shape_meta = sample_hand_shape(rng)
    scale = float(rng.uniform(*HAND_SCALE_RANGE))
    body = sample_body(rng, scale)
    yaw = np.radians(rng.uniform(-20.0, 20.0))
    facing = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
    lateral = np.cross(facing, UP)  # the person's right
    centre = np.array([0.0, 0.0, rng.uniform(280.0, 450.0) - body.shoulder_height_mm])
    top = centre + UP * body.shoulder_height_mm
    shoulders = {False: top + lateral * body.shoulder_half_width_mm,  # keyed by "left"
                 True: top - lateral * body.shoulder_half_width_mm}
    semi = np.array([rng.uniform(500, 900), rng.uniform(350, 600), 30.0])
    edge = rng.uniform(120.0, 260.0)
    table = (np.array([0.0, edge + semi[1], -semi[2]]), semi)
    left = bool(rng.random() < 0.5)
    hands: list[PlacedHand] = []
    grasp = sample_grasp(rng, shape, scale, None, config.gesture_prob, config.gesture_noise_deg)
    for _ in range(_TRIES):  # the grasp stays, its placement is drawn again
        placed = _place_hand(rng, grasp, shape, scale, left, body, shoulders[left],
                             lateral * (-1.0 if left else 1.0), table)  # fmt: skip
        if placed is not None:
            hands.append(placed)
            break
    if not hands:
        return None
    if rng.random() < TWO_HANDS_PROB:
        g2 = sample_grasp(rng, shape, scale, None, config.gesture_prob, config.gesture_noise_deg)
        for _ in range(8):
            other = _place_hand(rng, g2, shape, scale, not left, body, shoulders[not left],
                                lateral * (1.0 if left else -1.0), table)  # fmt: skip
            if other is not None and _apart(hands[0], other):
                hands.append(other)
                break
    body_geom, head = _body(rng, body, centre, lateral, facing, {h.left for h in hands},
                            shoulders)  # fmt: skip
    eye = head + facing * (body.head_radius_mm + 15.0) - UP * 10.0
    if placement == "egocentric":  # the head carries the camera: it is not rendered
        body_geom = replace(body_geom, ell_centers=body_geom.ell_centers[:1],
                            ell_rotations=body_geom.ell_rotations[:1],
                            ell_semi_axes=body_geom.ell_semi_axes[:1])  # fmt: skip
    return _view(rng, config, intr, cam_meta, placement, hands, body_geom, table, eye,
                 facing, shape_meta)  # fmt: skip


def _clutter(rng, hands: list[PlacedHand], table) -> HandGeometry | None:
    """1-4 things standing on the table near the shown hand, clear of hands and arms."""
    spheres, caps, ells = [], [], []
    c0 = hands[0].center_mm
    for _ in range(int(rng.integers(1, 5))):
        ang, dist = rng.uniform(0, 2 * np.pi), rng.uniform(80.0, 420.0)
        xy = c0[:2] + dist * np.array([np.cos(ang), np.sin(ang)])
        top = table_top_z(xy, *table)
        if not np.isfinite(top):
            continue
        kind = int(rng.integers(4))
        if kind == 0:  # upright bottle, cup or can
            r, hgt = rng.uniform(20, 45), rng.uniform(60, 220)
            p0, p1 = [*xy, top + r], [*xy, top + max(hgt - r, r + 1)]
            one = primitives([[*p0, r], [*p1, r]], [[*p0, *p1, r]])
        elif kind == 1:  # box
            semi = np.array([rng.uniform(30, 100), rng.uniform(30, 100), rng.uniform(15, 50)])
            rot = rotation_about([0, 0, 1], rng.uniform(0, np.pi))
            one = primitives(ellipsoids=[(np.array([*xy, top + semi[2]]), rot, semi)])
        elif kind == 2:  # ball or fruit
            r = rng.uniform(25, 60)
            one = primitives(spheres=[[*xy, top + r, r]])
        else:  # plate or book
            semi = np.array([rng.uniform(70, 120), rng.uniform(70, 120), rng.uniform(6, 20)])
            one = primitives(ellipsoids=[(np.array([*xy, top + semi[2]]),
                                          rotation_about([0, 0, 1], rng.uniform(0, np.pi)), semi)])
        clear = all(np.all(object_sdf(one, h.hand.joints) > h.hand.joint_radius + 10.0)
                    and np.all(object_sdf(one, h.arm.spheres[:, :3]) > h.arm.spheres[:, 3] + 10)
                    for h in hands)  # fmt: skip
        if clear and all(h.held is None or np.all(object_sdf(one, h.held.spheres[:, :3])
                                                  > h.held.spheres[:, 3] + 5) for h in hands):
            spheres += one.spheres.tolist()
            caps += one.capsules.tolist()
            ells += list(zip(one.ell_centers, one.ell_rotations, one.ell_semi_axes))
    return primitives(spheres, caps, ells) if (spheres or caps or ells) else None


def _to_cam(geom: HandGeometry | None, rot, pos):
    return None if geom is None else geom.transformed(rot, -rot @ pos)


def _view(rng, config, intr, cam_meta, placement, hands, body, table, eye, facing, meta):
    """Camera, clutter, planes and sensor; everything moved into the camera frame."""
    h0 = hands[0]
    for _ in range(_TRIES):
        pos = camera_pose(placement, rng, h0.center_mm, eye, facing)
        dist = np.linalg.norm(h0.center_mm - pos)
        if placement == "egocentric" and not 250.0 <= dist <= 600.0:
            # the head is where it is: move the camera along its ray within reach
            pos = h0.center_mm + unit(pos - h0.center_mm) * np.clip(dist, 260.0, 590.0)
        z = dist
        px = []
        for f, size in ((intr.fx, intr.width), (intr.fy, intr.height)):
            margin = min(max(0.1 * size, f * 80.0 * h0.hand.joint_radius[0] / 17.0 / z),
                         0.45 * size)
            px.append(rng.uniform(margin, size - 1 - margin))
        rot = look_at(pos, h0.center_mm, up_hint(placement, rng), px, intr,
                      rng.uniform(-8, 8) if placement != "overhead" else 0.0)
        moved = [replace(h, hand=_to_cam(h.hand, rot, pos), held=_to_cam(h.held, rot, pos),
                         arm=_to_cam(h.arm, rot, pos), center_mm=rot @ (h.center_mm - pos))
                 for h in hands]  # fmt: skip
        body_c, table_c = _to_cam(body, rot, pos), _to_cam(
            primitives(ellipsoids=[(table[0], np.eye(3), table[1])]), rot, pos)
        if pos[2] < table_top_z(pos[:2], *table) + 40.0:
            continue  # under the table top
        parts = [g for h in moved for g in (h.hand, h.arm, h.held) if g is not None] + [body_c]
        if min(object_sdf(g, np.zeros((1, 3)))[0] for g in parts) < 60.0:
            continue  # the camera inside or within 60 mm of something
        j = moved[0].hand.joints
        hidden = np.zeros(len(j), dtype=bool)
        for g in [body_c] + [h.arm for h in moved]:
            hidden |= ray_depths(g, j) < j[:, 2] - moved[0].hand.joint_radius
        if hidden.mean() > 0.5:
            continue
        break
    else:
        return None
    clutter = None
    if rng.random() < CLUTTER_PROB:
        clutter = _to_cam(_clutter(rng, hands, table), rot, pos)
    planes, labels = [], []
    floor = plane_to_camera(UP, -rng.uniform(650.0, 780.0), rot, pos)
    if floor is not None:
        planes.append(floor)
        labels.append(LABELS["floor"])
    if placement != "overhead" and rng.random() < 0.6:
        behind = -facing if placement == "third_person" else facing
        wall = plane_to_camera(behind, float(behind @ h0.center_mm) + rng.uniform(300, 1200),
                               rot, pos)  # fmt: skip
        if wall is not None:
            planes.append(wall)
            labels.append(LABELS["wall"])
    sensor = sample_sensor(rng, config.sensor, config.max_depth_mm)
    meta = {"camera": cam_meta, "camera_position_w": [round(float(x), 2) for x in pos],
            "up_cam": [round(float(x), 5) for x in rot @ UP]} | meta
    return SceneSpecV3(intr, placement, moved, body_c, table_c, clutter,
                       np.array(planes).reshape(-1, 4), labels, sensor, meta)


def joint_codes(joints: np.ndarray, radius: np.ndarray, depth: np.ndarray, labels: np.ndarray,
                intr: Intrinsics, own: int) -> list[str]:
    """Per joint one of ``VISIBILITY`` from the clean depth and label image.

    own: this hand's label. A joint is visible when the surface at its pixel is not nearer
    than its centre minus its radius minus ``VISIBILITY_TOLERANCE_MM``; otherwise the label
    in front says what hides it.
    """
    uv = np.rint(project_np(joints, intr)).astype(int)
    h, w = depth.shape
    codes = []
    for (u, v), p, r in zip(uv, joints, radius):
        if not (0 <= u < w and 0 <= v < h) or p[2] <= 0:
            codes.append("outside")
            continue
        d = depth[v, u]
        if d <= 0 or d >= p[2] - r - VISIBILITY_TOLERANCE_MM:
            codes.append("visible")
            continue
        lab = int(labels[v, u])
        codes.append("object" if lab in (LABELS["held_object"], LABELS["objects"])
                     else "self" if lab == own else "other")
    return codes
