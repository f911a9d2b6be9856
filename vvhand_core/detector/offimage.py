"""Hands centred outside the image: the heat-map target the detector can learn for them.

Scene version 3 labels a second hand only while its centre projects into the image; a
hand centred just outside still shows its palm or fingers at the border. Trained on
labelled hands alone, the detector learnt that those pixels are no hand, while a hand
centred just inside the border (labelled) looks the same: it found a quarter of the hands
cut by the image edge. The rule here (used by :mod:`vvhand_core.detector.data` for the
training targets and by :mod:`vvhand_core.detector.misses` to score such hands):

* :func:`unlabelled_hands` of :func:`spec_hands`: the hands a v3 frame does not label
  (centre outside the image), re-drawn from the frame's random stream without rendering
  (``sample_scene_v3``); other scene versions and hand-free scenes have none.
* :func:`reaches_in`: such a hand is a target when at least ``MIN_JOINTS_INSIDE`` of its
  joints project into the image and its centre lies at most ``REACH_MM`` (at its depth,
  in pixels ``REACH_MM * f / z``) outside the image rectangle (:func:`reaching_centres`:
  the unlabelled hands of a scene that are).
* :func:`heat_point`: the heat-map target of a hand centred at canonical (u, v): that
  point clamped into the image, ``INSET_PX`` inside its border (a hand centred farther
  inside: the point itself). The heat-map network
  learns a peak at the border where the hand leaves the image; the refiner learns the
  offset from a patch there to the true centre outside, and the localiser reports that
  centre (``DetectorLocaliser.candidates``: canonical pixels outside the image map
  through the same rays).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from vvhand_core.camera import Intrinsics, project_np
from vvhand_core.data.synthetic.render_v3 import centre_in_view

MIN_JOINTS_INSIDE = 3
REACH_MM = 70.0
# the heat point stays this many pixels inside the border: a heat-map cell's centre is
# rounded to it, and the last cell of a map ending at the border is up to 3 px inside it
INSET_PX = 2.0


def heat_point(u: float, v: float, width: int, height: int) -> tuple[float, float]:
    """(u, v) clamped into a ``width`` x ``height`` image, ``INSET_PX`` inside its border."""
    return (float(np.clip(u, INSET_PX, width - 1.0 - INSET_PX)),
            float(np.clip(v, INSET_PX, height - 1.0 - INSET_PX)))


def outside_px(u: float, v: float, width: int, height: int) -> float:
    """Distance in pixels from (u, v) to the image rectangle [0, width-1] x [0, height-1]."""
    cu, cv = np.clip(u, 0.0, width - 1.0), np.clip(v, 0.0, height - 1.0)
    return float(np.hypot(u - cu, v - cv))


def reaches_in(centre_mm: np.ndarray, joints_mm: np.ndarray, intr: Intrinsics) -> bool:
    """Whether a hand centred at ``centre_mm`` (3,) outside the image is a target.

    ``joints_mm`` (J, 3) camera mm; ``intr`` the frame's camera (or its canonical one:
    the rule is the same in any resampling of the image). See the module doc.
    """
    c = np.asarray(centre_mm, np.float64)
    j = np.asarray(joints_mm, np.float64)
    if c[2] <= 0:
        return False
    front = j[:, 2] > 0
    z = np.where(front, j[:, 2], 1.0)
    u = j[:, 0] / z * intr.fx + intr.cx
    v = j[:, 1] / z * intr.fy + intr.cy
    inside = front & (u >= 0) & (u <= intr.width - 1) & (v >= 0) & (v <= intr.height - 1)
    if int(inside.sum()) < MIN_JOINTS_INSIDE:
        return False
    cu, cv = project_np(c, intr)
    return outside_px(cu, cv, intr.width, intr.height) <= REACH_MM * intr.fx / c[2]


def spec_hands(synth: dict, index: int):
    """The drawn (not rendered) v3 scene of frame ``index`` of split ``synth``, or None.

    ``synth``: SynthConfig overrides (a "hand_free" key is ignored); None for scene
    versions other than 3.
    """
    from vvhand_core.data.synthetic.generator import _STREAM_FRAME_V3, SynthConfig
    from vvhand_core.data.synthetic.scene_v3 import sample_scene_v3

    synth = {k: v for k, v in synth.items() if k != "hand_free"}
    config = SynthConfig.from_dict(synth)
    if config.scene_version != 3:
        return None
    rng = np.random.default_rng([config.seed, _STREAM_FRAME_V3, int(index)])
    return sample_scene_v3(config, rng)


def labelled_centres(spec) -> list[np.ndarray]:
    """Centres (3,) mm of the hands of a drawn v3 scene that its frame labels, in order."""
    centres = [np.asarray(h.center_mm, np.float64) for h in spec.hands]
    return centres[:1] + [c for c in centres[1:] if centre_in_view(c, spec.intr)]


def unlabelled_hands(spec) -> list[tuple[np.ndarray, np.ndarray]]:
    """(centre (3,) mm, joints (21, 3) mm) of the hands of a drawn v3 scene its frame leaves out.

    render_v3 labels the first hand and every other hand whose centre projects into the
    image (``centre_in_view``); these are the others, whether or not they reach into the image
    (:func:`reaches_in` says).
    """
    return [(np.asarray(h.center_mm, np.float64), np.asarray(h.hand.joints, np.float64))
            for h in spec.hands[1:] if not centre_in_view(np.asarray(h.center_mm), spec.intr)]


def reaching_centres(spec, intr: Intrinsics | None = None) -> list[np.ndarray]:
    """Centres (3,) mm of a drawn v3 scene's unlabelled hands that reach into the image.

    ``intr``: the camera of the image they must reach into (the frame's, its canonical
    one ...); default the scene's own.
    """
    cam = spec.intr if intr is None else intr
    return [c for c, j in unlabelled_hands(spec) if reaches_in(c, j, cam)]


def frame_offimage_hands(frame) -> list[np.ndarray]:
    """Centres (3,) mm of a synthetic v3 frame's unlabelled hands that reach into it.

    The scene is drawn again from the frame's ``meta`` (its seed and frame_id, the other
    SynthConfig fields at their defaults); [] when that scene's first hand is not the
    frame's (a split made with other settings), for other scene versions and hand-free
    frames.
    """
    meta = frame.meta
    if meta.get("scene_version") != 3 or meta.get("hand_free") or "frame_id" not in meta:
        return []
    first = tuple(float(x) for x in meta.get("center_mm", [np.nan] * 3))
    got = _offimage_of(int(meta["seed"]), int(meta["frame_id"]), first, frame.intrinsics)
    return [c.copy() for c in got]


@lru_cache(maxsize=64)  # a bench scores each frame once per localiser
def _offimage_of(seed: int, frame_id: int, first: tuple, intr: Intrinsics
                 ) -> tuple[np.ndarray, ...]:
    spec = spec_hands({"scene_version": 3, "seed": seed}, frame_id)
    if spec is None or not np.allclose(np.round(spec.hands[0].center_mm, 3), first,
                                       atol=1e-3):
        return ()
    return tuple(reaching_centres(spec, intr))
