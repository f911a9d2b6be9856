"""Smooth sequences of scene version 2 (demos, rosbags): one person, camera and room.

The camera, the person's build and side, the body's turn, the pose mode, the sensor, a
second hand and objects (when drawn) stay fixed; the hand centre, the arm's directions,
the hand's roll and its articulation are interpolated between random keyframes (each
keyframe's arm turns ``_BLEND`` of the way towards a freshly drawn pose). The body
hangs off the arm (it sways a little with it). The wall / table is placed once, clear of
the hand and arm in every frame. Sensor noise is redrawn per frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from vvhand_core.data.base import DepthFrame
from vvhand_core.data.synthetic.person import build_person, hides_hand, sample_arm_pose
from vvhand_core.data.synthetic.poses import sample_articulation
from vvhand_core.data.synthetic.scene_v2 import (
    draw_background,
    posed_hand,
    render_spec,
    sample_center,
    sample_scene_v2,
)

_BLEND = 0.35  # each keyframe moves the arm this far towards a fresh random pose


def _nlerp(a: np.ndarray, b: np.ndarray, e: float) -> np.ndarray:
    v = (1 - e) * a + e * b
    n = np.linalg.norm(v)
    return v / n if n > 1e-9 else a


def sample_sequence_v2(
    config, num_frames: int, keyframe_interval: int, max_center_step_mm: float, stream: int
) -> Iterator[DepthFrame]:
    """``num_frames`` frames of one v2 scene, moving smoothly; deterministic by config.seed.

    Keyframes every ``keyframe_interval`` frames; consecutive keyframe hand centres differ
    by at most ``max_center_step_mm``. ``stream``: the generator's sequence stream id.
    """
    rng = np.random.default_rng([config.seed, stream])
    spec = sample_scene_v2(config, rng)
    sigma = 1.0 if spec.left else -1.0
    keys = [(spec.center_mm, spec.pose, spec.articulation_deg)]
    num_keys = (num_frames - 1) // keyframe_interval + 2
    while len(keys) < num_keys:
        prev = keys[-1][0]
        step = sample_center(rng, spec.intr, spec.scale) - prev
        norm = np.linalg.norm(step)
        centre = prev + (step * (max_center_step_mm / norm) if norm > max_center_step_mm else step)
        art = sample_articulation(rng, config.gesture_prob, config.gesture_noise_deg)
        local = posed_hand(art, spec.shape, spec.scale, spec.left, spec.body.forearm_mm)
        last = keys[-1][1]
        for _ in range(12):
            fresh = sample_arm_pose(rng, centre, sigma, spec.pose.body_rotation, spec.pose.mode)
            turn = (fresh.roll_rad - last.roll_rad + np.pi) % (2 * np.pi) - np.pi
            pose = replace(fresh, forearm_dir=_nlerp(last.forearm_dir, fresh.forearm_dir, _BLEND),
                           upper_arm_dir=_nlerp(last.upper_arm_dir, fresh.upper_arm_dir, _BLEND),
                           roll_rad=last.roll_rad + _BLEND * turn)  # fmt: skip
            if not hides_hand(build_person(local, pose, spec.body)):
                break
        keys.append((centre, pose, art))
    people, poses, arts = [], [], []
    for i in range(num_frames):
        k, s = divmod(i / keyframe_interval, 1.0)
        (c0, p0, a0), (c1, p1, a1) = keys[int(k)], keys[int(k) + 1]
        e = s * s * (3.0 - 2.0 * s)  # smoothstep
        pose = replace(p0, center_mm=(1 - e) * c0 + e * c1,
                       forearm_dir=_nlerp(p0.forearm_dir, p1.forearm_dir, e),
                       upper_arm_dir=_nlerp(p0.upper_arm_dir, p1.upper_arm_dir, e),
                       roll_rad=(1 - e) * p0.roll_rad + e * p1.roll_rad)  # fmt: skip
        art = (1 - e) * a0 + e * a1
        local = posed_hand(art, spec.shape, spec.scale, spec.left, spec.body.forearm_mm)
        people.append(build_person(local, pose, spec.body))
        poses.append(pose)
        arts.append(art)
    near = [g for p in people for g in (p.hand, p.arm)]
    extra = [g for g in (spec.distractor, spec.clutter) if g is not None]
    bg_config = replace(config, background=spec.background)
    _, planes = draw_background(rng, bg_config, near, near + [p.body for p in people] + extra)
    for i, (person, pose, art) in enumerate(zip(people, poses, arts)):
        frame_spec = replace(spec, articulation_deg=art, center_mm=pose.center_mm, pose=pose,
                             person=person, planes=planes)  # fmt: skip
        frame_rng = np.random.default_rng([config.seed, stream, i])
        yield render_spec(frame_spec, config, frame_rng, frame_id=i).frame
