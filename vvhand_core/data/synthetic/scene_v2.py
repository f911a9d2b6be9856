"""Scene version 2: a person showing a hand to a depth camera, with clutter.

One frame, all drawn from ``rng`` in a fixed order: a camera (``camera_sampling``), the
side (left / right, 50/50), the hand shape and size (``person.sample_hand_shape``,
overall scale 0.8-1.2), an articulation, the hand centre (depth 300-900 mm, projected
well inside the image), the person holding it (``person``: arm to the shoulder, torso,
head, the other arm), then in a share of frames a second hand (always >= 150 mm
farther than the labelled one, on the other side of the image near its border, with its
own forearm), objects near the image border, a wall behind everything or a table under
the hand, and a sensor model (``sensor_models``). The labelled hand is the nearest hand.

Every part is ray-cast exactly into one z-buffer restricted to each primitive's pixel
rectangle, with a label image (``LABELS``) saying which part each pixel shows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_core.data.base import DepthFrame
from vvhand_core.data.synthetic.camera_sampling import sample_camera
from vvhand_core.data.synthetic.hand_model import HandGeometry, HandShape, pose_hand
from vvhand_core.data.synthetic.person import (
    HAND_SCALE_RANGE,
    ArmPose,
    Body,
    PersonGeometry,
    build_person,
    hides_hand,
    min_depth_mm,
    primitives,
    sample_arm_pose,
    sample_body,
    sample_body_rotation,
    sample_hand_shape,
)
from vvhand_core.data.synthetic.poses import sample_articulation, sample_orientation
from vvhand_core.data.synthetic.raycast import (
    joint_visibility,
    ray_depths,
    ray_grid,
    splat_geometry,
    splat_planes,
)
from vvhand_core.data.synthetic.sensor import background_planes
from vvhand_core.data.synthetic.sensor_models import SensorModel, apply_sensor, sample_sensor
from vvhand_core.skeletons import HANDS2019_21

LABELS = {"none": 0, "hand": 1, "arm": 2, "torso": 3, "second_hand": 4, "objects": 5,
          "wall": 6, "table": 7}  # fmt: skip
DEPTH_RANGE_MM = (300.0, 900.0)  # labelled hand centre
SECOND_HAND_PROB = 0.3
OBJECTS_PROB = 0.35
SECOND_HAND_GAP_MM = (150.0, 500.0)  # second hand centre this much farther than the first
_HAND_RADIUS_MM = 70.0  # keeps the hand centre this far (x scale) from the image border
_TRIES = 12


@dataclass
class Scene:
    """A rendered frame with what made it.

    frame: what the sensor returns; clean_depth_mm (H, W) float32 exact depth (0 =
    nothing); labels (H, W) uint8 (``LABELS``) of the clean depth (0 also where it passes
    the sensor's range).
    """

    frame: DepthFrame
    clean_depth_mm: np.ndarray
    labels: np.ndarray


def _tick(timings: dict | None, key: str, t0: float) -> float:
    t1 = time.process_time()
    if timings is not None:
        timings[key] = timings.get(key, 0.0) + (t1 - t0)
    return t1


def sample_center(rng: np.random.Generator, intr: Intrinsics, scale: float) -> np.ndarray:
    """Hand centre (3,) mm, depth in ``DEPTH_RANGE_MM``.

    Its pixel lies at least max(12 % of the size, the hand's projected radius) from
    every border.
    """
    z = rng.uniform(*DEPTH_RANGE_MM)
    uv = []
    for f, size in ((intr.fx, intr.width), (intr.fy, intr.height)):
        margin = min(max(0.12 * size, f * _HAND_RADIUS_MM * scale / z), 0.45 * size)
        uv.append(rng.uniform(margin, size - 1 - margin))
    return np.array([(uv[0] - intr.cx) / intr.fx * z, (uv[1] - intr.cy) / intr.fy * z, z])


def posed_hand(art, shape, scale: float, left: bool, forearm_mm: float) -> HandGeometry:
    """Hand-frame geometry: posed, forearm ``forearm_mm`` long, scaled, mirrored if left."""
    local = pose_hand(art, replace(shape, forearm_length=forearm_mm / scale)).scaled(scale)
    return local.mirrored() if left else local


def _back_project(intr: Intrinsics, u: float, v: float, z: float) -> np.ndarray:
    return np.array([(u - intr.cx) / intr.fx * z, (v - intr.cy) / intr.fy * z, z])


def second_hand(rng, config, intr, person: PersonGeometry, center: np.ndarray):
    """A distractor hand with a 400 mm forearm, farther and on the other side (or None)."""
    shape, _ = sample_hand_shape(rng)
    scale = float(rng.uniform(*HAND_SCALE_RANGE))
    art = sample_articulation(rng, config.gesture_prob, config.gesture_noise_deg)
    local = posed_hand(art, shape, scale, bool(rng.random() < 0.5), 400.0)
    rot = sample_orientation(rng, 180.0, 0.0)
    z = center[2] + rng.uniform(*SECOND_HAND_GAP_MM)
    u_first = intr.fx * center[0] / center[2] + intr.cx
    lo, hi = (0.78, 0.95) if u_first < intr.cx else (0.05, 0.22)
    c2 = _back_project(intr, rng.uniform(lo, hi) * intr.width,
                       rng.uniform(0.15, 0.85) * intr.height, z)  # fmt: skip
    geom = local.transformed(rot, c2 - rot @ local.joints.mean(axis=0))
    j, r = person.hand.joints, person.hand.joint_radius
    if np.any(ray_depths(geom, j) < j[:, 2] - r) or min_depth_mm(geom) < 100.0:
        return None, None
    return geom, c2


def objects(rng, intr: Intrinsics, person: PersonGeometry) -> HandGeometry | None:
    """1-3 balls, bottles or boxes near the image border, never hiding the hand."""
    spheres, caps, ells = [], [], []
    j, r = person.hand.joints, person.hand.joint_radius
    for _ in range(int(rng.integers(1, 4))):
        side = int(rng.integers(4))
        t, edge = rng.uniform(0.0, 1.0), rng.uniform(-0.02, 0.12)
        u = (edge if side == 0 else 1 - edge if side == 1 else t) * intr.width
        v = (t if side < 2 else edge if side == 2 else 1 - edge) * intr.height
        c = _back_project(intr, u, v, rng.uniform(300.0, 1500.0))
        kind = int(rng.integers(3))
        if kind == 0:
            one = primitives(spheres=[[*c, rng.uniform(30, 80)]])
        elif kind == 1:
            axis = rng.normal(size=3)
            half = axis / np.linalg.norm(axis) * rng.uniform(40, 110)
            rad = rng.uniform(25, 45)
            one = primitives([[*(c - half), rad], [*(c + half), rad]],
                             [[*(c - half), *(c + half), rad]])  # fmt: skip
        else:
            q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
            q *= np.sign(np.linalg.det(q))
            one = primitives(ellipsoids=[(c, q, rng.uniform(30, 120, 3))])
        if min_depth_mm(one) < 100.0 or np.any(ray_depths(one, j) < j[:, 2] - r):
            continue
        spheres += one.spheres.tolist()
        caps += one.capsules.tolist()
        ells += list(zip(one.ell_centers, one.ell_rotations, one.ell_semi_axes))
    if not (spheres or caps or ells):
        return None
    return primitives(spheres, caps, ells)


def _support(geoms):
    """Support function: unit n -> largest n . p over primitive sets (whole forearms)."""
    def support(n):
        return max(g.support(n, forearm_keep_mm=np.inf) for g in geoms if g.num_parts)
    return support


@dataclass
class SceneSpec:
    """Everything one v2 frame shows, drawn but not rendered (camera frame, mm).

    intr: the camera; shape, scale, body: the person's build; person: hand, arm, body as
    posed; distractor / clutter: second hand and objects (or None); planes (P, 4) wall /
    table of kind ``background``; sensor: the camera model; the rest is ground truth
    (``meta``: JSON-ready extras for the frame's meta).
    """

    intr: Intrinsics
    left: bool
    shape: HandShape
    scale: float
    body: Body
    articulation_deg: np.ndarray
    center_mm: np.ndarray
    pose: ArmPose
    person: PersonGeometry
    distractor: HandGeometry | None
    distractor_center_mm: np.ndarray | None
    clutter: HandGeometry | None
    planes: np.ndarray
    background: str
    sensor: SensorModel
    meta: dict


def draw_background(rng, config, geoms_near, geoms_all) -> tuple[str, np.ndarray]:
    """Background kind (config.background, random = none / wall / table) and its planes.

    A wall stands behind everything drawn, a table under the shown hand and arm (it may
    cut the torso, as a desk does).
    """
    kind = config.background
    if kind == "random":
        kind = ("none", "wall", "table")[int(rng.integers(3))]
    return kind, background_planes(kind, rng, _support(geoms_all if kind == "wall" else geoms_near))


def sample_scene_v2(config, rng: np.random.Generator) -> SceneSpec:
    """Draw one v2 scene from ``rng`` (``config``: a SynthConfig)."""
    if config.random_camera is False:
        intr, cam_meta = config.intrinsics(), {}
    else:
        intr, cam_meta = sample_camera(rng)
    left = bool(rng.random() < 0.5)
    shape, shape_meta = sample_hand_shape(rng)
    scale = float(rng.uniform(*HAND_SCALE_RANGE))
    body = sample_body(rng, scale)
    art = sample_articulation(rng, config.gesture_prob, config.gesture_noise_deg)
    center = sample_center(rng, intr, scale)
    local = posed_hand(art, shape, scale, left, body.forearm_mm)
    sigma = 1.0 if left else -1.0  # a right arm shows on the image's left
    for _ in range(_TRIES):
        pose = sample_arm_pose(rng, center, sigma, sample_body_rotation(rng))
        person = build_person(local, pose, body)
        if not hides_hand(person):
            break
    else:  # no plausible body found: the hand and its forearm alone
        person = replace(person, arm=primitives(), body=primitives())
    distractor, c2 = (second_hand(rng, config, intr, person, center)
                      if rng.random() < SECOND_HAND_PROB else (None, None))  # fmt: skip
    clutter = objects(rng, intr, person) if rng.random() < OBJECTS_PROB else None
    near = [person.hand, person.arm]
    extra = [g for g in (distractor, clutter) if g is not None]
    kind, planes = draw_background(rng, config, near, near + [person.body] + extra)
    sensor = sample_sensor(rng, config.sensor, config.max_depth_mm)
    meta = {"camera": cam_meta} | shape_meta
    return SceneSpec(intr, left, shape, scale, body, art, center, pose, person, distractor, c2,
                     clutter, planes, kind, sensor, meta)  # fmt: skip


def render_spec(spec: SceneSpec, config, rng, frame_id=0, timings=None) -> Scene:
    """Ray-cast a scene, apply its sensor model (noise drawn from ``rng``), fill the meta."""
    t0 = time.process_time()
    intr, person = spec.intr, spec.person
    depth = np.full((intr.height, intr.width), np.inf, dtype=np.float32)
    labels = np.zeros((intr.height, intr.width), dtype=np.uint8)
    rays = ray_grid(intr, np.float32)
    hand_labels = np.where(person.hand.forearm_mask(), LABELS["arm"], LABELS["hand"])
    splat_geometry(person.hand, intr, depth, labels, hand_labels, rays)
    splat_geometry(person.arm, intr, depth, labels, LABELS["arm"], rays)
    t0 = _tick(timings, "hand_arm", t0)
    splat_geometry(person.body, intr, depth, labels, LABELS["torso"], rays)
    for geom, name in ((spec.distractor, "second_hand"), (spec.clutter, "objects")):
        if geom is not None:
            splat_geometry(geom, intr, depth, labels, LABELS[name], rays)
    if len(spec.planes):
        splat_planes(spec.planes, intr, depth, labels, LABELS[spec.background],
                     config.max_depth_mm, rays)  # fmt: skip
    far = depth > config.max_depth_mm  # inf: nothing hit
    depth[far] = 0.0
    labels[far] = 0
    t0 = _tick(timings, "body_background", t0)
    hand = person.hand
    visible = joint_visibility(hand.joints, hand.joint_radius, depth, intr)
    out = apply_sensor(depth, intr, spec.sensor, rng, config.quantize)
    _tick(timings, "sensor", t0)
    shown = np.bincount(labels.reshape(-1), minlength=len(LABELS))
    parts = [name for name, k in LABELS.items() if k > LABELS["hand"] and shown[k] > 0]
    center, c2 = spec.center_mm, spec.distractor_center_mm
    gap = ray_depths(person.body, center[None])[0] - center[2]
    extra = {k: v for k, v in spec.meta.items() if k != "camera"}
    meta = {
        "frame_id": frame_id,
        "source": "synthetic",
        "seed": config.seed,
        "scene_version": 2,
        "cube_mm": config.cube_mm,
        "side": "left" if spec.left else "right",
        "sensor": spec.sensor.kind,
        "sensor_params": spec.sensor.to_meta(),
        "parts": parts,
        "pose_mode": spec.pose.mode,
        "center_mm": [float(x) for x in center],
        "scale": spec.scale,
        "articulation_deg": [round(float(x), 4) for x in spec.articulation_deg],
        "rotation": [[float(x) for x in row] for row in person.rotation],
        "visible": [bool(x) for x in visible],
        "background": spec.planes.tolist(),
        "body_gap_mm": round(float(gap), 2) if np.isfinite(gap) else None,
        "elbow_mm": [round(float(x), 2) for x in person.elbow_mm],
        "second_hand_center_mm": None if c2 is None else [round(float(x), 2) for x in c2],
        "camera": spec.meta.get("camera", {}) | {
            "fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy,
            "width": intr.width, "height": intr.height},
    } | extra  # fmt: skip
    frame = DepthFrame(out, intr, hand.joints.astype(np.float32), HANDS2019_21, meta)
    return Scene(frame, depth, labels)


def without_hands(spec: SceneSpec) -> SceneSpec:
    """The scene with no hand in it.

    The shown hand, its forearm and arm, and the second hand are taken out; the torso
    (with the other arm hanging down), objects and background stay. The hand's joints stay
    as the frame's label (none visible) for bookkeeping.
    """
    hand = spec.person.hand
    hidden = replace(primitives(), joints=hand.joints, joint_radius=hand.joint_radius)
    person = replace(spec.person, hand=hidden, arm=primitives())
    return replace(spec, person=person, distractor=None, distractor_center_mm=None)


def render_scene_v2(config, rng: np.random.Generator, frame_id=0, timings=None,
                    hands: bool = True) -> Scene:
    """Frame of scene version 2 drawn from ``rng`` (``config``: a SynthConfig).

    ``hands=False``: the same scene :func:`without_hands` (its sensor noise drawn alike).
    """
    t0 = time.process_time()
    spec = sample_scene_v2(config, rng)
    if not hands:
        spec = without_hands(spec)
    _tick(timings, "sample", t0)
    scene = render_spec(spec, config, rng, frame_id, timings)
    if not hands:  # the joints label a hand that is not there: none of them is seen
        meta = scene.frame.meta
        meta["visible"], meta["hand_free"] = [False] * len(meta["visible"]), True
    return scene
