"""A person showing a hand to the camera (scene version 2): hand shape, arm, torso, head.

Body frame B (mm): the person's torso centre, axes aligned with the camera's when the
person faces it squarely (x right in the image = the person's left, y down, z away from
the camera: the person's front faces -z). ``sigma`` = -1 for the right arm (on the image's
left), +1 for the left arm. A pose is drawn in three modes:

* ``raised`` (65 %): upper arm hanging down/forward from the shoulder, forearm raised
  up, forward and mostly inwards (the hand in front of the chest or shoulder), palm
  mostly towards the camera: the usual way to show a hand;
* ``reach`` (20 %): the arm extended towards the camera and sideways (hand far from
  the body);
* ``point`` (15 %): the forearm points at the camera (elbow behind the wrist along the
  viewing ray), the hard foreshortened case.

The hand is placed first (its centre where the caller wants it), the forearm runs from the
wrist to the elbow (the hand model's forearm, extended to the elbow), the upper arm from
the elbow to the shoulder, and the torso hangs off the shoulder; poses whose body would
hide the hand, or touch the camera, are redrawn.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vvhand_core.data.synthetic.hand_model import HandGeometry, HandShape, with_finger_lengths
from vvhand_core.data.synthetic.raycast import ray_depths

HAND_SCALE_RANGE = (0.8, 1.2)  # overall hand size factor (1.0 = wrist to middle tip 187 mm)
FINGER_VARIATION = 0.10  # per-finger length and width factors within 1 +- this
MODES = ("raised", "reach", "point")
MODE_PROBS = (0.65, 0.20, 0.15)
_NEAR_CAMERA_MM = 60.0  # no body part nearer than this (the camera stays outside them)


def sample_hand_shape(rng: np.random.Generator) -> tuple[HandShape, dict]:
    """A hand shape with per-finger lengths and widths varied by +-FINGER_VARIATION.

    Factors are drawn per finger (thumb, index, middle, ring, pinky) for the segment
    lengths and, independently, for the radii (segments and metacarpal). Returns the
    shape and JSON-ready meta ``{"finger_length_scale": [5], "finger_width_scale": [5]}``.
    The overall size is a separate factor (``HandState.scale``).
    """
    lf = rng.uniform(1 - FINGER_VARIATION, 1 + FINGER_VARIATION, 5)
    wf = rng.uniform(1 - FINGER_VARIATION, 1 + FINGER_VARIATION, 5)
    base = HandShape()
    shape = replace(
        with_finger_lengths(base, lf),
        radii=tuple(tuple(x * wf[i + 1] for x in seg) for i, seg in enumerate(base.radii)),
        metacarpal_radii=tuple(r * wf[i + 1] for i, r in enumerate(base.metacarpal_radii)),
        thumb_radii=tuple(x * wf[0] for x in base.thumb_radii),
    )
    meta = {"finger_length_scale": [round(float(x), 4) for x in lf],
            "finger_width_scale": [round(float(x), 4) for x in wf]}  # fmt: skip
    return shape, meta


def primitives(spheres=(), capsules=(), ellipsoids=()) -> HandGeometry:
    """A joint-less primitive container (body parts) rendered like a hand.

    spheres [[c (3), r]], capsules [[p0 (3), p1 (3), r]], ellipsoids [(c (3), R (3, 3),
    semi-axes (3,))].
    """
    ell = list(ellipsoids)
    return HandGeometry(
        joints=np.zeros((0, 3)),
        joint_radius=np.zeros(0),
        spheres=np.asarray(spheres, dtype=np.float64).reshape(-1, 4),
        capsules=np.asarray(capsules, dtype=np.float64).reshape(-1, 7),
        ell_centers=np.array([e[0] for e in ell], dtype=np.float64).reshape(-1, 3),
        ell_rotations=np.array([e[1] for e in ell], dtype=np.float64).reshape(-1, 3, 3),
        ell_semi_axes=np.array([e[2] for e in ell], dtype=np.float64).reshape(-1, 3),
    )


def rotation_about(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rotation matrix (3, 3) about a unit axis (Rodrigues)."""
    a = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1 - np.cos(angle_rad)) * (k @ k)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation (3, 3) taking unit vector a to unit vector b."""
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.clip(a @ b, -1.0, 1.0))
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        perp = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        return rotation_about(perp, np.pi)
    return rotation_about(axis / s, float(np.arctan2(s, c)))


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


@dataclass
class Body:
    """A person's fixed dimensions (mm).

    scale; torso semi-axes (x, y, z); shoulder offset (half-width, height above the
    torso centre); upper arm and forearm lengths (shoulder-elbow, elbow-wrist); head
    radius.
    """

    scale: float
    torso_semi_mm: np.ndarray
    shoulder_half_width_mm: float
    shoulder_height_mm: float
    upper_arm_mm: float
    forearm_mm: float
    head_radius_mm: float


def sample_body(rng: np.random.Generator, hand_scale: float) -> Body:
    """Body dimensions of an adult, scaled with the hand (big hands, big people)."""
    s = float(np.clip(hand_scale * rng.uniform(0.92, 1.08), 0.8, 1.25))
    semi = np.array([rng.uniform(140, 175), rng.uniform(300, 360), rng.uniform(95, 125)]) * s
    return Body(s, semi, rng.uniform(165, 195) * s, 0.8 * semi[1], rng.uniform(280, 320) * s,
                rng.uniform(235, 270) * s, rng.uniform(80, 95) * s)  # fmt: skip


@dataclass
class ArmPose:
    """Where the hand is and how the arm and body hold it (camera frame, unit directions).

    center_mm (3,) hand centre (mean of the joints); forearm_dir (3,) elbow -> wrist;
    upper_arm_dir (3,) shoulder -> elbow; roll_rad: turn of the hand about the forearm
    relative to the palm facing the camera (0 palm, pi back of the hand); body_rotation
    (3, 3) camera-from-body; sigma -1 right arm, +1 left; mode one of ``MODES``.
    """

    center_mm: np.ndarray
    forearm_dir: np.ndarray
    upper_arm_dir: np.ndarray
    roll_rad: float
    body_rotation: np.ndarray
    sigma: float
    mode: str


def sample_body_rotation(rng: np.random.Generator) -> np.ndarray:
    """Camera-from-body rotation: yaw +-30 deg, pitch +-15 deg, roll +-8 deg."""
    yaw, pitch, roll = np.radians([rng.uniform(-30, 30), rng.uniform(-15, 15), rng.uniform(-8, 8)])
    return (rotation_about([0, 1, 0], yaw) @ rotation_about([1, 0, 0], pitch)
            @ rotation_about([0, 0, 1], roll))  # fmt: skip


def _upper_arm(sigma: float, flex_deg: float, abd_deg: float) -> np.ndarray:
    """Shoulder -> elbow in the body frame: down, flexed forward, abducted outward."""
    f, a = np.radians(flex_deg), np.radians(abd_deg)
    return _unit([sigma * np.sin(a), np.cos(a) * np.cos(f), -np.cos(a) * np.sin(f)])


def _roll(rng: np.random.Generator) -> float:
    """Palm to the camera (60 %), back of the hand (20 %), side views (20 %), with jitter."""
    r = rng.random()
    if r < 0.6:
        return float(rng.normal(0.0, np.radians(30)))
    if r < 0.8:
        return float(np.pi + rng.normal(0.0, np.radians(30)))
    return float(np.sign(rng.random() - 0.5) * np.pi / 2 + rng.normal(0.0, np.radians(20)))


def sample_arm_pose(
    rng: np.random.Generator, center_mm: np.ndarray, sigma: float, body_rotation: np.ndarray,
    mode: str | None = None,
) -> ArmPose:  # fmt: skip
    """Draw an arm pose holding the hand centre at ``center_mm`` (see the module doc)."""
    if mode is None:
        mode = MODES[int(rng.choice(len(MODES), p=MODE_PROBS))]
    rb = body_rotation
    for _ in range(20):
        if mode == "raised":
            u = _upper_arm(sigma, rng.uniform(-10, 45), rng.uniform(-10, 25))
            elev, az = np.radians(rng.uniform(20, 85)), np.radians(rng.uniform(-10, 65))
            v = _unit([-sigma * np.cos(elev) * np.sin(az), -np.sin(elev),
                       -np.cos(elev) * np.cos(az)])  # fmt: skip
        elif mode == "reach":
            u = _upper_arm(sigma, rng.uniform(30, 95), rng.uniform(-10, 45))
            up = np.array([0.0, -1.0, 0.0]) - u * (-u[1])
            v = _unit(u * 1.0 + _unit(up) * np.tan(np.radians(rng.uniform(0, 70))))
        else:  # point: forearm along the viewing ray, towards the camera
            u = _upper_arm(sigma, rng.uniform(20, 80), rng.uniform(0, 30))
            v = None
        if v is not None and -u @ v > np.cos(np.radians(30)):
            continue  # the elbow cannot fold that far
        u_cam = rb @ u
        if v is None:
            jitter = rotation_about(_unit(rng.normal(size=3)), np.radians(rng.uniform(0, 25)))
            v_cam = jitter @ _unit(-center_mm)
            if -u_cam @ v_cam > np.cos(np.radians(30)):
                continue
        else:
            v_cam = rb @ v
        return ArmPose(np.asarray(center_mm, float), v_cam, u_cam, _roll(rng), rb, sigma, mode)
    return ArmPose(np.asarray(center_mm, float), rb @ _unit([0.0, -1.0, -1.0]),
                   rb @ _upper_arm(sigma, 20.0, 10.0), _roll(rng), rb, sigma, "raised")  # fmt: skip


def forearm_axis(local: HandGeometry) -> np.ndarray:
    """Unit wrist -> elbow direction of a posed hand's forearm capsule (hand frame)."""
    ns = len(local.spheres)
    k = int(np.nonzero(local.forearm_mask()[ns : ns + len(local.capsules)])[0][0])
    cap = local.capsules[k]
    return _unit(cap[3:6] - cap[0:3])


def hand_rotation(local: HandGeometry, pose: ArmPose) -> np.ndarray:
    """Camera-from-hand rotation (3, 3): forearm along -pose.forearm_dir, then rolled.

    Roll 0 turns the palm normal (hand +z) as close to facing the camera (from the hand
    centre) as the forearm allows.
    """
    a = -pose.forearm_dir
    r0 = rotation_between(forearm_axis(local), a)
    n0 = r0 @ np.array([0.0, 0.0, 1.0])
    w = -pose.center_mm / np.linalg.norm(pose.center_mm)
    n0p, wp = n0 - a * (a @ n0), w - a * (a @ w)
    best = float(np.arctan2(a @ np.cross(n0p, wp), n0p @ wp)) if np.linalg.norm(wp) > 1e-6 else 0.0
    return rotation_about(a, best + pose.roll_rad) @ r0


@dataclass
class PersonGeometry:
    """A posed person in the camera frame.

    hand: the shown hand with its forearm (to the elbow; ``is_forearm`` marks it);
    arm: forearm bulk near the elbow, elbow, upper arm, shoulder; body: torso, shoulder
    girdle, neck, head and the other arm (hanging down). rotation (3, 3) camera-from-hand;
    elbow_mm, shoulder_mm (3,).
    """

    hand: HandGeometry
    arm: HandGeometry
    body: HandGeometry
    rotation: np.ndarray
    elbow_mm: np.ndarray
    shoulder_mm: np.ndarray


def build_person(local: HandGeometry, pose: ArmPose, body: Body) -> PersonGeometry:
    """Place a posed hand and grow the arm and body from it.

    ``local``: the hand in its own frame, forearm already ``body.forearm_mm`` long.
    """
    rot = hand_rotation(local, pose)
    hand = local.transformed(rot, pose.center_mm - rot @ local.joints.mean(axis=0))
    wrist = hand.joints[0]
    elbow = wrist - body.forearm_mm * pose.forearm_dir
    shoulder = elbow - body.upper_arm_mm * pose.upper_arm_dir
    s, rb, sig = body.scale, pose.body_rotation, pose.sigma
    fore_caps = hand.forearm_mask()[len(hand.spheres) : len(hand.spheres) + len(hand.capsules)]
    r_fore = float(hand.capsules[fore_caps, 6].max())
    # capsules draw no end caps: every end sits in a sphere at least as wide
    r_upper, r_shoulder = 40.0 * s, 52.0 * s
    r_elbow = min(1.35 * r_fore, r_upper)
    mid = wrist + 0.5 * (elbow - wrist)
    arm = primitives(
        spheres=[[*mid, r_elbow], [*elbow, r_upper], [*shoulder, r_shoulder]],
        capsules=[[*mid, *elbow, r_elbow], [*elbow, *shoulder, r_upper]],
    )
    by = rb @ np.array([0.0, 1.0, 0.0])  # body down
    centre = shoulder - rb @ np.array([sig * body.shoulder_half_width_mm,
                                       -body.shoulder_height_mm, 0.0])  # fmt: skip
    other = centre + rb @ np.array([-sig * body.shoulder_half_width_mm,
                                    -body.shoulder_height_mm, 0.0])  # fmt: skip
    other_elbow = other + rb @ (_unit([-sig * 0.15, 1.0, -0.2]) * body.upper_arm_mm)
    other_wrist = other_elbow + rb @ (_unit([-sig * 0.1, 1.0, -0.5]) * body.forearm_mm)
    neck = centre - by * (0.92 * body.torso_semi_mm[1])
    head = neck - by * (body.head_radius_mm + 70.0 * s)
    chin = head + by * (0.5 * body.head_radius_mm)
    head_semi = np.array([0.85, 1.15, 1.0]) * body.head_radius_mm
    body_geom = primitives(
        spheres=[[*other, r_shoulder], [*other_elbow, r_upper], [*other_wrist, 0.8 * r_upper],
                 [*neck, 50.0 * s]],
        capsules=[[*shoulder, *other, 0.95 * r_shoulder], [*neck, *chin, 50.0 * s],
                  [*other, *other_elbow, r_upper], [*other_elbow, *other_wrist, 0.8 * r_upper]],
        ellipsoids=[(centre, rb, body.torso_semi_mm), (head, rb, head_semi)],
    )  # fmt: skip
    return PersonGeometry(hand, arm, body_geom, rot, elbow, shoulder)


def min_depth_mm(geom: HandGeometry) -> float:
    """Smallest camera z over a primitive set's surfaces (exact)."""
    if geom.num_parts == 0:
        return np.inf
    return -geom.support(np.array([0.0, 0.0, -1.0]), forearm_keep_mm=np.inf)


def hides_hand(person: PersonGeometry) -> bool:
    """Whether the arm or body would spoil the shown hand.

    True when either is nearer than any hand joint's sphere along that joint's ray, or
    reaches within ``_NEAR_CAMERA_MM`` of the camera.
    """
    if min(min_depth_mm(person.arm), min_depth_mm(person.body)) < _NEAR_CAMERA_MM:
        return True
    j, r = person.hand.joints, person.hand.joint_radius
    for geom in (person.arm, person.body):
        if np.any(ray_depths(geom, j) < j[:, 2] - r):
            return True
    return False
