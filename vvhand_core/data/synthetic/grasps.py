"""Hands that hold and touch things (scene version 3): a grasp taxonomy and finger closing.

Everything here is in the hand frame of :mod:`hand_model` (right hand, mm, scaled by the
hand's size): origin at the wrist, +y distal, +x radial (towards the thumb), +z palmar.

A grasp is drawn by :func:`sample_grasp`: a type from :data:`GRASP_TYPES` (after the
grasp taxonomies of Cutkosky 1989 and Feix et al. 2016, reduced to what a depth camera
tells apart), an object made of primitives with a realistic size, placed against the palm
or between the fingers, and an articulation found by closing the fingers onto it:

* ``power``: a cylinder 25-90 mm across (bottle, mug, shaker) across the palm, wrapped by
  all fingers with the thumb around the other side;
* ``spherical``: a ball 40-110 mm across against the palm, fingers spread around it;
* ``pinch``: a small ball (10-30 mm) or a pen between the thumb and index pads;
* ``tripod``: a ball 20-45 mm held by the thumb, index and middle fingers;
* ``lateral``: a key or card (thin box) pressed by the thumb onto the side of the curled
  index finger;
* ``hook``: a handle (bar 16-30 mm across) in the curled fingers, thumb free;
* ``flat`` and ``press``: no held object; the scene lays the flat hand on the table, or
  presses a button with the pointing index (:mod:`scene_v3` places both);
* ``none``: an empty hand in a gesture (as in scene version 2).

Closing (:func:`close_fingers`): each finger starts open and moves towards its closed
target with all its joints together; when a segment touches the object, the joints
proximal to it stop and the distal ones go on (up to three stages per finger), so fingers
wrap round an object as real ones do. Contact is searched on a coarse grid then bisected,
so a touching finger ends within ``CONTACT_RESOLUTION_DEG`` of the surface and never
inside it (the measured gaps are in each frame's meta, ``contact_gap_mm``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vvhand_core.data.synthetic.hand_model import (
    NUM_PARAMS,
    PARAM_NAMES,
    HandGeometry,
    HandShape,
    clip_articulation,
    rest_articulation,
)
from vvhand_core.data.synthetic.poses import GESTURES, sample_articulation
from vvhand_core.fit import hand_np
from vvhand_core.fit.tables import PIVOT_MM

GRASP_TYPES = ("power", "spherical", "pinch", "tripod", "lateral", "hook", "flat", "press",
               "none")  # fmt: skip
HELD = ("power", "spherical", "pinch", "tripod", "lateral", "hook")
GRASP_PROBS = (0.18, 0.10, 0.12, 0.08, 0.08, 0.08, 0.10, 0.10, 0.16)
FINGER_NAMES = ("thumb", "index", "middle", "ring", "pinky")
CONTACT_TOLERANCE_MM = 2.0  # a finger "touches" when its gap is below this
CONTACT_RESOLUTION_DEG = 0.6  # closing range (<= 105 deg) / 6 / 2^5
_P = {n: i for i, n in enumerate(PARAM_NAMES)}
# per finger: the three moving angles (proximal to distal) and the four chain joints
_MOVING = np.array([[_P["thumb_cmc_flex"], _P["thumb_mcp"], _P["thumb_ip"]]]
                   + [[4 * i + 1, 4 * i + 2, 4 * i + 3] for i in range(4)])
_THUMB_BASE = np.array([_P["thumb_cmc_abd"], _P["thumb_opp"]])  # move with the first stage
_CHAINS = np.array([[1, 2, 3, 4]] + [[5 + 4 * i + k for k in range(4)] for i in range(4)])
_FRACS = np.linspace(0.0, 1.0, 5)
_COARSE_STEPS, _BISECTIONS = 6, 5
# fingers (thumb..pinky) that must touch for a held grasp to count, and how many of them
_NEEDED = {"power": ([0, 1, 2, 3, 4], 4), "spherical": ([0, 1, 2, 3, 4], 4),
           "pinch": ([0, 1], 2), "tripod": ([0, 1, 2], 3), "lateral": ([0, 1], 2),
           "hook": ([1, 2, 3, 4], 3)}  # fmt: skip
_TRIES = 3


@dataclass
class Grasp:
    """A hand pose with what it holds (hand frame, scaled mm).

    kind: one of ``GRASP_TYPES``; articulation_deg (NUM_PARAMS,); held: the object as
    primitives (None for flat / press / none); object: its name ("bottle", "ball", "pen",
    ...) or None; contact_gap_mm (5,): each finger's smallest distance to the object
    (thumb..pinky; nan without an object); drawn: the kind first drawn (differs from
    ``kind`` when a held grasp fell back to "none").
    """

    kind: str
    articulation_deg: np.ndarray
    held: HandGeometry | None
    object: str | None
    contact_gap_mm: np.ndarray
    drawn: str = ""

    def __post_init__(self) -> None:
        """``drawn`` defaults to ``kind``."""
        self.drawn = self.drawn or self.kind

    def touching(self) -> list[str]:
        """Fingers within ``CONTACT_TOLERANCE_MM`` of the object."""
        return [f for f, g in zip(FINGER_NAMES, self.contact_gap_mm) if g < CONTACT_TOLERANCE_MM]


def primitives(spheres=(), capsules=(), ellipsoids=()) -> HandGeometry:
    """Joint-less primitives (see ``person.primitives``; imported lazily to avoid a cycle)."""
    from vvhand_core.data.synthetic.person import primitives as make

    return make(spheres, capsules, ellipsoids)


def object_sdf(obj: HandGeometry, points: np.ndarray) -> np.ndarray:
    """Signed distance (N,) mm from points (N, 3) to a primitive set (< 0 inside).

    Exact for spheres and capsules (segment + radius); for ellipsoids the usual first-order
    estimate k0 (k0 - 1) / k1 (k0 = |q / s|, k1 = |q / s^2|), exact on the surface.
    """
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    best = np.full(len(p), np.inf)
    for s in obj.spheres:
        best = np.minimum(best, np.linalg.norm(p - s[:3], axis=1) - s[3])
    for c in obj.capsules:
        a, b, r = c[0:3], c[3:6], c[6]
        ab = b - a
        t = np.clip((p - a) @ ab / max(ab @ ab, 1e-12), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(p - (a + t[:, None] * ab), axis=1) - r)
    for ctr, rot, semi in zip(obj.ell_centers, obj.ell_rotations, obj.ell_semi_axes):
        q = (p - ctr) @ rot
        k0 = np.linalg.norm(q / semi, axis=1)
        k1 = np.maximum(np.linalg.norm(q / semi**2, axis=1), 1e-12)
        best = np.minimum(best, k0 * (k0 - 1.0) / k1)
    return best


class _Poser:
    """Joints of the scaled right hand in its own frame for an articulation (hand_np)."""

    def __init__(self, shape: HandShape, scale: float) -> None:
        self.shape = hand_np.ShapeArrays.from_shape(shape)
        self.scale = scale
        self.translation = np.asarray(PIVOT_MM) * scale
        self.radius = self.shape.joint_radius * scale

    def joints(self, angles_deg: np.ndarray) -> np.ndarray:
        return hand_np.pose(angles_deg, np.eye(3), self.translation, self.scale,
                            self.shape).joints  # fmt: skip

    def finger_gaps(self, angles_deg: np.ndarray, obj: HandGeometry) -> np.ndarray:
        """(5, 3) smallest surface gap (mm) of each finger's three segments to ``obj``."""
        return self.finger_gaps_many([angles_deg], obj)[0]

    def finger_gaps_many(self, angles_deg, obj: HandGeometry) -> np.ndarray:
        """(T, 5, 3) :meth:`finger_gaps` of T articulations in one distance query."""
        j = np.stack([self.joints(a) for a in angles_deg])  # (T, 21, 3)
        a, b = j[:, _CHAINS[:, :3]], j[:, _CHAINS[:, 1:]]  # (T, 5, 3, 3) segment ends
        ra, rb = self.radius[_CHAINS[:, :3]], self.radius[_CHAINS[:, 1:]]
        pts = a[..., None, :] + _FRACS[:, None] * (b - a)[..., None, :]  # (T, 5, 3, F, 3)
        rad = ra[..., None] + _FRACS * (rb - ra)[..., None]  # (5, 3, F)
        gap = object_sdf(obj, pts.reshape(-1, 3)).reshape(pts.shape[:-1]) - rad
        return gap.min(axis=-1)


def close_fingers(poser: _Poser, start_deg: np.ndarray, closed_deg: np.ndarray,
                  obj: HandGeometry, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Close the ``active`` fingers (5,) bool from ``start_deg`` towards ``closed_deg``.

    Returns the articulation and each finger's final gap (5,) mm (see the module doc;
    inactive fingers keep their start angles).
    """
    cur = np.array(start_deg, dtype=np.float64)
    stage = np.where(active, 0, 3)  # first moving joint per finger; 3 = done

    def at(t: np.ndarray) -> np.ndarray:
        a = cur.copy()
        for f in np.nonzero(stage < 3)[0]:
            m = _MOVING[f, stage[f]:]
            if f == 0 and stage[0] == 0:
                m = np.concatenate([m, _THUMB_BASE])
            a[m] = cur[m] + t[f] * (closed_deg[m] - cur[m])
        return a

    def first_hit(gap: np.ndarray) -> np.ndarray:  # (5,) first colliding moving segment or 3
        seg = np.where(gap < 0.0, np.arange(3)[None, :], 3)
        seg = np.where(np.arange(3)[None, :] >= stage[:, None], seg, 3)
        return seg.min(axis=1)

    def hits(a: np.ndarray) -> np.ndarray:
        return first_hit(poser.finger_gaps(a, obj))

    for _ in range(3):
        moving = stage < 3
        if not moving.any():
            break
        lo, hi = np.zeros(5), np.full(5, np.inf)
        grid = np.linspace(1.0 / _COARSE_STEPS, 1.0, _COARSE_STEPS)
        gaps = poser.finger_gaps_many([at(np.full(5, t)) for t in grid], obj)
        for t, gap in zip(grid, gaps):
            h = first_hit(gap)
            new = moving & np.isinf(hi) & (h < 3)
            hi[new] = t
            lo[moving & np.isinf(hi)] = t
        free = moving & np.isinf(hi)
        hi[~np.isfinite(hi)] = lo[~np.isfinite(hi)]
        for _ in range(_BISECTIONS):
            mid = 0.5 * (lo + hi)
            h = hits(at(mid))
            lo = np.where(moving & ~free & (h >= 3), mid, lo)
            hi = np.where(moving & ~free & (h < 3), mid, hi)
        seg = hits(at(hi))
        cur = at(np.where(free, 1.0, lo))
        stage = np.where(free, 3, np.where(moving, np.minimum(seg + 1, 3), stage))
    return cur, poser.finger_gaps(cur, obj).min(axis=1)


def _palm_points(scale: float) -> np.ndarray:
    """Points (N, 3) on the palmar half of the palm ellipsoid (HandShape's), scaled."""
    shape = HandShape()
    u = np.linspace(0.0, 2.0 * np.pi, 8, endpoint=False)
    ring = [np.stack([np.cos(u) * np.sin(t), np.sin(u) * np.sin(t), np.full(8, np.cos(t))], 1)
            for t in np.radians([0.0, 35.0, 70.0])]
    unit = np.concatenate(ring)
    return (np.asarray(shape.palm_center) + unit * np.asarray(shape.palm_semi_axes)) * scale


def clear_start(poser: _Poser, obj: HandGeometry, start: np.ndarray, closed: np.ndarray,
                active: np.ndarray, push: np.ndarray | None
                ) -> tuple[HandGeometry, np.ndarray] | None:
    """Make the start pose clear of the object, or None when it cannot be.

    A finger that touches the object opens further (its moving angles away from the
    closed target, within the limits); then the object moves along ``push`` in 2 mm
    steps (up to 30 mm) until neither a finger nor the palm touches it.
    """
    start = start.copy()
    for f in np.nonzero(poser.finger_gaps(start, obj).min(axis=1) < 0.0)[0]:
        m = _MOVING[f]
        for k in (0.25, 0.5, 1.0, 1.5):
            trial = start.copy()
            trial[m] = start[m] - k * (closed[m] - start[m])
            trial = clip_articulation(trial)
            if poser.finger_gaps(trial, obj)[f].min() >= 0.0:
                start = trial
                break
    palm = _palm_points(poser.scale)
    for step in range(16):
        if step:
            if push is None:
                return None
            obj = obj.transformed(np.eye(3), 2.0 * np.asarray(push))
        if (poser.finger_gaps(start, obj).min() >= 0.0
                and object_sdf(obj, palm).min() >= 0.0):
            return obj, start
    return None


def _angles(base: np.ndarray, **values: float) -> np.ndarray:
    a = np.array(base, dtype=np.float64)
    for name, v in values.items():
        a[_P[name]] = v
    return a


def _set_fingers(a: np.ndarray, fingers, mcp: float, pip: float, dip: float) -> np.ndarray:
    for f in fingers:
        a[_P[f"{f}_mcp"]], a[_P[f"{f}_pip"]], a[_P[f"{f}_dip"]] = mcp, pip, dip
    return a


_LONG = FINGER_NAMES[1:]


def _ball(c, r) -> HandGeometry:
    return primitives(spheres=[[*c, r]])


def _bar(c, axis, half_mm: float, r: float) -> HandGeometry:
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    p0, p1 = np.asarray(c) - axis * half_mm, np.asarray(c) + axis * half_mm
    return primitives(spheres=[[*p0, r], [*p1, r]], capsules=[[*p0, *p1, r]])


def _tilted_x(rng, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """The hand's x axis turned about z by up to yaw_deg and out of the palm by pitch_deg."""
    yaw = np.radians(rng.uniform(-yaw_deg, yaw_deg))
    pitch = np.radians(rng.uniform(-pitch_deg, pitch_deg))
    return np.array([np.cos(yaw) * np.cos(pitch), np.sin(yaw), np.sin(pitch)])


def _held_setup(kind: str, rng, poser: _Poser):
    """(object, name, start angles, closed angles, active fingers, push direction).

    The push direction (hand frame, or None) is where the object may move to clear a
    hand that touches it before the fingers close (:func:`clear_start`).
    """
    s = poser.scale
    palm_z = 13.5 * s  # the palm's half thickness (HandShape.palm_semi_axes)
    base = rest_articulation()
    active = np.ones(5, dtype=bool)
    if kind in ("power", "spherical"):
        spread = rng.uniform(-4, 4) if kind == "power" else rng.uniform(8, 15)
        start = base.copy()
        for f in _LONG:
            start[_P[f"{f}_abd"]] = spread
        start = _angles(start, thumb_cmc_abd=0.0, thumb_opp=0.0, thumb_cmc_flex=-20.0)
        closed = _set_fingers(start.copy(), _LONG, 90.0, 105.0, 80.0)
        closed = _angles(closed, thumb_cmc_abd=rng.uniform(40, 70), thumb_opp=rng.uniform(60, 90),
                         thumb_cmc_flex=40.0, thumb_mcp=55.0, thumb_ip=75.0)  # fmt: skip
        if kind == "power":
            r = rng.uniform(12.5, 45.0)
            c = np.array([rng.uniform(-10, 5) * s, rng.uniform(50, 70) * s, palm_z + r + 1.0])
            name = "bottle" if r > 30 else ("can" if r > 20 else "shaker")
            obj = _bar(c, _tilted_x(rng, 25.0, 6.0), rng.uniform(45, 110), r)
        else:
            r = rng.uniform(20.0, 55.0)
            obj = _ball([0.0, rng.uniform(55, 75) * s, palm_z + r + 1.0], r)
            name = "ball"
        return obj, name, start, closed, active, np.array([0.0, 0.0, 1.0])
    if kind in ("pinch", "tripod"):
        meet = _set_fingers(base.copy(), ("index",), 45.0, 55.0, 30.0)
        if kind == "tripod":
            meet = _set_fingers(meet, ("middle",), 50.0, 55.0, 30.0)
        meet = _angles(meet, thumb_cmc_abd=18.0, thumb_cmc_flex=20.0, thumb_opp=58.0,
                       thumb_mcp=7.0, thumb_ip=14.0)  # fmt: skip
        j = poser.joints(meet)
        tips = [j[4], j[8]] + ([j[12]] if kind == "tripod" else [])
        c = np.mean(tips, axis=0)
        if kind == "tripod":
            obj, name = _ball(c, rng.uniform(10.0, 22.5)), "ball"
        elif rng.random() < 0.5:
            obj, name = _ball(c, rng.uniform(5.0, 15.0)), "small ball"
        else:
            axis = _tilted_x(rng, 30.0, 20.0)
            obj, name = _bar(c, axis, rng.uniform(50, 75), rng.uniform(4, 6)), "pen"
        start = _angles(base.copy(), thumb_cmc_abd=18.0, thumb_opp=rng.uniform(50, 65),
                        thumb_cmc_flex=-5.0)  # fmt: skip
        start = _set_fingers(start, ("index", "middle"), 5.0, 5.0, 0.0)
        closed = _set_fingers(start.copy(), ("index",), 80.0, 95.0, 70.0)
        closed = _angles(closed, thumb_cmc_flex=40.0, thumb_mcp=35.0, thumb_ip=50.0)
        rest = ("ring", "pinky") if kind == "tripod" else ("middle", "ring", "pinky")
        if kind == "tripod":
            closed = _set_fingers(closed, ("middle",), 80.0, 95.0, 70.0)
        # the other fingers fold away by a drawn amount (they stop on the object if in the way)
        fold = rng.uniform(0.2, 0.9)
        closed = _set_fingers(closed, rest, 85 * fold, 100 * fold, 65 * fold)
        return obj, name, start, closed, active, None
    if kind == "lateral":
        curl = _set_fingers(base.copy(), _LONG, rng.uniform(60, 80), rng.uniform(80, 100),
                            rng.uniform(40, 60))  # fmt: skip
        j = poser.joints(curl)
        half = np.array([rng.uniform(1.5, 3.0), rng.uniform(20, 30), rng.uniform(10, 15)])
        c = 0.5 * (j[6] + j[7]) + np.array([poser.radius[6] + half[0] + 0.5, 0.0, 0.0])
        tilt = np.radians(rng.uniform(-20, 20))
        rot = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(tilt), -np.sin(tilt)],
                        [0.0, np.sin(tilt), np.cos(tilt)]])  # fmt: skip
        obj = primitives(ellipsoids=[(c, rot, half)])
        start = _angles(curl, thumb_cmc_abd=65.0, thumb_opp=rng.uniform(10, 30),
                        thumb_cmc_flex=-20.0)  # fmt: skip
        closed = _angles(start.copy(), thumb_cmc_abd=0.0, thumb_opp=rng.uniform(30, 50),
                         thumb_cmc_flex=45.0, thumb_mcp=60.0, thumb_ip=60.0)  # fmt: skip
        active = np.array([True, False, False, False, False])
        return obj, "key", start, closed, active, np.array([1.0, 0.0, 0.0])
    # hook: a bar on the palmar side of the straight middle segments, the fingers curl round
    mcp = rng.uniform(0, 25)
    start = _set_fingers(base.copy(), _LONG, mcp, 0.0, 0.0)
    r = rng.uniform(8.0, 15.0)
    j = poser.joints(start)
    pip, dip = j[10], j[11]  # the middle finger's middle segment
    d = (dip - pip) / np.linalg.norm(dip - pip)
    palmar = np.array([0.0, -d[2], d[1]]) / np.hypot(d[1], d[2])
    c = pip + 0.4 * (dip - pip) + palmar * (poser.radius[10] + r + 1.0)
    obj = _bar(c, _tilted_x(rng, 10.0, 5.0), rng.uniform(50, 90), r)
    closed = _set_fingers(start.copy(), _LONG, mcp, 105.0, 80.0)
    active = np.array([False, True, True, True, True])
    return obj, "handle", start, closed, active, palmar


def _free_angles(kind: str, rng, gesture_prob: float, noise_deg: float) -> np.ndarray:
    """Articulation of a grasp without a held object."""
    if kind == "flat":
        name = ("flat", "open", "spread", "relaxed")[int(rng.integers(4))]
        a = GESTURES[name] + rng.normal(0.0, 5.0, NUM_PARAMS)
        a[_P["wrist_dev"]] = rng.uniform(-10, 10)
        return clip_articulation(a)
    if kind == "press":
        a = GESTURES["point"] + rng.normal(0.0, 5.0, NUM_PARAMS)
        a[_P["index_mcp"]], a[_P["index_pip"]] = rng.uniform(0, 30), rng.uniform(0, 20)
        return clip_articulation(a)
    return sample_articulation(rng, gesture_prob, noise_deg)


def sample_grasp(rng: np.random.Generator, shape: HandShape, scale: float,
                 kind: str | None = None, gesture_prob: float = 0.5,
                 noise_deg: float = 10.0) -> Grasp:
    """Draw a grasp (type by ``GRASP_PROBS`` unless ``kind``) for a hand of this shape.

    The wrist angles are left at 0 for the scene to set. A held grasp whose fingers end
    inside the object (never seen in the tests, guarded all the same) falls back to an
    empty hand ("none").
    """
    if kind is None:
        kind = GRASP_TYPES[int(rng.choice(len(GRASP_TYPES), p=GRASP_PROBS))]
    if kind not in GRASP_TYPES:
        raise ValueError(f"grasp kind must be one of {GRASP_TYPES}, got {kind!r}")
    if kind not in HELD:
        art = _free_angles(kind, rng, gesture_prob, noise_deg)
        return Grasp(kind, art, None, None, np.full(5, np.nan))
    poser = _Poser(shape, scale)
    fingers, count = _NEEDED[kind]
    best = None
    for _ in range(_TRIES):
        obj, name, start, closed, active, push = _held_setup(kind, rng, poser)
        cleared = clear_start(poser, obj, start, closed, active, push)
        if cleared is None:
            continue
        obj, start = cleared
        art, gaps = close_fingers(poser, start, closed, obj, active)
        if gaps.min() < 0.0:
            continue
        touching = int(np.sum(gaps[fingers] < CONTACT_TOLERANCE_MM))
        if best is None or touching > best[0]:
            best = (touching, Grasp(kind, art, obj, name, gaps))
        if touching >= count:
            break
    if best is None:
        return Grasp("none", _free_angles("none", rng, gesture_prob, noise_deg), None, None,
                     np.full(5, np.nan), drawn=kind)  # fmt: skip
    return best[1]
