"""An articulated right hand built from spheres, capsules and ellipsoids, and its kinematics.

Hand frame (millimetres, right hand): origin at the wrist joint centre, +y distal (towards
the middle finger), +x radial (towards the thumb), +z palmar (out of the palm). Viewed
with the palm towards the viewer and fingers up, x points right and y up.

Articulation is a flat vector of ``NUM_PARAMS`` angles in degrees (see ``PARAM_NAMES``):
for index..pinky ``abd, mcp, pip, dip`` (abduction about the palm normal, > 0 spreads away
from the middle finger (middle: radially); flexion towards the palm), for the thumb
``cmc_abd`` (palmar abduction out of the palm plane), ``cmc_flex`` (adduction across the
palm), ``opp`` (opposition: axial pronation of the metacarpal, which turns the thumb's
flexion plane towards the fingers), ``mcp``, ``ip``; then the wrist ``flex`` and ``dev``
(forearm direction relative to the hand). ``LIMITS_DEG`` bounds them.

Joint positions are the centres of the primitives' end spheres, so every joint lies inside
the hand's volume and projects onto its silhouette. Ground truth is in ``HANDS2019_21``
order (the thumb's mcp/pip/dip are its root (carpometacarpal region), MCP and IP joints).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vvhand_core.skeletons import FINGERS, HANDS2019_21

LONG_FINGERS: tuple[str, ...] = FINGERS[1:]


def _param_names() -> tuple[str, ...]:
    names = []
    for f in LONG_FINGERS:
        names += [f"{f}_abd", f"{f}_mcp", f"{f}_pip", f"{f}_dip"]
    names += ["thumb_cmc_abd", "thumb_cmc_flex", "thumb_opp", "thumb_mcp", "thumb_ip"]
    names += ["wrist_flex", "wrist_dev"]
    return tuple(names)


PARAM_NAMES: tuple[str, ...] = _param_names()
NUM_PARAMS = len(PARAM_NAMES)


def _limits() -> np.ndarray:
    per_finger = [(-15.0, 15.0), (-20.0, 90.0), (0.0, 105.0), (-5.0, 80.0)]
    lim = per_finger * len(LONG_FINGERS)
    lim += [(0.0, 70.0), (-20.0, 45.0), (0.0, 90.0), (-10.0, 60.0), (-15.0, 80.0)]
    lim += [(-60.0, 60.0), (-20.0, 30.0)]
    out = np.array(lim, dtype=np.float64)
    out.setflags(write=False)
    return out


LIMITS_DEG: np.ndarray = _limits()  # (NUM_PARAMS, 2) lower, upper; read-only

# The hand's layout beyond HandShape's numbers, shared by this module's pose_hand (the
# generator) and the fit's model (vvhand_core.fit.tables / hand_np): one definition.
ABD_SIGN: tuple[float, ...] = (1.0, 1.0, -1.0, -1.0)  # abd > 0 spreads away from the middle
METACARPAL_BASE_X = 0.45  # a metacarpal's base sits at this share of its knuckle's x ...
METACARPAL_BASE_Y_MM = 18.0  # ... and this far from the wrist (hand-frame y)
FOREARM_START_MM = 18.0  # the forearm's first sphere: this far from the wrist, along it
WRIST_ELLIPSOID_CENTRE_MM = (0.0, 2.0, 0.0)
THUMB_ROOT_EXTRA_MM = 1.0  # the thumb's root sphere is this much wider than its metacarpal


@dataclass(frozen=True)
class HandShape:
    """Adult hand proportions (mm). Wrist to middle fingertip = mcp_y + sum(middle lengths).

    Finger tuples are ordered index, middle, ring, pinky; segment tuples proximal, middle,
    distal (distal ends at the fingertip joint). ``rest_splay_deg`` > 0 turns a finger
    radially (towards the thumb). Radii are per segment; the joint spheres
    take the radius of the segment that starts there, so fingers taper towards the tips.
    """

    mcp_x: tuple[float, ...] = (30.0, 10.0, -9.0, -27.0)
    mcp_y: tuple[float, ...] = (86.0, 90.0, 85.0, 77.0)
    rest_splay_deg: tuple[float, ...] = (7.0, 0.0, -6.0, -13.0)
    lengths: tuple[tuple[float, float, float], ...] = (
        (40.0, 24.0, 20.0),
        (45.0, 28.0, 22.0),
        (42.0, 27.0, 21.0),
        (33.0, 20.0, 19.0),
    )
    radii: tuple[tuple[float, float, float], ...] = (
        (9.0, 8.3, 7.5),
        (9.3, 8.6, 7.8),
        (8.8, 8.1, 7.4),
        (7.9, 7.3, 6.6),
    )
    metacarpal_radii: tuple[float, ...] = (11.0, 11.5, 10.5, 9.5)
    thumb_cmc: tuple[float, float, float] = (19.0, 20.0, 7.0)
    thumb_rest_dir: tuple[float, float, float] = (0.55, 0.78, 0.30)
    thumb_lengths: tuple[float, float, float] = (44.0, 32.0, 26.0)
    thumb_radii: tuple[float, float, float] = (12.0, 10.0, 8.8)
    palm_center: tuple[float, float, float] = (1.0, 46.0, 0.0)
    palm_semi_axes: tuple[float, float, float] = (37.0, 41.0, 13.5)
    wrist_semi_axes: tuple[float, float, float] = (27.0, 20.0, 17.0)
    forearm_radius: float = 24.0
    forearm_length: float = 260.0

    def hand_length_mm(self) -> float:
        """Wrist joint to middle fingertip joint with straight fingers."""
        return self.mcp_y[1] + sum(self.lengths[1])


def with_finger_lengths(shape: HandShape, factors) -> HandShape:
    """``shape`` with each finger's segment lengths times its factor; radii unchanged.

    factors (5,): thumb, index, middle, ring, pinky.
    """
    f = [float(x) for x in factors]
    return replace(shape,
                   lengths=tuple(tuple(x * f[i + 1] for x in seg)
                                 for i, seg in enumerate(shape.lengths)),
                   thumb_lengths=tuple(x * f[0] for x in shape.thumb_lengths))


def thumb_frame(shape: HandShape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The thumb's rest frame (hand frame): y0, f0, the abduction axis, each (3,).

    y0: the unit rest direction; f0: the unit flexion direction at rest (across the palm,
    orthogonal to y0); the palmar-abduction axis y0 x z, not normalised.
    """
    y0 = np.asarray(shape.thumb_rest_dir, dtype=np.float64)
    y0 = y0 / np.linalg.norm(y0)
    across = np.array([-1.0, 0.0, 0.0])  # flexion direction at rest: across the palm
    f0 = across - y0 * (across @ y0)
    f0 = f0 / np.linalg.norm(f0)
    return y0, f0, np.cross(y0, np.array([0.0, 0.0, 1.0]))


def joint_radii(shape: HandShape) -> tuple[np.ndarray, np.ndarray]:
    """Radii (mm) of the spheres at the joints: thumb (4,) root..tip, fingers (4, 4) mcp..tip.

    A joint's sphere is as wide as the wider segment meeting there (no gaps): the segment
    that ends there, the metacarpal at a knuckle, ``THUMB_ROOT_EXTRA_MM`` more at the
    thumb's root.
    """
    tr, radii = shape.thumb_radii, np.asarray(shape.radii, dtype=np.float64)
    thumb = np.array([tr[0] + THUMB_ROOT_EXTRA_MM, tr[0], tr[1], tr[2]])
    knuckle = np.maximum(radii[:, :1], np.asarray(shape.metacarpal_radii)[:, None])
    return thumb, np.concatenate([knuckle, radii], axis=1)


def metacarpal_base(shape: HandShape, finger: int) -> np.ndarray:
    """Where long finger ``finger``'s (0 index .. 3 pinky) metacarpal starts: (3,) hand mm."""
    return np.array([METACARPAL_BASE_X * shape.mcp_x[finger], METACARPAL_BASE_Y_MM, 0.0])


def _rot(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rotation matrix (3, 3) about a unit axis (Rodrigues)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1 - np.cos(angle_rad)) * (k @ k)


def _rx(angle_rad: float) -> np.ndarray:
    return _rot(np.array([1.0, 0.0, 0.0]), angle_rad)


def _rz(angle_rad: float) -> np.ndarray:
    return _rot(np.array([0.0, 0.0, 1.0]), angle_rad)


@dataclass
class HandGeometry:
    """Posed hand: joints and primitives in one frame (mm).

    joints (21, 3) HANDS2019_21 order; joint_radius (21,) radius of the sphere at each
    joint; spheres (S, 4) [cx, cy, cz, r]; capsules (C, 7) [p0 (3), p1 (3), r] -- the
    cylinder part only, its ends are always covered by spheres of radius >= r;
    ellipsoids: centres (E, 3), rotations (E, 3, 3) with the semi-axis directions as
    columns, semi_axes (E, 3). ``part`` ids: sphere s is part s, capsule c is S + c,
    ellipsoid e is S + C + e. is_forearm (P,) bool marks the forearm's parts (None: none).
    """

    joints: np.ndarray
    joint_radius: np.ndarray
    spheres: np.ndarray
    capsules: np.ndarray
    ell_centers: np.ndarray
    ell_rotations: np.ndarray
    ell_semi_axes: np.ndarray
    is_forearm: np.ndarray | None = None

    @property
    def num_parts(self) -> int:
        """P = S + C + E."""
        return len(self.spheres) + len(self.capsules) + len(self.ell_centers)

    def forearm_mask(self) -> np.ndarray:
        """(P,) bool, True for forearm parts."""
        if self.is_forearm is None:
            return np.zeros(self.num_parts, dtype=bool)
        return self.is_forearm

    def transformed(self, rotation: np.ndarray, translation: np.ndarray) -> HandGeometry:
        """The same hand under p -> rotation @ p + translation (rotation (3, 3))."""
        r = np.asarray(rotation, dtype=np.float64)
        t = np.asarray(translation, dtype=np.float64)
        spheres = self.spheres.copy()
        spheres[:, :3] = spheres[:, :3] @ r.T + t
        caps = self.capsules.copy()
        caps[:, 0:3] = caps[:, 0:3] @ r.T + t
        caps[:, 3:6] = caps[:, 3:6] @ r.T + t
        return replace(
            self,
            joints=self.joints @ r.T + t,
            spheres=spheres,
            capsules=caps,
            ell_centers=self.ell_centers @ r.T + t,
            ell_rotations=r[None] @ self.ell_rotations,
        )

    def scaled(self, s: float) -> HandGeometry:
        """Uniformly scaled about the origin."""
        return replace(
            self,
            joints=self.joints * s,
            joint_radius=self.joint_radius * s,
            spheres=self.spheres * s,
            capsules=self.capsules * s,
            ell_centers=self.ell_centers * s,
            ell_semi_axes=self.ell_semi_axes * s,
        )

    def mirrored(self) -> HandGeometry:
        """Mirror image under x -> -x (a right hand becomes a left hand, same joint order).

        Applied in the hand frame, before placement: the left hand's frame is the mirror
        of the right hand's (its +x points to the ulnar side), so a proper rotation still
        maps it into the camera. Ellipsoid axes become M R M (M = diag(-1, 1, 1)): the same
        ellipsoid, mirrored, with a proper rotation.
        """
        m = np.array([-1.0, 1.0, 1.0])
        spheres = self.spheres.copy()
        spheres[:, 0] *= -1.0
        caps = self.capsules.copy()
        caps[:, 0] *= -1.0
        caps[:, 3] *= -1.0
        return replace(
            self,
            joints=self.joints * m,
            spheres=spheres,
            capsules=caps,
            ell_centers=self.ell_centers * m,
            ell_rotations=m[None, :, None] * self.ell_rotations * m[None, None, :],
        )

    def bounding_spheres(self) -> np.ndarray:
        """(P, 4) [centre, radius] of every primitive, in part order."""
        caps_c = 0.5 * (self.capsules[:, 0:3] + self.capsules[:, 3:6])
        caps_r = 0.5 * np.linalg.norm(self.capsules[:, 3:6] - self.capsules[:, 0:3], axis=1)
        caps = np.concatenate([caps_c, (caps_r + self.capsules[:, 6])[:, None]], axis=1)
        ell = np.concatenate([self.ell_centers, self.ell_semi_axes.max(axis=1)[:, None]], axis=1)
        return np.concatenate([self.spheres, caps, ell], axis=0)

    def support(self, direction: np.ndarray, forearm_keep_mm: float = 60.0) -> float:
        """Largest direction . p over the hand's surface (exact; unit ``direction`` (3,)).

        Forearm parts count only within ``forearm_keep_mm`` of the wrist joint (used to put
        background planes behind the hand; the far forearm may pass through them).
        """
        n = np.asarray(direction, dtype=np.float64)
        fore = self.forearm_mask()
        ns = len(self.spheres)
        nc = len(self.capsules)
        wrist = self.joints[0] if len(self.joints) else np.zeros(3)
        best = -np.inf
        for k, (c, r) in enumerate(zip(self.spheres[:, :3], self.spheres[:, 3])):
            if not fore[k] or np.linalg.norm(c - wrist) <= forearm_keep_mm + r:
                best = max(best, float(n @ c + r))
        for k, cap in enumerate(self.capsules):
            p0, p1, r = cap[0:3], cap[3:6], cap[6]
            if fore[ns + k]:
                length = float(np.linalg.norm(p1 - p0))
                axis = (p1 - p0) / length
                keep = min(length, max(0.0, forearm_keep_mm - float(np.linalg.norm(p0 - wrist))))
                p1 = p0 + axis * keep
            best = max(best, float(max(n @ p0, n @ p1) + r))
        for k in range(len(self.ell_centers)):
            if fore[ns + nc + k]:
                continue
            c, rot, semi = self.ell_centers[k], self.ell_rotations[k], self.ell_semi_axes[k]
            best = max(best, float(n @ c + np.linalg.norm(semi * (rot.T @ n))))
        return best


def rest_articulation() -> np.ndarray:
    """A relaxed open hand: all angles 0 except a slightly abducted thumb (NUM_PARAMS,)."""
    a = np.zeros(NUM_PARAMS)
    a[PARAM_NAMES.index("thumb_cmc_abd")] = 15.0
    return a


def clip_articulation(angles_deg: np.ndarray) -> np.ndarray:
    """Clip angles (..., NUM_PARAMS) to ``LIMITS_DEG``."""
    return np.clip(angles_deg, LIMITS_DEG[:, 0], LIMITS_DEG[:, 1])


def pose_hand(angles_deg: np.ndarray, shape: HandShape | None = None) -> HandGeometry:
    """Forward kinematics: articulation (NUM_PARAMS,) degrees -> geometry in the hand frame."""
    shape = shape or HandShape()
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    if a.shape != (NUM_PARAMS,):
        raise ValueError(f"articulation must have shape ({NUM_PARAMS},), got {a.shape}")
    p = dict(zip(PARAM_NAMES, a))
    joints = np.zeros((HANDS2019_21.num_joints, 3))
    jrad = np.zeros(HANDS2019_21.num_joints)
    spheres: list[list[float]] = []
    capsules: list[list[float]] = []

    def sphere(c, r):
        spheres.append([*c, r])

    def capsule(p0, p1, r):
        capsules.append([*p0, *p1, r])

    thumb_jr, finger_jr = joint_radii(shape)
    # ---- thumb: root (cmc), mcp, ip, tip -> HANDS2019 thumb_mcp/pip/dip/tip
    y0, f0, abd_axis = thumb_frame(shape)
    base = np.stack([np.cross(y0, f0), y0, f0], axis=1)  # columns x (flex axis), y, z
    r_thumb = (
        _rz(p["thumb_cmc_flex"])
        @ _rot(abd_axis, p["thumb_cmc_abd"])
        @ base
        @ _rot(np.array([0.0, 1.0, 0.0]), p["thumb_opp"])
    )
    pos = np.asarray(shape.thumb_cmc, dtype=np.float64)
    chain = [pos]
    rot = r_thumb
    flex = [0.0, p["thumb_mcp"], p["thumb_ip"]]
    for k in range(3):
        rot = rot @ _rx(flex[k])
        pos = pos + rot @ np.array([0.0, shape.thumb_lengths[k], 0.0])
        chain.append(pos)
    for k in range(4):
        j = HANDS2019_21.index(f"thumb_{('mcp', 'pip', 'dip', 'tip')[k]}")
        joints[j] = chain[k]
        jrad[j] = thumb_jr[k]
        sphere(chain[k], jrad[j])
        if k < 3:
            capsule(chain[k], chain[k + 1], shape.thumb_radii[k])

    # ---- long fingers
    for i, finger in enumerate(LONG_FINGERS):
        mcp = np.array([shape.mcp_x[i], shape.mcp_y[i], 0.0])
        rot = _rz(-(np.deg2rad(shape.rest_splay_deg[i]) + ABD_SIGN[i] * p[f"{finger}_abd"]))
        pos = mcp
        chain = [pos]
        for k, part in enumerate(("mcp", "pip", "dip")):
            rot = rot @ _rx(p[f"{finger}_{part}"])
            pos = pos + rot @ np.array([0.0, shape.lengths[i][k], 0.0])
            chain.append(pos)
        for k, part in enumerate(("mcp", "pip", "dip", "tip")):
            j = HANDS2019_21.index(f"{finger}_{part}")
            joints[j] = chain[k]
            jrad[j] = finger_jr[i, k]
            sphere(chain[k], jrad[j])
            if k < 3:
                capsule(chain[k], chain[k + 1], shape.radii[i][k])
        # metacarpal (palm body) from near the wrist to the knuckle
        base_pt = metacarpal_base(shape, i)
        sphere(base_pt, shape.metacarpal_radii[i])
        capsule(base_pt, mcp, shape.metacarpal_radii[i])

    # ---- wrist and forearm
    joints[0] = 0.0
    jrad[0] = min(shape.wrist_semi_axes)
    r_fore = _rx(-p["wrist_flex"]) @ _rz(p["wrist_dev"])
    axis = r_fore @ np.array([0.0, -1.0, 0.0])
    f0p = axis * FOREARM_START_MM
    f1p = axis * shape.forearm_length
    first_forearm_sphere, first_forearm_capsule = len(spheres), len(capsules)
    sphere(f0p, shape.forearm_radius)
    sphere(f1p, shape.forearm_radius)
    capsule(f0p, f1p, shape.forearm_radius)

    ell_c = np.array([shape.palm_center, WRIST_ELLIPSOID_CENTRE_MM], dtype=np.float64)
    ell_r = np.stack([np.eye(3), r_fore])
    ell_a = np.array([shape.palm_semi_axes, shape.wrist_semi_axes], dtype=np.float64)
    fore_s = np.arange(len(spheres)) >= first_forearm_sphere
    fore_c = np.arange(len(capsules)) >= first_forearm_capsule
    fore_e = np.array([False, False])  # palm, wrist (the wrist is part of the hand proper)
    return HandGeometry(
        joints=joints,
        joint_radius=jrad,
        spheres=np.asarray(spheres, dtype=np.float64),
        capsules=np.asarray(capsules, dtype=np.float64),
        ell_centers=ell_c,
        ell_rotations=ell_r,
        ell_semi_axes=ell_a,
        is_forearm=np.concatenate([fore_s, fore_c, fore_e]),
    )
