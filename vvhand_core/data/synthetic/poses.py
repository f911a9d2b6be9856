"""Sampling hand articulations, global orientations and positions; interpolating them.

Articulations mix named gestures (with Gaussian jitter) and uniform draws over the joint
limits with distal-joint coupling. Orientations are uniform over SO(3) (palm, side and
back views alike), rejecting those whose forearm points at the camera more than allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from vvhand_core.data.synthetic.hand_model import (
    LIMITS_DEG,
    LONG_FINGERS,
    NUM_PARAMS,
    PARAM_NAMES,
    clip_articulation,
    rest_articulation,
)

_CURLED = {"mcp": 85.0, "pip": 100.0, "dip": 65.0}
_THUMB_TUCKED = {"thumb_cmc_abd": 5.0, "thumb_cmc_flex": 23.0, "thumb_opp": 40.0,
                 "thumb_mcp": 32.0, "thumb_ip": 33.0}  # fmt: skip


def _gesture(curled: tuple[str, ...] = (), extra: Mapping[str, float] | None = None) -> np.ndarray:
    a = rest_articulation()
    for f in curled:
        for part, v in _CURLED.items():
            a[PARAM_NAMES.index(f"{f}_{part}")] = v
    for name, v in (extra or {}).items():
        a[PARAM_NAMES.index(name)] = v
    a.setflags(write=False)
    return a


def _gestures() -> Mapping[str, np.ndarray]:
    spread = {f"{f}_abd": 14.0 for f in LONG_FINGERS}
    together = {f"{f}_abd": -6.0 for f in LONG_FINGERS}
    relaxed = {}
    for i, f in enumerate(LONG_FINGERS):
        relaxed |= {f"{f}_mcp": 15.0 + 8 * i, f"{f}_pip": 25.0 + 6 * i, f"{f}_dip": 15.0 + 4 * i}
    return MappingProxyType(
        {
            "open": _gesture(),
            "spread": _gesture(extra=spread | {"thumb_cmc_abd": 20.0, "thumb_cmc_flex": -15.0}),
            "flat": _gesture(extra=together | {"thumb_cmc_abd": 5.0, "thumb_cmc_flex": 10.0}),
            "relaxed": _gesture(extra=relaxed | {"thumb_cmc_abd": 25.0, "thumb_mcp": 15.0}),
            "fist": _gesture(LONG_FINGERS, _THUMB_TUCKED),
            "point": _gesture(LONG_FINGERS[1:], _THUMB_TUCKED),
            "victory": _gesture(LONG_FINGERS[2:], _THUMB_TUCKED | {"index_abd": 10.0,
                                                                   "middle_abd": -8.0}),
            "three": _gesture(LONG_FINGERS[3:], _THUMB_TUCKED),
            "thumbs_up": _gesture(LONG_FINGERS, {"thumb_cmc_abd": 10.0, "thumb_cmc_flex": -15.0}),
            "pinch": _gesture(
                extra={"index_mcp": 40.0, "index_pip": 50.0, "index_dip": 30.0,
                       "middle_mcp": 20.0, "middle_pip": 20.0, "ring_mcp": 15.0,
                       "pinky_mcp": 15.0, "thumb_cmc_abd": 18.0, "thumb_cmc_flex": 20.0,
                       "thumb_opp": 58.0, "thumb_mcp": 7.0, "thumb_ip": 14.0}
            ),
            "claw": _gesture(
                extra={f"{f}_{p}": v for f in LONG_FINGERS
                       for p, v in (("mcp", 15.0), ("pip", 70.0), ("dip", 45.0))}
                | {"thumb_cmc_abd": 50.0, "thumb_opp": 45.0, "thumb_ip": 30.0}
            ),
            "grasp": _gesture(
                extra={f"{f}_{p}": v for f in LONG_FINGERS
                       for p, v in (("mcp", 45.0), ("pip", 45.0), ("dip", 25.0))}
                | {"thumb_cmc_abd": 34.0, "thumb_cmc_flex": 17.0, "thumb_opp": 69.0,
                   "thumb_mcp": 6.0, "thumb_ip": -4.0}
            ),
        }
    )  # fmt: skip


GESTURES: Mapping[str, np.ndarray] = _gestures()


def sample_articulation(
    rng: np.random.Generator, gesture_prob: float = 0.5, gesture_noise_deg: float = 10.0
) -> np.ndarray:
    """One articulation (NUM_PARAMS,) degrees, within ``LIMITS_DEG``.

    With probability ``gesture_prob`` a named gesture plus N(0, gesture_noise_deg) jitter;
    otherwise uniform over the limits with DIP ~ 2/3 PIP (+- 10 deg) per finger.
    """
    if rng.random() < gesture_prob:
        names = sorted(GESTURES)
        base = GESTURES[names[int(rng.integers(len(names)))]]
        return clip_articulation(base + rng.normal(0.0, gesture_noise_deg, NUM_PARAMS))
    a = rng.uniform(LIMITS_DEG[:, 0], LIMITS_DEG[:, 1])
    for f in LONG_FINGERS:
        pip = a[PARAM_NAMES.index(f"{f}_pip")]
        a[PARAM_NAMES.index(f"{f}_dip")] = 2.0 / 3.0 * pip + rng.normal(0.0, 10.0)
    ip = PARAM_NAMES.index("thumb_ip")
    a[ip] = 0.5 * a[ip] + 0.5 * a[PARAM_NAMES.index("thumb_mcp")]
    return clip_articulation(a)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniform rotation matrix (3, 3) from a normalised 4D Gaussian (uniform quaternion)."""
    q = rng.normal(size=4)
    return Rotation.from_quat(q / np.linalg.norm(q)).as_matrix()


def orientation_ok(
    rotation: np.ndarray, palm_view_max_deg: float = 180.0, forearm_min_z: float = -0.2
) -> bool:
    """Whether a camera-from-hand rotation (3, 3) is allowed.

    The palm normal (hand +z) may be at most ``palm_view_max_deg`` from facing the camera
    (camera -z); the forearm direction (hand -y) must have camera z >= ``forearm_min_z``
    (it may point at the camera only that much).
    """
    palm = rotation @ np.array([0.0, 0.0, 1.0])
    angle = np.degrees(np.arccos(np.clip(-palm[2], -1.0, 1.0)))
    forearm = rotation @ np.array([0.0, -1.0, 0.0])
    return bool(angle <= palm_view_max_deg + 1e-9 and forearm[2] >= forearm_min_z)


def sample_orientation(
    rng: np.random.Generator,
    palm_view_max_deg: float = 180.0,
    forearm_min_z: float = -0.2,
    near: np.ndarray | None = None,
    max_step_deg: float = 180.0,
) -> np.ndarray:
    """Camera-from-hand rotation (3, 3): uniform over SO(3), subject to :func:`orientation_ok`.

    With ``near`` (3, 3) the result is ``near`` composed with a random rotation of at most
    ``max_step_deg`` (used for smooth sequences). Falls back to ``near`` (or the last draw)
    after 1000 rejected tries.
    """
    last = near if near is not None else _random_rotation(rng)
    for _ in range(1000):
        if near is None:
            r = _random_rotation(rng)
        else:
            axis = rng.normal(size=3)
            angle = np.radians(rng.uniform(0.0, max_step_deg))
            r = Rotation.from_rotvec(axis / np.linalg.norm(axis) * angle).as_matrix() @ near
        if orientation_ok(r, palm_view_max_deg, forearm_min_z):
            return r
        last = r
    return last


def interpolate_states(
    key_times: np.ndarray,
    key_articulations: np.ndarray,
    key_rotations: np.ndarray,
    key_centers_mm: np.ndarray,
    times: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smoothly interpolate keyframes at ``times`` (T,).

    key_times (K,) increasing; key_articulations (K, P); key_rotations (K, 3, 3);
    key_centers_mm (K, 3). Articulation and centre use smoothstep easing between keys,
    rotations spherical linear interpolation with the same easing. Returns (T, P),
    (T, 3, 3), (T, 3).
    """
    key_times = np.asarray(key_times, dtype=np.float64)
    times = np.clip(np.asarray(times, dtype=np.float64), key_times[0], key_times[-1])
    seg = np.clip(np.searchsorted(key_times, times, side="right") - 1, 0, len(key_times) - 2)
    s = (times - key_times[seg]) / (key_times[seg + 1] - key_times[seg])
    e = s * s * (3.0 - 2.0 * s)  # smoothstep
    art = (1 - e)[:, None] * key_articulations[seg] + e[:, None] * key_articulations[seg + 1]
    ctr = (1 - e)[:, None] * key_centers_mm[seg] + e[:, None] * key_centers_mm[seg + 1]
    slerp = Slerp(key_times, Rotation.from_matrix(key_rotations))
    eased_t = key_times[seg] + e * (key_times[seg + 1] - key_times[seg])
    rot = slerp(eased_t).as_matrix()
    return art, rot, ctr
