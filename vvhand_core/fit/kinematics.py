"""The synthetic hand model in torch: batched, differentiable kinematics and primitives.

The same hand as :func:`vvhand_core.data.synthetic.hand_model.pose_hand` (its constants,
parameter names and limits are imported from there, so the two cannot drift apart in
anything but code): 23 angles (degrees, ``PARAM_NAMES`` order) -> 21 joints and the
spheres, capsules and ellipsoids, in the same order, in the hand frame; then mirroring
(left hands), a uniform scale and a rigid placement in the camera frame. Equality with the
numpy generator is tested to 0.01 mm (``test/test_fit_kinematics.py``) on random
articulations, shapes, scales, sides and on generated frames of both scene versions.

Closed forms make the batch cheap: consecutive flexions about one axis add up, so a
finger segment's direction is Rz(splay) (0, cos c, sin c) with c the summed flexion.

Placement (camera mm): p_cam = R (s (m * p_hand - PIVOT_MM)) + t with m = (-1, 1, 1) for a
left hand, (1, 1, 1) for a right one; R (B, 3, 3), s (B,), t (B, 3). ``PIVOT_MM`` sits
in the palm, so rotations of the fit turn the hand about its middle.

The posed hand is one array of 34 unique points (:class:`Posed`: the 21 joints, metacarpal
bases, forearm ends, ellipsoid centres, palm samples) placed in one product; primitives
are gathers from it (``IDX``), which keeps the number of torch operations per call small
(the fit's inner loop uses the numpy twin for one hand, :mod:`.hand_np`, with the same
layout and ``IDX``). The generator keeps its own numpy code, so its
frames stay bit-identical (its v1 hashes are pinned); the equality test is the link.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from vvhand_core.data.synthetic.hand_model import LIMITS_DEG, NUM_PARAMS, HandShape
from vvhand_core.fit.tables import ABD_SIGN, PIVOT_MM, forearm_ends, shape_fields
from vvhand_core.fit.tables import IDX as TABLE_IDX


def _t(x, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor(np.array(x, dtype=np.float64), dtype=dtype)


@dataclass(frozen=True)
class ShapeTensors:
    """A :class:`HandShape` as float64 tensors (mm) plus what follows from it alone.

    Built once (``from_shape``) and shared by every call, so the kinematics spend no
    operations on constants. Finger tensors are ordered index..pinky.
    """

    lengths: torch.Tensor  # (4, 3) proximal, middle, distal
    rest_splay_rad: torch.Tensor  # (4,)
    mcp: torch.Tensor  # (4, 3) knuckles
    thumb_cmc: torch.Tensor  # (3,)
    thumb_lengths: torch.Tensor  # (3,)
    thumb_abd_axis: torch.Tensor  # (3,) unit axis of palmar abduction
    thumb_basis: torch.Tensor  # (9, 12) see ``_thumb``
    joint_radius: torch.Tensor  # (21,)
    sph_r: torch.Tensor  # (26,)
    cap_r: torch.Tensor  # (20,)
    ell_semi: torch.Tensor  # (2, 3) palm, wrist
    round_r: torch.Tensor  # (46,) spheres then capsules
    sample_r: torch.Tensor  # (92,) free-space samples (``Posed.samples``)
    const_points: torch.Tensor  # (12, 3) wrist, 4 bases, ellipsoid centres, palm samples
    forearm_ends: torch.Tensor  # (2, 1) distances of the forearm's ends from the wrist

    @staticmethod
    def from_shape(shape: HandShape | None = None) -> ShapeTensors:
        """Tensors of ``shape`` (default: the mean adult hand, ``HandShape()``)."""
        return ShapeTensors(**{k: _t(v) for k, v in shape_fields(shape).items()})

    def with_forearm(self, length_mm: float) -> ShapeTensors:
        """The same hand with another forearm length (hand-frame mm, before scaling)."""
        return replace(self, forearm_ends=_t(forearm_ends(length_mm)))


@dataclass
class Geometry:
    """Posed primitives of B hands (mm), in the order of ``HandGeometry``.

    joints (B, 21, 3) HANDS2019_21 order; joint_radius (21,) or (B, 21); sph_c (B, 26, 3),
    sph_r (26,) or (B, 26); cap_p0, cap_p1 (B, 20, 3), cap_r (20,) or (B, 20); ell_c
    (B, 2, 3), ell_rot (B, 2, 3, 3) semi-axis directions as columns, ell_semi (2, 3) or
    (B, 2, 3).
    """

    joints: torch.Tensor
    joint_radius: torch.Tensor
    sph_c: torch.Tensor
    sph_r: torch.Tensor
    cap_p0: torch.Tensor
    cap_p1: torch.Tensor
    cap_r: torch.Tensor
    ell_c: torch.Tensor
    ell_rot: torch.Tensor
    ell_semi: torch.Tensor


def _thumb(a: torch.Tensor, sh: ShapeTensors, cos: torch.Tensor, sin: torch.Tensor):
    """Thumb chain (B, 4, 3) (root, mcp, ip, tip) and four directions of its metacarpal.

    Directions (B, 4, 3): the columns y, z and x of the metacarpal's rotation
    Rz(cmc_flex) R(abd_axis, cmc_abd) base Ry(opp), and the palmar-abduction axis as
    turned by cmc_flex. A = Rz(f) R(abd_axis, a) is linear in (cos f, sin f) x (1, cos a,
    sin a), so A applied to the constant vectors is one product with ``thumb_basis``.
    a (B, 23) rad with its cos and sin.
    """
    cf, sf, ca, sa = cos[:, 17:18], sin[:, 17:18], cos[:, 16:17], sin[:, 16:17]
    coef = torch.cat([cf, cf * ca, cf * sa, sf, sf * ca, sf * sa, torch.ones_like(cf), ca, sa], 1)
    av = (coef @ sh.thumb_basis).reshape(-1, 4, 3)  # A y0, A b0, A f0, A abd_axis
    so, co = sin[:, 18:19, None], cos[:, 18:19, None]
    col2 = so * av[:, 1:2] + co * av[:, 2:3]
    tx = co * av[:, 1:2] - so * av[:, 2:3]
    cum = torch.cumsum(torch.nn.functional.pad(a[:, 19:21], (1, 0)), dim=1)[..., None]  # (B, 3, 1)
    seg = sh.thumb_lengths[:, None] * (torch.cos(cum) * av[:, 0:1] + torch.sin(cum) * col2)
    chain = sh.thumb_cmc + torch.nn.functional.pad(torch.cumsum(seg, 1), (0, 0, 1, 0))
    return chain, torch.cat([av[:, 0:1], col2, tx, av[:, 3:4]], dim=1)


def _fingers(a: torch.Tensor, sh: ShapeTensors):
    """Long-finger chains (B, 4, 4, 3) (finger, mcp..tip) and flexion axes (B, 4, 3)."""
    fa = a[:, :16].reshape(-1, 4, 4)  # abd, mcp, pip, dip per finger
    phi = -(sh.rest_splay_rad + _ABD_SIGN_T * fa[..., 0])  # (B, 4)
    cum = torch.cumsum(fa[..., 1:], dim=-1)  # (B, 4, 3)
    cp, sp = torch.cos(phi), torch.sin(phi)
    lcc = sh.lengths * torch.cos(cum)
    seg = torch.stack([-lcc * sp[..., None], lcc * cp[..., None], sh.lengths * torch.sin(cum)],
                      dim=-1)  # (B, 4, 3, 3)
    chain = sh.mcp[:, None] + torch.nn.functional.pad(torch.cumsum(seg, dim=2), (0, 0, 1, 0))
    return chain, torch.stack([cp, sp, torch.zeros_like(cp)], dim=-1)


_ABD_SIGN_T = _t(ABD_SIGN)


def _radians(angles_deg: torch.Tensor) -> torch.Tensor:
    if angles_deg.shape[-1] != NUM_PARAMS:
        raise ValueError(f"angles must have shape (B, {NUM_PARAMS}), got {tuple(angles_deg.shape)}")
    return torch.deg2rad(angles_deg.to(torch.float64))


IDX = {k: torch.from_numpy(v) for k, v in TABLE_IDX.items()}  # sfrac float64, rest int64


def _local_points(a: torch.Tensor, shape: ShapeTensors, axes: bool):
    """The unique points (B, 34, 3) of the posed hand (hand frame), and more.

    Also the forearm's rotation (B, 3, 3) and, with ``axes``, the joint axes (B, 23, 3);
    a (B, 23) radians.
    """
    b = a.shape[0]
    cos, sin = torch.cos(a), torch.sin(a)
    thumb, dirs = _thumb(a, shape, cos, sin)
    fingers, flex = _fingers(a, shape)
    # Rx(-wrist_flex) Rz(wrist_dev) in closed form
    cw, sw, cd, sd = cos[:, 21], sin[:, 21], cos[:, 22], sin[:, 22]
    r_fore = torch.stack([cd, -sd, torch.zeros_like(cd), cw * sd, cw * cd, sw, -sw * sd,
                          -sw * cd, cw], dim=-1).reshape(b, 3, 3)  # fmt: skip
    fore = -r_fore[:, None, :, 1] * shape.forearm_ends  # (B, 2, 3): f0, f1
    pts = torch.cat([shape.const_points[None, :1].expand(b, 1, 3), thumb,
                     fingers.reshape(b, 16, 3), shape.const_points[None, 1:5].expand(b, 4, 3),
                     fore, shape.const_points[None, 5:].expand(b, 7, 3)], dim=1)  # fmt: skip
    if not axes:
        return pts, r_fore, None
    fa = torch.stack([_ABD_AXES.expand(b, 4, 3), flex, flex, flex], dim=2).reshape(b, 16, 3)
    dev = r_fore[:, :, 2]  # Rx(-wrist_flex) z
    other = torch.stack([dirs[:, 3], _EZ.expand(b, 3), dirs[:, 0], dirs[:, 2], dirs[:, 2],
                         _MINUS_EX.expand(b, 3), dev], dim=1)  # fmt: skip
    return pts, r_fore, torch.cat([fa, other], dim=1)


@dataclass
class Posed:
    """B posed hands in the camera frame, as unique points plus what primitives need.

    points (B, 34, 3) mm: wrist, thumb chain (4), finger chains (16) -- together the 21
    joints --, the four metacarpal bases, the forearm's two ends, the ellipsoids' centres,
    five palm samples; ell_rot (B, 2, 3, 3); scale (B,); axes (B, 23, 3) or None: each
    angle's joint axis (pivots: :attr:`pivots`). ``IDX`` maps primitives to points.
    """

    points: torch.Tensor
    ell_rot: torch.Tensor
    scale: torch.Tensor
    shape: ShapeTensors
    axes: torch.Tensor | None = None

    @property
    def joints(self) -> torch.Tensor:
        """(B, 21, 3) HANDS2019_21."""
        return self.points[:, :21]

    @property
    def pivots(self) -> torch.Tensor:
        """(B, 23, 3) a point on each angle's joint axis."""
        return self.points[:, IDX["pivots"]]

    def round_parts(self):
        """Spheres then capsules as segments: p0, p1 (B, 46, 3), radius (B, 46) mm."""
        r = self.shape.round_r * self.scale[:, None]
        return self.points[:, IDX["round0"]], self.points[:, IDX["round1"]], r

    def ellipsoids(self):
        """Centres (B, 2, 3), rotations (B, 2, 3, 3), semi-axes (B, 2, 3) mm."""
        return self.points[:, 27:29], self.ell_rot, self.shape.ell_semi * self.scale[:, None, None]

    def samples(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Free-space samples (``surface`` module doc): centres (B, 92, 3), radii (B, 92)."""
        p0, p1 = self.points[:, IDX["s0"]], self.points[:, IDX["s1"]]
        return p0 + IDX["sfrac"] * (p1 - p0), self.shape.sample_r * self.scale[:, None]

    def geometry(self) -> Geometry:
        """The same hands as a :class:`Geometry` (``HandGeometry``'s primitive order)."""
        s = self.scale[:, None]
        c, rot, semi = self.ellipsoids()
        return Geometry(self.joints, self.shape.joint_radius * s, self.points[:, IDX["sph"]],
                        self.shape.sph_r * s, self.points[:, IDX["cap0"]],
                        self.points[:, IDX["cap1"]], self.shape.cap_r * s, c, rot, semi)


def pose(angles_deg: torch.Tensor, rotation: torch.Tensor, translation_mm: torch.Tensor,
         scale: torch.Tensor, shape: ShapeTensors, left: bool = False,
         axes: bool = False) -> Posed:
    """Posed, mirrored (left), scaled and placed hands: p = R (s (m * p - PIVOT_MM)) + t.

    angles_deg (B, 23), rotation (B, 3, 3), translation_mm (B, 3), scale (B,). With
    ``axes`` also each angle's joint axis in the camera frame: d(point)/d(angle_j) =
    axis_j x (point - pivot_j) per radian for the parts angle j moves
    (:mod:`vvhand_core.fit.bodies`); a mirrored hand turns about -M axis (M = diag(-1, 1,
    1)), since M Rot(a, t) M = Rot(-M a, t).
    """
    pts, r_fore, ax = _local_points(_radians(angles_deg), shape, axes)
    m = _MIRROR if left else _ONES
    s = scale.to(torch.float64)
    rt = rotation.transpose(1, 2)
    cam = s[:, None, None] * ((pts * m - _PIVOT) @ rt) + translation_mm[:, None, :]
    if left:  # the same ellipsoid mirrored, with a proper rotation: M R M
        r_fore = _MIRROR[:, None] * r_fore * _MIRROR
    ell_rot = torch.stack([rotation, rotation @ r_fore], dim=1)
    if ax is not None:
        ax = (-ax * _MIRROR if left else ax) @ rt
    return Posed(cam, ell_rot, s, shape, ax)


def hand_model(angles_deg: torch.Tensor, rotation: torch.Tensor, translation_mm: torch.Tensor,
               scale: torch.Tensor, shape: ShapeTensors, left: bool = False) -> Geometry:
    """Posed, mirrored (left), scaled and placed hands in the camera frame (B batches)."""
    return pose(angles_deg, rotation, translation_mm, scale, shape, left).geometry()


def pose_local(angles_deg: torch.Tensor, shape: ShapeTensors) -> Geometry:
    """Forward kinematics in the hand frame (right hand, scale 1): angles (B, 23) degrees."""
    b = angles_deg.shape[0]
    eye = torch.eye(3, dtype=torch.float64).expand(b, 3, 3)
    return hand_model(angles_deg, eye, _PIVOT.expand(b, 3), torch.ones(b, dtype=torch.float64),
                      shape)


def hand_joints(angles_deg: torch.Tensor, rotation: torch.Tensor, translation_mm: torch.Tensor,
                scale: torch.Tensor, shape: ShapeTensors, left: bool = False) -> torch.Tensor:
    """Only the joints (B, 21, 3) camera mm."""
    return pose(angles_deg, rotation, translation_mm, scale, shape, left).joints


def rotation_from_vector(omega: torch.Tensor) -> torch.Tensor:
    """Rodrigues: axis-angle vectors (B, 3) rad -> rotations (B, 3, 3).

    A tiny constant under the square root keeps 0 finite (there the rotation is I; below
    ~1e-6 rad the second-order term loses relative precision but not absolute).
    """
    theta2 = (omega * omega @ _ONES)[:, None, None]  # (B, 1, 1)
    theta = torch.sqrt(theta2 + 1e-30)
    z = torch.zeros_like(omega[:, 0])
    x, y, w = omega.unbind(-1)
    k = torch.stack([z, -w, y, w, z, -x, -y, x, z], dim=-1).reshape(-1, 3, 3)
    second = (1.0 - torch.cos(theta)) / (theta2 + 1e-30)
    return _EYE + torch.sin(theta) / theta * k + second * (k @ k)


_EYE = torch.eye(3, dtype=torch.float64)
_MIRROR, _ONES, _PIVOT = _t([-1.0, 1.0, 1.0]), _t([1.0, 1.0, 1.0]), _t(PIVOT_MM)
_EZ, _MINUS_EX = _t([0.0, 0.0, 1.0]), _t([-1.0, 0.0, 0.0])
_ABD_AXES = torch.stack([torch.zeros(4), torch.zeros(4), -_ABD_SIGN_T], dim=-1).to(torch.float64)


def limits_deg() -> torch.Tensor:
    """(23, 2) lower, upper joint limits in degrees (``LIMITS_DEG``)."""
    return _t(LIMITS_DEG)
