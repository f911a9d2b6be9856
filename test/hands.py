"""Joint sets for tests: a hand of the other side."""

from __future__ import annotations

import numpy as np

from vvhand_core.palm import palm_frame
from vvhand_core.skeletons import HANDS2019_21


def other_side(joints_mm: np.ndarray) -> np.ndarray:
    """The joints (21, 3) reflected through their palm plane: a hand of the other side."""
    joints_mm = np.asarray(joints_mm, np.float64)
    origin, rot = palm_frame(joints_mm, HANDS2019_21)
    n = rot[:, 2]
    return joints_mm - 2.0 * ((joints_mm - origin) @ n)[:, None] * n
