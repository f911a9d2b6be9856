r"""The palm frame: a position and orientation of the hand from the wrist and finger bases.

Defined once here (camera optical frame, millimetres) and used by the node's palm pose and
its TF frame. With W the wrist and M the mean of the four finger MCPs (index..pinky):

    origin  (W + M) / 2                      the middle of the palm
    x       unit(M - W)                      distal: from the wrist towards the fingers
    y       unit(u - (u.x) x), u = pinky_mcp - index_mcp
                                             ulnar: across the palm towards the little finger
    z       x cross y                        right-handed

Picture (a RIGHT hand seen from the palm side, fingers up; z points at the viewer)::

        pinky ring middle index
           o    o    o    o                       ^ x (distal)
            \   |    |   /                        |
             \  |    |  /     thumb               |
              +--origin--+      o      y <--------(.) z (out of the palm)
                    |          /
                  wrist-------o

For a right hand z is the palm normal pointing out of the palm (palmar; the direction a
grasp approaches from). A left hand is the mirror image of a right hand: x and y keep their
anatomical meaning (distal, towards the little finger), and since the frame stays
right-handed its z then points out of the BACK of the hand (dorsal). Consumers that know
the side (HandPose.side) and want z palmar for both hands rotate a left hand's frame by
180 degrees about x (y, z -> -y, -z).

Only skeletons with a wrist and index..pinky MCPs (``hands2019_21``) have a palm frame;
:func:`palm_indices` returns None for the others.
"""

from __future__ import annotations

import numpy as np

from vvhand_core.skeletons import Skeleton

FINGER_BASES = ("index_mcp", "middle_mcp", "ring_mcp", "pinky_mcp")


def palm_indices(skeleton: Skeleton) -> tuple[int, list[int]] | None:
    """(wrist index, [index, middle, ring, pinky MCP indices]) or None without those joints."""
    names = list(skeleton.joint_names)
    if "wrist" not in names or not all(n in names for n in FINGER_BASES):
        return None
    return names.index("wrist"), [names.index(n) for n in FINGER_BASES]


def palm_frame(joints_mm: np.ndarray, skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """(origin (3,) mm, rotation (3, 3)) of the palm frame; columns of the rotation = x, y, z.

    joints_mm (J, 3) in ``skeleton`` order. ValueError when the skeleton has no palm
    joints or the wrist and finger bases are degenerate (coincident or collinear).
    """
    idx = palm_indices(skeleton)
    if idx is None:
        raise ValueError(f"skeleton {skeleton.name!r} has no wrist and finger-base joints")
    j = np.asarray(joints_mm, dtype=np.float64).reshape(-1, 3)
    wrist, bases = j[idx[0]], j[idx[1]]
    mcp_mean = bases.mean(axis=0)
    x = mcp_mean - wrist
    u = bases[3] - bases[0]
    nx = np.linalg.norm(x)
    if not np.isfinite(nx) or nx < 1e-6:
        raise ValueError("wrist and finger bases coincide: no palm direction")
    x = x / nx
    y = u - (u @ x) * x
    ny = np.linalg.norm(y)
    if not np.isfinite(ny) or ny < 1e-6:
        raise ValueError("finger bases are collinear with the wrist: no palm plane")
    y = y / ny
    z = np.cross(x, y)
    return 0.5 * (wrist + mcp_mean), np.stack([x, y, z], axis=1)


def matrix_to_quaternion(rot: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) -> unit quaternion (x, y, z, w) with w >= 0 (ROS order)."""
    m = np.asarray(rot, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    q = np.asarray(q, dtype=np.float64)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def quaternion_to_matrix(q_xyzw) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> rotation matrix (3, 3)."""
    x, y, z, w = np.asarray(q_xyzw, dtype=np.float64) / np.linalg.norm(q_xyzw)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


__all__ = ["FINGER_BASES", "matrix_to_quaternion", "palm_frame", "palm_indices",
           "quaternion_to_matrix"]
