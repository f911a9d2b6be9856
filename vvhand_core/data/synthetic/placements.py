"""World layout of scene version 3: a person at a table, arms by two-link IK, cameras.

World frame W (mm): x to the person's right, y forward (from the person to the table), z
up; the table top's highest point is at z = 0. Cameras use the optical frame of
:mod:`vvhand_core.camera` (x right, y down, z forward); a camera pose is
``(rotation (3, 3) camera-from-world, position (3,) in W)``, so p_cam = R (p_w - C).

Camera placements (:data:`PLACEMENTS`):

* ``third_person``: across the table from the person, 350-900 mm from the hand, from level
  to 50 deg above it (scene version 2's view, with the person at a table);
* ``egocentric``: at the person's forehead (head-mounted), looking at the hand 250-600 mm
  away, above and behind it: the forearm enters from the image's lower edge;
* ``overhead``: above the table (a robot's overhead or wrist camera), 300-1000 mm above
  the hand, looking down within 35 deg of vertical, any rotation about the view axis.
"""

from __future__ import annotations

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_core.data.synthetic.person import rotation_about, rotation_between

PLACEMENTS = ("third_person", "egocentric", "overhead")
PLACEMENT_PROBS = (0.34, 0.36, 0.30)
EGO_DISTANCE_MM = (250.0, 600.0)
THIRD_DISTANCE_MM = (350.0, 900.0)
OVERHEAD_HEIGHT_MM = (300.0, 1000.0)
UP = np.array([0.0, 0.0, 1.0])


def unit(v) -> np.ndarray:
    """The unit vector along v (float64)."""
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def elbow_ik(shoulder: np.ndarray, wrist: np.ndarray, upper_mm: float, forearm_mm: float,
             outward: np.ndarray, swivel_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-link IK: (elbow (3,), wrist (3,)) in W, the wrist pulled within reach.

    The elbow hangs below the shoulder-wrist line (towards -z), turned by ``swivel_deg``
    about that line towards ``outward`` (unit, horizontal: away from the body).
    """
    reach = np.clip(np.linalg.norm(wrist - shoulder), abs(upper_mm - forearm_mm) + 20.0,
                    0.97 * (upper_mm + forearm_mm))  # fmt: skip
    n = unit(wrist - shoulder)
    wrist = shoulder + n * reach
    a = (upper_mm**2 - forearm_mm**2 + reach**2) / (2.0 * reach)
    h = np.sqrt(max(upper_mm**2 - a**2, 0.0))
    down = -UP - n * (n @ -UP)
    e0 = unit(down) if np.linalg.norm(down) > 1e-6 else unit(np.cross(n, outward))
    e1 = np.cross(n, e0)
    if e1 @ outward < 0:
        e1 = -e1
    phi = np.radians(swivel_deg)
    elbow = shoulder + n * a + h * (np.cos(phi) * e0 + np.sin(phi) * e1)
    return elbow, wrist


def look_at(position: np.ndarray, target: np.ndarray, up_hint: np.ndarray,
            pixel: tuple[float, float], intr: Intrinsics, roll_deg: float = 0.0) -> np.ndarray:
    """Camera-from-world rotation of a camera at ``position`` that sees ``target`` at ``pixel``.

    ``up_hint`` (W) sets the image's up direction (its projection is image -y), then the
    camera turns about its axis by ``roll_deg`` and about its centre so that the target
    lands on ``pixel`` (u, v).
    """
    z = unit(target - position)
    x = np.cross(z, up_hint)
    if np.linalg.norm(x) < 1e-6:
        x = np.cross(z, [1.0, 0.0, 0.0])
    x = unit(x)
    y = np.cross(z, x)
    r0 = np.stack([x, y, z])  # rows: camera axes in W
    r0 = rotation_about([0.0, 0.0, 1.0], np.radians(roll_deg)) @ r0
    ray = unit([(pixel[0] - intr.cx) / intr.fx, (pixel[1] - intr.cy) / intr.fy, 1.0])
    # turn the camera so that its ray through ``pixel`` points at the target
    return rotation_between(ray, np.array([0.0, 0.0, 1.0])).T @ r0


def camera_pose(kind: str, rng: np.random.Generator, hand_mm: np.ndarray, eye_mm: np.ndarray,
                facing: np.ndarray) -> np.ndarray:
    """Camera position (3,) in W for placement ``kind`` (see the module doc).

    hand_mm: the shown hand's centre; eye_mm: the person's forehead; facing: unit forward
    direction of the person (horizontal).
    """
    if kind == "egocentric":
        return np.asarray(eye_mm, dtype=np.float64)
    if kind == "third_person":
        yaw = np.radians(rng.uniform(-60.0, 60.0))
        elev = np.radians(rng.uniform(5.0, 50.0))
        side = np.cross(UP, facing)
        horiz = np.cos(yaw) * facing + np.sin(yaw) * side
        d = np.cos(elev) * horiz + np.sin(elev) * UP
        return hand_mm + rng.uniform(*THIRD_DISTANCE_MM) * d
    if kind == "overhead":
        tilt, az = np.radians(rng.uniform(0.0, 35.0)), rng.uniform(0.0, 2.0 * np.pi)
        d = np.array([np.sin(tilt) * np.cos(az), np.sin(tilt) * np.sin(az), np.cos(tilt)])
        return hand_mm + rng.uniform(*OVERHEAD_HEIGHT_MM) / np.cos(tilt) * d
    raise ValueError(f"placement must be one of {PLACEMENTS}, got {kind!r}")


def up_hint(kind: str, rng: np.random.Generator) -> np.ndarray:
    """The world direction shown as image-up: z, or a random horizontal one overhead."""
    if kind == "overhead":
        a = rng.uniform(0.0, 2.0 * np.pi)
        return np.array([np.cos(a), np.sin(a), 0.0])
    return UP


def plane_to_camera(normal_w: np.ndarray, height_mm: float, rotation: np.ndarray,
                    position: np.ndarray) -> np.ndarray | None:
    """The plane n . p = h of W as a raycast row [n_c, h_c] (h_c > 0), or None.

    None when the camera lies within 1 mm of the plane.
    """
    n_c = rotation @ np.asarray(normal_w, dtype=np.float64)
    h_c = float(height_mm - np.asarray(normal_w) @ position)
    if abs(h_c) < 1.0:
        return None
    if h_c < 0:
        n_c, h_c = -n_c, -h_c
    return np.array([*n_c, h_c])


def table_top_z(xy: np.ndarray, centre: np.ndarray, semi: np.ndarray) -> float:
    """Height (W z) of the ellipsoidal table's top above point xy (2,); -inf off the table."""
    q = ((np.asarray(xy) - centre[:2]) / semi[:2]) ** 2
    s = 1.0 - q.sum()
    if s <= 0:
        return -np.inf
    return float(centre[2] + semi[2] * np.sqrt(s))
