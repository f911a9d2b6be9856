r"""Left or right hand from the 3D joints alone (chirality of the skeleton).

A left hand is the mirror image of a right hand, and a mirror image cannot be rotated onto
the original: the estimated 3D skeleton carries its side. In the palm frame of
:mod:`vvhand_core.palm` (x distal, y towards the little finger, z = x cross y) the z axis
points out of the palm of a RIGHT hand and out of the back of a LEFT one. Fingers flex
towards the palm and the thumb stands in front of it, so in palm coordinates

    score = sum over the five fingers of (tip_z - mcp_z) / |middle_mcp - wrist|

is positive for a right hand and negative for a left one. On the ground truth of 150
person scenes (synthetic v2, seed 7) the thumb term alone has the right sign on every
frame and the score's median magnitude is 2.6; a flat hand with the thumb in the palm
plane is the ambiguous case (score near 0). The probability that the hand is a right one
is ``sigmoid(score / temperature)``; :class:`SideConfig` turns it into "right", "left" or
"unknown". How often this is right on estimated joints is measured per model
(``vvhand bench side``, docs/results.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vvhand_core.palm import palm_frame, palm_indices
from vvhand_core.skeletons import FINGERS, Skeleton

SIDES = ("unknown", "left", "right")


@dataclass(frozen=True)
class SideConfig:
    """How a chirality score becomes a side.

    temperature: score units per logit unit; margin: the side is "unknown" while the
    probability of the likelier side is below ``margin``.
    """

    temperature: float = 0.5
    margin: float = 0.8

    def __post_init__(self) -> None:
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise ValueError(f"SideConfig.temperature must be > 0, got {self.temperature}")
        if not 0.5 <= self.margin < 1.0:
            raise ValueError(f"SideConfig.margin must be in [0.5, 1), got {self.margin}")


def has_side(skeleton: Skeleton) -> bool:
    """Whether the skeleton has the joints the score needs (palm joints, finger MCPs/tips)."""
    names = set(skeleton.joint_names)
    return palm_indices(skeleton) is not None and all(
        f"{f}_{p}" in names for f in FINGERS for p in ("mcp", "tip"))


def side_score(joints_mm: np.ndarray, skeleton: Skeleton) -> float:
    """The chirality score (> 0 right, < 0 left); NaN for degenerate or non-finite joints.

    ValueError for a skeleton without the joints (:func:`has_side`).
    """
    if not has_side(skeleton):
        raise ValueError(f"skeleton {skeleton.name!r} has no palm and finger joints")
    j = np.asarray(joints_mm, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(j).all():
        return math.nan
    try:
        origin, rot = palm_frame(j, skeleton)
    except ValueError:
        return math.nan
    names = list(skeleton.joint_names)
    size = np.linalg.norm(j[names.index("middle_mcp")] - j[names.index("wrist")])
    if size < 1e-6:
        return math.nan
    z = (j - origin) @ rot[:, 2]
    return float(sum(z[names.index(f"{f}_tip")] - z[names.index(f"{f}_mcp")]
                     for f in FINGERS) / size)


def right_probability(score: float, config: SideConfig = SideConfig()) -> float:
    """P(right hand) from a chirality score; 0.5 for NaN."""
    if not math.isfinite(score):
        return 0.5
    x = max(-60.0, min(60.0, score / config.temperature))
    return 1.0 / (1.0 + math.exp(-x))


def decide_side(p_right: float, config: SideConfig = SideConfig()) -> str:
    """"right", "left" or "unknown" (neither side reaches ``config.margin``)."""
    if p_right >= config.margin:
        return "right"
    if 1.0 - p_right >= config.margin:
        return "left"
    return "unknown"


def confident_side(evidence: float, margin: float) -> str | None:
    """The side whose probability, from log-odds ``evidence`` (> 0: right), reaches ``margin``.

    "right", "left", or None while neither side's probability reaches ``margin`` (in
    [0.5, 1)). The one rule the fit (which sides to fit, which side a sequence holds)
    and the benches (sides called at other margins) share.
    """
    if abs(evidence) < math.log(margin / (1.0 - margin)):
        return None
    return "right" if evidence > 0 else "left"


def hand_side(joints_mm: np.ndarray, skeleton: Skeleton,
              config: SideConfig = SideConfig()) -> dict[str, float | str]:
    """{"right_probability": P(right), "side": decided side} of joints (J, 3) mm.

    (0.5, "unknown") for a skeleton without the joints the chirality needs.
    """
    if not has_side(skeleton):
        return {"right_probability": 0.5, "side": "unknown"}
    p = right_probability(side_score(joints_mm, skeleton), config)
    return {"right_probability": p, "side": decide_side(p, config)}
