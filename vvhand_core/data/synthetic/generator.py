"""Synthetic depth frames of an articulated hand, deterministic by (seed, frame index).

``SyntheticHandGenerator(SynthConfig(...)).frame(i)`` returns a :class:`DepthFrame` with
``HANDS2019_21`` ground truth. Two scene versions (``SynthConfig.scene_version``):

* 1 (default, frozen: the same bytes for the same seed and index as before versions
  existed): a right hand (any orientation, forearm stub) 300..700 mm in front of one fixed
  camera, a wall / table / nothing behind it, Gaussian noise and edge dropouts;
* 2 ("person" scenes, :mod:`scene_v2`): a left or right hand of varied shape held up by
  a person (arm, torso, head), a second hand and objects near the border, a wall or
  table, a per-frame camera (320x240..1280x720, f 200-650 px) and a structured-light or
  time-of-flight sensor model.
* 3 (:mod:`scene_v3`): hands that grasp, hold and touch things at a table (a grasp
  taxonomy, :mod:`grasps`), seen from a third-person, egocentric (head-mounted) or
  overhead camera, often both hands, every hand in view labelled (``meta["hands"]``).

Frame i depends only on (seed, i), never on which frames were drawn before, so workers
can generate and cache frames in any order. :func:`sample_sequence` yields a smoothly
moving hand (interpolated random keyframes) for demos and rosbags.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from types import MappingProxyType

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_core.data.base import DepthFrame
from vvhand_core.data.synthetic.hand_model import HandGeometry, HandShape, pose_hand
from vvhand_core.data.synthetic.poses import (
    interpolate_states,
    sample_articulation,
    sample_orientation,
)
from vvhand_core.data.synthetic.raycast import (  # noqa: F401 (re-exported)
    VISIBILITY_TOLERANCE_MM,
    joint_visibility,
    render_geometry,
    render_planes,
)
from vvhand_core.data.synthetic.scene_v2 import Scene, render_scene_v2
from vvhand_core.data.synthetic.sensor import (
    BACKGROUNDS,
    apply_sensor_effects,
    background_planes,
)
from vvhand_core.data.synthetic.sensor_models import SENSOR_CHOICES
from vvhand_core.skeletons import HANDS2019_21

_STREAM_FRAME, _STREAM_SEQUENCE, _STREAM_FRAME_V2, _STREAM_SEQUENCE_V2 = 0, 1, 2, 3
_STREAM_FRAME_V3 = 4
SCENE_VERSIONS = (1, 2, 3)
NEW_SCENES_SPLIT = MappingProxyType({"scene_version": 2, "seed": 5})
"""The fixed "new scenes" evaluation split: frames 0..199 of ``SynthConfig(**NEW_SCENES_SPLIT)``
(person scenes, per-frame cameras and sensors; never used for training)."""
NEW_SCENES_SPLIT_FRAMES = 200


@dataclass
class SynthConfig:
    """Everything that defines a synthetic dataset (with ``seed``, it fixes every frame).

    Camera: pinhole ``fx, fy, cx, cy`` at ``width x height`` (default 640x480).
    Placement: hand centre (mean of the joints) at depth ``depth_range_mm``, projected within
    ``center_jitter`` x image size of the principal point; hand size scaled uniformly in
    ``hand_scale_range`` (1.0 = wrist to middle tip 187 mm).
    Pose: ``gesture_prob`` named gestures with ``gesture_noise_deg`` jitter, else uniform
    over the joint limits. View: palm normal within ``palm_view_max_deg`` of facing the
    camera (180 = all views), forearm direction's camera z >= ``forearm_min_z``.
    Sensor: ``noise_sigma_mm`` at 500 mm (grows with z^2), ``edge_dropout`` probability at
    silhouette edges (jumps > ``edge_jump_mm``), ``random_dropout`` anywhere, ``quantize``
    to uint16 mm, ``max_depth_mm`` sensor range. ``background``: none | wall | table |
    random. ``cube_mm``: crop cube hint written to each frame's meta.

    ``scene_version`` 1 (default) keeps every frame of a seed bit-identical to the frames
    of before scene versions existed (old splits: seed 1 train, 2 val, 3 test).
    ``scene_version`` 2 draws person scenes (see :mod:`scene_v2`): it uses ``seed``,
    ``gesture_prob``, ``gesture_noise_deg``, ``background``, ``max_depth_mm``,
    ``quantize``, ``cube_mm`` and ``sensor`` (random | structured_light | tof | ideal: the
    per-frame camera model; ideal = exact depth); the camera is drawn per frame unless
    ``random_camera`` is False (None, the default, and True: drawn; False: the fixed
    camera above, e.g. small images in tests).
    Placement, hand size (0.8-1.2), shape and sensor parameters come from scene_v2, so
    ``depth_range_mm``, ``center_jitter``, ``hand_scale_range``, ``palm_view_max_deg``,
    ``forearm_min_z``, ``noise_sigma_mm``, ``edge_dropout``, ``edge_jump_mm`` and
    ``random_dropout`` apply to version 1 only. ``sensor`` and ``random_camera`` apply to
    version 2 only. :data:`NEW_SCENES_SPLIT` names the v2 evaluation split.
    """

    width: int = 640
    height: int = 480
    fx: float = 475.0
    fy: float = 475.0
    cx: float = 319.5
    cy: float = 239.5
    seed: int = 0
    depth_range_mm: tuple[float, float] = (300.0, 700.0)
    center_jitter: float = 0.12
    hand_scale_range: tuple[float, float] = (0.95, 1.06)
    gesture_prob: float = 0.5
    gesture_noise_deg: float = 10.0
    palm_view_max_deg: float = 180.0
    forearm_min_z: float = -0.2
    noise_sigma_mm: float = 1.0
    edge_dropout: float = 0.5
    edge_jump_mm: float = 20.0
    random_dropout: float = 0.002
    quantize: bool = True
    max_depth_mm: float = 2000.0
    background: str = "random"
    cube_mm: float = 250.0
    scene_version: int = 1
    sensor: str = "random"
    random_camera: bool | None = None

    def __post_init__(self) -> None:
        """Validate ranges and choices."""
        if self.scene_version not in SCENE_VERSIONS:
            raise ValueError(f"scene_version must be one of {SCENE_VERSIONS}, "
                             f"got {self.scene_version!r}")
        if self.sensor not in SENSOR_CHOICES:
            raise ValueError(f"sensor must be one of {SENSOR_CHOICES}, got {self.sensor!r}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")
        lo, hi = self.depth_range_mm
        if not 0 < lo <= hi:
            raise ValueError(f"depth_range_mm must satisfy 0 < lo <= hi, got {self.depth_range_mm}")
        s0, s1 = self.hand_scale_range
        if not 0 < s0 <= s1:
            raise ValueError(f"hand_scale_range must satisfy 0 < lo <= hi, got {(s0, s1)}")
        for name in ("gesture_prob", "edge_dropout", "random_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")

    def intrinsics(self) -> Intrinsics:
        """The fixed synthetic camera (version 2: only when random_camera is False)."""
        return Intrinsics(self.fx, self.fy, self.cx, self.cy, self.width, self.height)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> SynthConfig:
        """Inverse of :meth:`to_dict` (unknown keys are an error)."""
        fields = cls.__dataclass_fields__
        unknown = set(d) - set(fields)
        if unknown:
            raise ValueError(f"unknown SynthConfig keys: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass
class HandState:
    """Pose of the hand in one frame.

    articulation_deg (NUM_PARAMS,); rotation (3, 3) camera-from-hand; center_mm (3,) where
    the mean of the joints lands in the camera frame; scale (hand size factor).
    """

    articulation_deg: np.ndarray
    rotation: np.ndarray
    center_mm: np.ndarray
    scale: float


def place_hand(state: HandState, shape: HandShape | None = None) -> HandGeometry:
    """Posed, scaled and placed hand geometry in the camera frame (mm)."""
    local = pose_hand(state.articulation_deg, shape).scaled(state.scale)
    offset = state.center_mm - state.rotation @ local.joints.mean(axis=0)
    return local.transformed(state.rotation, offset)


class SyntheticHandGenerator:
    """Deterministic synthetic frames: ``frame(i)`` depends only on ``config.seed`` and i.

    ``timings``: a dict (None = off) that rendering adds CPU seconds per stage to (v1:
    sample, hand, background, sensor; v2: sample, hand_arm, body_background, sensor).
    """

    def __init__(self, config: SynthConfig | None = None, shape: HandShape | None = None):
        """Keep the config and the hand shape (v1; default adult proportions)."""
        self.config = config or SynthConfig()
        self.shape = shape or HandShape()
        self.intrinsics = self.config.intrinsics()
        self.timings: dict | None = None

    def sample_state(self, rng: np.random.Generator) -> HandState:
        """Draw articulation, orientation, centre and scale from ``rng``."""
        c = self.config
        art = sample_articulation(rng, c.gesture_prob, c.gesture_noise_deg)
        rot = sample_orientation(rng, c.palm_view_max_deg, c.forearm_min_z)
        return HandState(art, rot, self.sample_center(rng), float(rng.uniform(*c.hand_scale_range)))

    def sample_center(self, rng: np.random.Generator) -> np.ndarray:
        """Hand centre (3,) mm: depth in the configured range, near the principal point."""
        c = self.config
        z = rng.uniform(*c.depth_range_mm)
        u = c.cx + rng.uniform(-1, 1) * c.center_jitter * c.width
        v = c.cy + rng.uniform(-1, 1) * c.center_jitter * c.height
        return np.array([(u - c.cx) / c.fx * z, (v - c.cy) / c.fy * z, z])

    def render_state(
        self,
        state: HandState,
        rng: np.random.Generator,
        frame_id: int | str = 0,
        planes: np.ndarray | None = None,
    ) -> DepthFrame:
        """Render one state: exact hand depth + background + sensor effects (drawn from rng).

        ``planes`` (P, 4) fixes the background (see ``background_planes``); by default it is
        drawn from ``rng`` according to ``config.background``.
        """
        c = self.config
        t0 = time.process_time()
        geom = place_hand(state, self.shape)
        hand_depth, _ = render_geometry(geom, self.intrinsics)
        visible = joint_visibility(geom.joints, geom.joint_radius, hand_depth, self.intrinsics)
        t0 = self._tick("hand", t0)
        if planes is None:
            planes = background_planes(c.background, rng, geom.support)
        depth = hand_depth
        if len(planes):
            back = render_planes(planes, self.intrinsics, c.max_depth_mm)
            both = (hand_depth > 0) & (back > 0)
            depth = np.where(both, np.minimum(hand_depth, back), np.maximum(hand_depth, back))
        depth = np.where(depth <= c.max_depth_mm, depth, 0.0).astype(np.float32)
        t0 = self._tick("background", t0)
        depth = apply_sensor_effects(
            depth, rng, c.noise_sigma_mm, c.edge_dropout, c.edge_jump_mm, c.random_dropout,
            c.quantize,
        )  # fmt: skip
        self._tick("sensor", t0)
        meta = {
            "frame_id": frame_id,
            "source": "synthetic",
            "seed": c.seed,
            "scene_version": 1,
            "side": "right",
            "cube_mm": c.cube_mm,
            "center_mm": [float(x) for x in state.center_mm],
            "scale": state.scale,
            "articulation_deg": [round(float(x), 4) for x in state.articulation_deg],
            "rotation": [[float(x) for x in row] for row in state.rotation],
            "visible": [bool(x) for x in visible],
            "background": planes.tolist(),
        }
        return DepthFrame(depth, self.intrinsics, geom.joints.astype(np.float32), HANDS2019_21,
                          meta)  # fmt: skip

    def _tick(self, key: str, t0: float) -> float:
        t1 = time.process_time()
        if self.timings is not None:
            self.timings[key] = self.timings.get(key, 0.0) + (t1 - t0)
        return t1

    def frame(self, index: int) -> DepthFrame:
        """Frame ``index`` (>= 0) of the dataset defined by the config."""
        if index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        if self.config.scene_version in (2, 3):
            return self.scene(index).frame
        rng = np.random.default_rng([self.config.seed, _STREAM_FRAME, index])
        t0 = time.process_time()
        state = self.sample_state(rng)
        self._tick("sample", t0)
        return self.render_state(state, rng, frame_id=index)

    def scene(self, index: int, hands: bool = True) -> Scene:
        """Versions 2 and 3: frame ``index`` with its clean depth and label image.

        ``hands=False``: the same scene with no hand in view (``scene_v2.without_hands``,
        ``render_v3.without_hands_v3``).
        """
        if self.config.scene_version not in (2, 3):
            raise ValueError("scene() needs scene_version 2 or 3")
        if index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        if self.config.scene_version == 3:
            from vvhand_core.data.synthetic.render_v3 import render_scene_v3

            rng = np.random.default_rng([self.config.seed, _STREAM_FRAME_V3, index])
            return render_scene_v3(self.config, rng, frame_id=index, timings=self.timings,
                                   hands=hands)
        rng = np.random.default_rng([self.config.seed, _STREAM_FRAME_V2, index])
        return render_scene_v2(self.config, rng, frame_id=index, timings=self.timings,
                               hands=hands)


def sample_sequence(
    config: SynthConfig,
    num_frames: int,
    keyframe_interval: int = 30,
    max_rotation_step_deg: float = 60.0,
    max_center_step_mm: float = 80.0,
) -> Iterator[DepthFrame]:
    """A smoothly moving hand: ``num_frames`` frames interpolated between random keyframes.

    Keyframes every ``keyframe_interval`` frames; consecutive keyframes differ by at most
    ``max_rotation_step_deg`` in orientation and ``max_center_step_mm`` in position (kept
    within the configured depth range and image region); articulations are independent
    draws. The hand size and background stay fixed; sensor noise is redrawn per frame.
    Deterministic by ``config.seed``. Scene version 2: one person, camera and room, the
    arm and hand moving (see :mod:`sequence_v2`; ``max_rotation_step_deg`` unused).
    """
    if num_frames <= 0:
        raise ValueError("num_frames must be > 0")
    if config.scene_version == 2:
        from vvhand_core.data.synthetic.sequence_v2 import sample_sequence_v2

        yield from sample_sequence_v2(
            config, num_frames, keyframe_interval, max_center_step_mm, _STREAM_SEQUENCE_V2
        )
        return
    gen = SyntheticHandGenerator(config)
    rng = np.random.default_rng([config.seed, _STREAM_SEQUENCE])
    first = gen.sample_state(rng)
    keys = [first]
    num_keys = (num_frames - 1) // keyframe_interval + 2
    for _ in range(num_keys - 1):
        prev = keys[-1]
        rot = sample_orientation(
            rng,
            config.palm_view_max_deg,
            config.forearm_min_z,
            near=prev.rotation,
            max_step_deg=max_rotation_step_deg,
        )
        target = gen.sample_center(rng)
        step = target - prev.center_mm
        norm = np.linalg.norm(step)
        if norm > max_center_step_mm:
            step *= max_center_step_mm / norm
        art = sample_articulation(rng, config.gesture_prob, config.gesture_noise_deg)
        keys.append(HandState(art, rot, prev.center_mm + step, first.scale))
    key_t = np.arange(num_keys, dtype=np.float64) * keyframe_interval
    arts, rots, ctrs = interpolate_states(
        key_t,
        np.stack([k.articulation_deg for k in keys]),
        np.stack([k.rotation for k in keys]),
        np.stack([k.center_mm for k in keys]),
        np.arange(num_frames, dtype=np.float64),
    )
    states = [HandState(arts[i], rots[i], ctrs[i], first.scale) for i in range(num_frames)]
    # one background for the whole sequence, clear of the hand in every frame
    placed = [place_hand(s, gen.shape) for s in states]
    planes = background_planes(config.background, rng, lambda n: max(g.support(n) for g in placed))
    for i, state in enumerate(states):
        frame_rng = np.random.default_rng([config.seed, _STREAM_SEQUENCE, i])
        yield gen.render_state(state, frame_rng, frame_id=i, planes=planes)
