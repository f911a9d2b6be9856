"""The fit's hand model: one hand posed in closed form, in numpy (the fit's inner loop).

The hand is defined once, in :mod:`vvhand_core.data.synthetic.hand_model` (proportions,
joint limits, layout; :mod:`.tables` turns it into arrays); the generator poses it with
:func:`~vvhand_core.data.synthetic.hand_model.pose_hand`, one rotation matrix per joint,
and this module poses the same hand in closed form: consecutive flexions about one axis
add up, so a finger segment's direction is Rz(splay) (0, cos c, sin c) with c the summed
flexion, every cosine and sine is taken in one call, and the posed hand is one array of
34 unique points (the 21 joints, the metacarpal bases, the forearm's ends, the
ellipsoids' centres, five palm samples; ``tables.IDX`` maps primitives to them) placed in
one product. Why two codes for one hand: docs/architecture.md ("The hand model"). They are
tested equal (``test/test_fit_kinematics.py``, 0.01 mm, and on generated frames).

Placement (camera mm): p_cam = R (s (m * p_hand - PIVOT_MM)) + t with m = (-1, 1, 1) for a
left hand, (1, 1, 1) for a right one. ``PIVOT_MM`` sits in the palm, so rotations of the
fit turn the hand about its middle. With ``axes`` also each angle's joint axis:
d(point)/d(angle_j) = axis_j x (point - pivot_j) per radian for the parts angle j moves
(:mod:`vvhand_core.fit.bodies`); a mirrored hand turns about -M axis (M = diag(-1, 1, 1)),
since M Rot(a, t) M = Rot(-M a, t).

:class:`HandPose`: points (34, 3) camera mm, ell_rot (2, 3, 3), scale, axes (23, 3) or None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vvhand_core.data.synthetic.hand_model import ABD_SIGN, HandShape
from vvhand_core.fit import compiled
from vvhand_core.fit.tables import (
    IDX,
    PIVOT_MM,
    SHAPE_FIELDS,
    forearm_ends,
    shape_fields,
)

_SFRAC = IDX["sfrac"]
_ABD_SIGN = np.array(ABD_SIGN)
_ABD_AXES = np.stack([np.zeros(4), np.zeros(4), -_ABD_SIGN], axis=1)
_MIRROR, _PIVOT = np.array([-1.0, 1.0, 1.0]), np.array(PIVOT_MM)
_EZ, _MINUS_EX = np.array([0.0, 0.0, 1.0]), np.array([-1.0, 0.0, 0.0])


@dataclass(frozen=True)
class ShapeArrays:
    """A :class:`HandShape` as float64 arrays (mm) and what follows from it alone.

    ``tables.shape_fields`` computes the fields (built once per shape and shared by every
    call, so the kinematics spend no operations on constants): lengths (4, 3) proximal,
    middle, distal per long finger (index..pinky); rest_splay_rad (4,); mcp (4, 3)
    knuckles; thumb_cmc (3,); thumb_lengths (3,); thumb_abd_axis (3,) unit axis of palmar
    abduction; thumb_basis (9, 12) (``tables.thumb_basis``); joint_radius (21,); sph_r
    (26,); cap_r (20,); ell_semi (2, 3) palm, wrist; round_r (46,) spheres then capsules;
    sample_r (92,) free-space samples; const_points (12, 3) wrist, 4 metacarpal bases,
    ellipsoid centres, palm samples; forearm_ends (2, 1) distances of the forearm's ends
    from the wrist; template (34, 3) the posed points' array with its constant rows set;
    angle_offset (42,) rest splays where ``_ANGLE_MAP`` puts the abductions.
    """

    lengths: np.ndarray
    rest_splay_rad: np.ndarray
    mcp: np.ndarray
    thumb_cmc: np.ndarray
    thumb_lengths: np.ndarray
    thumb_abd_axis: np.ndarray
    thumb_basis: np.ndarray
    joint_radius: np.ndarray
    sph_r: np.ndarray
    cap_r: np.ndarray
    ell_semi: np.ndarray
    round_r: np.ndarray
    sample_r: np.ndarray
    const_points: np.ndarray
    forearm_ends: np.ndarray
    template: np.ndarray  # (34, 3) the posed points' array with its constant rows set
    angle_offset: np.ndarray  # (42,) rest splays where _ANGLE_MAP puts the abductions

    @staticmethod
    def from_fields(arrays: dict[str, np.ndarray]) -> ShapeArrays:
        """The arrays of ``tables.shape_fields``."""
        template = np.zeros((34, 3))
        const = arrays["const_points"]
        template[0], template[1], template[21:25], template[27:34] = \
            const[0], arrays["thumb_cmc"], const[1:5], const[5:]
        template[5:21:4] = arrays["mcp"]
        offset = np.zeros(42)  # added to the angles' product (_ANGLE_MAP)
        offset[23:27] = arrays["rest_splay_rad"]
        return ShapeArrays(**{k: arrays[k] for k in SHAPE_FIELDS}, template=template,
                           angle_offset=offset)

    @staticmethod
    def from_shape(shape: HandShape | None = None, forearm_mm: float | None = None
                   ) -> ShapeArrays:
        """Arrays of ``shape`` (default the mean hand), optionally another forearm length."""
        arrays = shape_fields(shape)
        if forearm_mm is not None:
            arrays["forearm_ends"] = forearm_ends(forearm_mm)
        return ShapeArrays.from_fields(arrays)


@dataclass
class HandPose:
    """One posed hand in the camera frame (module doc; ``tables.IDX`` indexes points)."""

    points: np.ndarray
    ell_rot: np.ndarray
    scale: float
    shape: ShapeArrays
    axes: np.ndarray | None = None

    @property
    def joints(self) -> np.ndarray:
        """(21, 3) HANDS2019_21."""
        return self.points[:21]

    @property
    def pivots(self) -> np.ndarray:
        """(23, 3) a point on each angle's joint axis."""
        return self.points[IDX["pivots"]]

    def round_parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Spheres then capsules as segments: p0, p1 (46, 3), radius (46,) mm."""
        return (self.points[IDX["round0"]], self.points[IDX["round1"]],
                self.shape.round_r * self.scale)

    def ellipsoids(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centres (2, 3), rotations (2, 3, 3), semi-axes (2, 3) mm."""
        return self.points[27:29], self.ell_rot, self.shape.ell_semi * self.scale

    def samples(self) -> tuple[np.ndarray, np.ndarray]:
        """Free-space samples (``surface`` module doc): centres (92, 3), radii (92,)."""
        p0, p1 = self.points[IDX["s0"]], self.points[IDX["s1"]]
        return p0 + _SFRAC * (p1 - p0), self.shape.sample_r * self.scale


def pose(angles_deg: np.ndarray, rotation: np.ndarray, translation_mm: np.ndarray,
         scale: float, shape: ShapeArrays, left: bool = False, axes: bool = False,
         finger_lengths: np.ndarray | None = None, compiled_kernel: bool = False) -> HandPose:
    """One posed, mirrored (left), scaled and placed hand (module doc).

    angles_deg (23,), rotation (3, 3), translation_mm (3,); with ``axes`` also each
    angle's joint axis (camera frame). finger_lengths (5,): factors on the segment
    lengths of the thumb, index, middle, ring and pinky (None: all 1), the same hand as
    ``shape`` with its fingers' lengths so scaled (radii unchanged). ``compiled_kernel``:
    numba's twin of this code where it is enabled (:mod:`.compiled`; the fit's inner loop);
    the default keeps numpy's rounding, on which the generator's grasps depend (their
    frames' bytes are pinned).
    """
    sh = shape
    lengths, thumb_lengths = sh.lengths, sh.thumb_lengths
    if finger_lengths is not None:
        fl = np.asarray(finger_lengths, dtype=np.float64)
        lengths, thumb_lengths = lengths * fl[1:, None], thumb_lengths * fl[0]
    if compiled_kernel and compiled.ENABLED:
        cam, ell_rot, ax = compiled.pose(angles_deg, rotation, translation_mm, scale, lengths,
                                         thumb_lengths, _ANGLE_MAP, sh, _ABD_SIGN, _PIVOT,
                                         left, axes)
        return HandPose(cam, ell_rot, float(scale), shape, ax)
    # the angles, the long fingers' splays (negated) and cumulative flexions, the thumb's
    # cumulative flexions: radians from one product (_ANGLE_MAP)
    every = np.asarray(angles_deg, dtype=np.float64) @ _ANGLE_MAP + sh.angle_offset
    cos, sin = np.cos(every), np.sin(every)
    # thumb: A = Rz(cmc_flex) R(abd_axis, cmc_abd) applied to constants: linear in
    # (cos f, sin f) x (1, cos a, sin a), one product with thumb_basis
    ca, cf, co, sa, sf, so = cos[16:19].tolist() + sin[16:19].tolist()
    av = (np.array([cf, cf * ca, cf * sa, sf, sf * ca, sf * sa, 1.0, ca, sa])
          @ sh.thumb_basis).reshape(4, 3)  # A y0, A b0, A f0, A abd_axis
    col2 = so * av[1] + co * av[2]
    pts = sh.template.copy()  # the constant points in place
    pts[2:5] = sh.thumb_cmc + _TRI @ (thumb_lengths[:, None] * (
        cos[39:42, None] * av[0] + sin[39:42, None] * col2))
    # long fingers: segment direction Rz(phi) (0, cos c, sin c), phi = -every[23:27]
    cp, sp = cos[23:27, None], -sin[23:27, None]
    seg = np.empty((4, 3, 3))
    lcc = lengths * cos[27:39].reshape(4, 3)
    seg[..., 0] = lcc * -sp
    seg[..., 1] = lcc * cp
    seg[..., 2] = lengths * sin[27:39].reshape(4, 3)
    pts[5:21].reshape(4, 4, 3)[:, 1:] = sh.mcp[:, None] + _TRI @ seg  # mcp rows in place
    cw, cd, sw, sd = cos[21:23].tolist() + sin[21:23].tolist()
    r_fore = np.array([[cd, -sd, 0.0], [cw * sd, cw * cd, sw], [-sw * sd, -sw * cd, cw]])
    pts[25:27] = -r_fore[:, 1] * sh.forearm_ends
    rot = np.asarray(rotation, dtype=np.float64)
    dev = r_fore[:, 2].copy()  # the wrist deviation axis, Rx(-wrist_flex) z
    if left:
        pts *= _MIRROR
        r_fore = _MIRROR[:, None] * r_fore * _MIRROR
    rt = rot.T * scale
    cam = pts @ rt + (translation_mm - _PIVOT @ rt)
    ell_rot = np.empty((2, 3, 3))
    ell_rot[0] = rot
    ell_rot[1] = rot @ r_fore
    ax = None
    if axes:
        ax = np.empty((23, 3))
        fax = ax[:16].reshape(4, 4, 3)
        fax[:, 0] = _ABD_AXES
        fax[:, 1:, 0] = cp
        fax[:, 1:, 1] = sp
        fax[:, 1:, 2] = 0.0
        ax[16], ax[17], ax[18] = av[3], _EZ, av[0]
        ax[19] = ax[20] = co * av[1] - so * av[2]
        ax[21], ax[22] = _MINUS_EX, dev
        if left:  # a mirrored hand turns about -M axis (module doc)
            ax *= -_MIRROR
        ax = ax @ rot.T
    return HandPose(cam, ell_rot, float(scale), shape, ax)


def _angle_map() -> np.ndarray:
    """(23, 42) degrees -> radians of the angles pose needs.

    The 23 angles; ABD_SIGN * abduction per long finger (its splay is -(rest splay +
    this)); each long finger's cumulative flexions (mcp, + pip, + dip); the thumb's (0,
    mcp, mcp + ip).
    """
    m = np.zeros((23, 42))
    m[np.arange(23), np.arange(23)] = 1.0
    for i in range(4):
        m[4 * i, 23 + i] = _ABD_SIGN[i]
        for k in range(3):
            m[4 * i + 1:4 * i + 2 + k, 27 + 3 * i + k] = 1.0
    m[19, 40] = m[19, 41] = m[20, 41] = 1.0
    return m * (np.pi / 180.0)


_ANGLE_MAP = _angle_map()
_TRI = np.tril(np.ones((3, 3)))  # cumulative sums over three rows as a product
