"""The hand model's constant tables in numpy: the shape's arrays and the point layout.

The hand itself (proportions ``HandShape``, joint limits, parameter names, the layout's
constants, joint radii, the thumb's frame) is defined once in
:mod:`vvhand_core.data.synthetic.hand_model`, which the generator poses; this module turns
it into what the fit's model (:mod:`.hand_np`) needs: the arrays a :class:`HandShape` gives
(:func:`shape_fields`, the fields of ``hand_np.ShapeArrays``), the index tables of the
34 unique points (:data:`IDX`: the 21 joints, then the metacarpal bases 21-24, the
forearm's ends 25-26, the ellipsoids' centres 27-28, five palm samples 29-33) and the
placement's pivot.
"""

from __future__ import annotations

import numpy as np

from vvhand_core.data.synthetic.hand_model import (
    FOREARM_START_MM,
    WRIST_ELLIPSOID_CENTRE_MM,
    HandShape,
    joint_radii,
    metacarpal_base,
    thumb_frame,
)

PIVOT_MM = (0.0, 60.0, 0.0)  # hand-frame point that the placement rotates about
NUM_SPHERES = 26  # thumb 4, per long finger 4 joints + 1 metacarpal base, forearm 2
NUM_CAPSULES = 20  # thumb 3, per long finger 3 + 1 metacarpal, forearm 1
NUM_ELLIPSOIDS = 2  # palm, wrist
NUM_POINTS = 34
PALM_SAMPLE_OFFSETS = ((0.5, 0.5), (-0.5, 0.5), (0.5, -0.5), (-0.5, -0.5), (0.0, 0.0))
SHAPE_FIELDS = ("lengths", "rest_splay_rad", "mcp", "thumb_cmc", "thumb_lengths",
                "thumb_abd_axis", "thumb_basis", "joint_radius", "sph_r", "cap_r", "ell_semi",
                "round_r", "sample_r", "const_points", "forearm_ends")


def _f64(x) -> np.ndarray:
    return np.array(x, dtype=np.float64)


def forearm_ends(length_mm: float) -> np.ndarray:
    """(2, 1) distances of the forearm's ends from the wrist (hand-frame mm)."""
    return _f64([[FOREARM_START_MM], [float(length_mm)]])


def shape_fields(shape: HandShape | None = None) -> dict[str, np.ndarray]:
    """The float64 arrays (mm) of ``shape`` by :data:`SHAPE_FIELDS` name.

    Default: the mean adult hand, ``HandShape()``; shapes and meaning:
    ``hand_np.ShapeArrays``.
    """
    s = shape or HandShape()
    y0, f0, abd = thumb_frame(s)
    abd = abd / np.linalg.norm(abd)
    radii, meta = np.asarray(s.radii), np.asarray(s.metacarpal_radii)
    tr = np.asarray(s.thumb_radii)
    thumb_jr, finger_jr = joint_radii(s)
    fr = [s.forearm_radius]
    mcp_x = np.asarray(s.mcp_x, dtype=np.float64)
    sph_r = np.concatenate([thumb_jr, np.concatenate([finger_jr, meta[:, None]],
                                                     axis=1).reshape(20), fr, fr])
    cap_r = np.concatenate([tr, np.concatenate([radii, meta[:, None]], axis=1).reshape(16), fr])
    off = np.array(PALM_SAMPLE_OFFSETS)
    pc, ps = np.asarray(s.palm_center), np.asarray(s.palm_semi_axes)
    palm = pc + np.concatenate([off, np.zeros((5, 1))], axis=1) * ps
    palm_r = ps[2] * np.sqrt(1.0 - (off ** 2).sum(axis=1))
    const = np.concatenate([[[0.0, 0.0, 0.0]], [metacarpal_base(s, i) for i in range(4)],
                            [s.palm_center, WRIST_ELLIPSOID_CENTRE_MM], palm])
    return dict(
        lengths=_f64(s.lengths), rest_splay_rad=_f64(np.deg2rad(s.rest_splay_deg)),
        mcp=_f64(np.stack([mcp_x, s.mcp_y, np.zeros(4)], axis=1)),
        thumb_cmc=_f64(s.thumb_cmc), thumb_lengths=_f64(s.thumb_lengths),
        thumb_abd_axis=_f64(abd),
        thumb_basis=_f64(thumb_basis(y0, np.cross(y0, f0), f0, abd)),
        joint_radius=_f64(np.concatenate([[min(s.wrist_semi_axes)], thumb_jr,
                                          finger_jr.reshape(16)])),
        sph_r=_f64(sph_r), cap_r=_f64(cap_r),
        ell_semi=_f64([s.palm_semi_axes, s.wrist_semi_axes]),
        round_r=_f64(np.concatenate([sph_r, cap_r])),
        sample_r=_f64(np.concatenate([sph_r, np.repeat(cap_r, 3), palm_r,
                                      [min(s.wrist_semi_axes)]])),
        const_points=_f64(const), forearm_ends=forearm_ends(s.forearm_length),
    )  # fmt: skip



def thumb_basis(y0, b0, f0, ab) -> np.ndarray:
    """(9, 12) linear map to A y0, A b0, A f0, A ab from (cf, cf ca, cf sa, sf, ..., sa).

    A = Rz(f) R(ab, a) (Rodrigues: R = P + ca (I - P) + sa K), coefficients ordered
    (cf, cf ca, cf sa, sf, sf ca, sf sa, 1, ca, sa).
    """
    k = np.array([[0.0, -ab[2], ab[1]], [ab[2], 0.0, -ab[0]], [-ab[1], ab[0], 0.0]])
    p = np.outer(ab, ab)
    rot = [p, np.eye(3) - p, k]  # times 1, ca, sa
    zc = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # times cf
    zs = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # times sf
    z1 = np.diag([0.0, 0.0, 1.0])
    mats = [z @ r for z in (zc, zs, z1) for r in rot]
    vecs = np.stack([y0, b0, f0, ab])  # (4, 3)
    return np.stack([(vecs @ m.T).reshape(12) for m in mats])


def _index_tables() -> dict[str, np.ndarray]:
    """Where each primitive's points sit in the array of unique points (module doc)."""
    fingers = range(4)
    sph = [1, 2, 3, 4] + [j for i in fingers for j in (5 + 4 * i, 6 + 4 * i, 7 + 4 * i,
                                                          8 + 4 * i, 21 + i)] + [25, 26]
    cap0 = [1, 2, 3] + [j for i in fingers for j in (5 + 4 * i, 6 + 4 * i, 7 + 4 * i, 21 + i)]
    cap1 = [2, 3, 4] + [j for i in fingers for j in (6 + 4 * i, 7 + 4 * i, 8 + 4 * i, 5 + 4 * i)]
    pivots = [j for i in fingers for j in (5 + 4 * i, 5 + 4 * i, 6 + 4 * i, 7 + 4 * i)]
    pivots += [1, 1, 1, 2, 3, 0, 0]
    frac = (0.25, 0.5, 0.75)
    s0 = sph + [a for a in cap0 + [25] for _ in frac] + list(range(29, 34)) + [28]
    s1 = sph + [b for b in cap1 + [26] for _ in frac] + list(range(29, 34)) + [28]
    sf = [0.0] * 26 + list(frac) * 20 + [0.0] * 6
    return {k: np.array(v) for k, v in (
        ("sph", sph), ("cap0", cap0 + [25]), ("cap1", cap1 + [26]), ("pivots", pivots),
        ("round0", sph + cap0 + [25]), ("round1", sph + cap1 + [26]), ("s0", s0), ("s1", s1),
    )} | {"sfrac": _f64(sf)[:, None]}  # fmt: skip


IDX = _index_tables()
