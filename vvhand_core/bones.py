"""Bone orientations of a hand: one rotation per joint, for ~/joints and the joint TF frames.

Convention (docs/ros.md, "Joint orientations"), for joint j of ``hands2019_21`` in the
camera frame, columns of the (3, 3) rotation:

* x: along the bone that leaves j toward its child (wrist excluded; a tip, which has no
  child, continues the bone that ends in it);
* y: the axis the bone bends about, made perpendicular to x, its sign the one closer to
  the palm frame's y (across the palm, toward the little finger: ``vvhand_core.palm``);
* z = x cross y (for a straight finger of a right hand: out of the palm, as the palm
  frame's z; a left hand, the mirror image, has it out of the back of the hand).
* the wrist: the palm frame itself.

The bend axis comes from the **fitted hand model** when its fit was used
(:func:`fitted_bend_axes`: the model posed at the fitted angles, placement, scale and
finger lengths gives each angle's joint axis; a long finger's bones bend about their
flexion axes, the thumb's about cmc_flex, mcp and ip). When the fit is off, or the
safeguard kept the network's joints, it is the palm frame's y: then a finger's rotation
about its own bone (twist) is not known and is taken to be none. Without palm joints
(other skeletons), or for a degenerate palm, :func:`joint_rotations` returns None.
numpy only.
"""

from __future__ import annotations

import numpy as np

from vvhand_core.data.synthetic.hand_model import PARAM_NAMES
from vvhand_core.fit.fit import FitConfig, _shape_arrays
from vvhand_core.fit.hand_np import pose
from vvhand_core.palm import palm_frame, palm_indices
from vvhand_core.skeletons import HANDS2019_21, Skeleton

# hands2019_21 joint -> the fitted angle whose axis the bone leaving it bends about
# (a tip: the angle of the bone ending in it)
BEND_ANGLE: dict[str, str] = {
    "thumb_mcp": "thumb_cmc_flex", "thumb_pip": "thumb_mcp", "thumb_dip": "thumb_ip",
    "thumb_tip": "thumb_ip",
    **{f"{f}_{j}": f"{f}_{a}" for f in ("index", "middle", "ring", "pinky")
       for j, a in (("mcp", "mcp"), ("pip", "pip"), ("dip", "dip"), ("tip", "dip"))},
}


def fitted_bend_axes(fit, config: FitConfig | None = None) -> np.ndarray:
    """(23, 3) unit joint axes (camera frame), ``PARAM_NAMES`` order, of a FitResult.

    The hand model posed as the fit left it (``config``: the fit's FitConfig, for the
    hand shape; default FitConfig(), the node's).
    """
    cfg = config or FitConfig()
    posed = pose(fit.angles_deg, fit.rotation, fit.translation_mm, fit.scale,
                 _shape_arrays(cfg.hand_shape, cfg.forearm_mm), left=fit.side == "left",
                 axes=True, finger_lengths=fit.finger_lengths)
    return posed.axes / np.linalg.norm(posed.axes, axis=1, keepdims=True)


def _unit(v: np.ndarray) -> np.ndarray | None:
    n = float(np.linalg.norm(v))
    return None if n < 1e-9 else v / n


def joint_rotations(joints_mm: np.ndarray, skeleton: Skeleton,
                    bend_axes: np.ndarray | None = None) -> np.ndarray | None:
    """(J, 3, 3) rotations camera <- joint frame (module doc), or None without a palm.

    ``bend_axes`` (23, 3): :func:`fitted_bend_axes` (hands2019_21 only), or None for the
    palm-frame convention.
    """
    if palm_indices(skeleton) is None:
        return None
    joints = np.asarray(joints_mm, np.float64).reshape(-1, 3)
    try:
        _, palm = palm_frame(joints, skeleton)
    except ValueError:
        return None
    use_fit = bend_axes is not None and skeleton.name == HANDS2019_21.name
    children: dict[int, int] = {}
    for j, p in enumerate(skeleton.parents):
        if p >= 0:
            children.setdefault(p, j)
    out = np.empty((len(joints), 3, 3))
    for j, name in enumerate(skeleton.joint_names):
        parent = skeleton.parents[j]
        if parent < 0:
            out[j] = palm
            continue
        x = _unit(joints[children[j]] - joints[j] if j in children else joints[j] - joints[parent])
        bend = (np.asarray(bend_axes[PARAM_NAMES.index(BEND_ANGLE[name])], np.float64)
                if use_fit and name in BEND_ANGLE else palm[:, 1])
        if x is None:
            out[j] = palm
            continue
        if bend @ palm[:, 1] < 0:
            bend = -bend
        y = _unit(bend - (bend @ x) * x)
        if y is None:  # the bone lies along the bend axis: turn about the palm normal
            y = _unit(np.cross(palm[:, 2], x))
        if y is None:
            out[j] = palm
            continue
        out[j] = np.stack([x, y, np.cross(x, y)], axis=1)
    return out


__all__ = ["BEND_ANGLE", "fitted_bend_axes", "joint_rotations"]
