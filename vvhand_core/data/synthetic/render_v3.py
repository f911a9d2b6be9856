"""Rendering scene version 3 (:mod:`scene_v3`): ray cast, labels, visibility, meta."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from vvhand_core.data.base import DepthFrame
from vvhand_core.data.synthetic.person import primitives
from vvhand_core.data.synthetic.raycast import ray_grid, splat_geometry, splat_planes
from vvhand_core.data.synthetic.scene_v2 import Scene, _tick
from vvhand_core.data.synthetic.scene_v3 import LABELS, SceneSpecV3, joint_codes, sample_scene_v3
from vvhand_core.data.synthetic.sensor_models import apply_sensor
from vvhand_core.skeletons import HANDS2019_21

HAND_LABELS = (LABELS["hand"], LABELS["second_hand"])


def _r(x, nd: int = 2) -> list:
    return np.round(np.asarray(x, dtype=np.float64), nd).tolist()


def centre_in_view(centre_mm, intr) -> bool:
    """Whether a hand centred at ``centre_mm`` (3,) camera mm projects into the image.

    The labelling rule of v3 frames: the first hand is always labelled, every other hand
    only while this holds (vvhand_core.detector.offimage scores the others).
    """
    c = centre_mm
    if not c[2] > 0:
        return False
    cu, cv = intr.fx * c[0] / c[2] + intr.cx, intr.fy * c[1] / c[2] + intr.cy
    return bool(0 <= cu < intr.width and 0 <= cv < intr.height)


def render_spec_v3(spec: SceneSpecV3, config, rng, frame_id=0, timings=None) -> Scene:
    """Ray-cast a v3 scene, apply its sensor (noise from ``rng``), fill the meta."""
    t0 = time.process_time()
    intr = spec.intr
    depth = np.full((intr.height, intr.width), np.inf, dtype=np.float32)
    labels = np.zeros((intr.height, intr.width), dtype=np.uint8)
    rays = ray_grid(intr, np.float32)
    for k, h in enumerate(spec.hands):
        hand_labels = np.where(h.hand.forearm_mask(), LABELS["arm"], HAND_LABELS[k])
        splat_geometry(h.hand, intr, depth, labels, hand_labels, rays)
        splat_geometry(h.arm, intr, depth, labels, LABELS["arm"], rays)
        if h.held is not None:
            splat_geometry(h.held, intr, depth, labels, LABELS["held_object"], rays)
    t0 = _tick(timings, "hand_arm", t0)
    splat_geometry(spec.body, intr, depth, labels, LABELS["torso"], rays)
    splat_geometry(spec.table, intr, depth, labels, LABELS["table"], rays)
    if spec.clutter is not None:
        splat_geometry(spec.clutter, intr, depth, labels, LABELS["objects"], rays)
    for plane, lab in zip(spec.planes, spec.plane_labels):
        splat_planes(plane[None], intr, depth, labels, lab, config.max_depth_mm, rays)
    far = depth > config.max_depth_mm
    depth[far] = 0.0
    labels[far] = 0
    t0 = _tick(timings, "body_background", t0)
    hands_meta = []
    for k, h in enumerate(spec.hands):
        j = h.hand.joints
        uv = j[:, :2] / j[:, 2:3] * [intr.fx, intr.fy] + [intr.cx, intr.cy]
        c = h.center_mm
        if k > 0 and not centre_in_view(c, intr):
            continue  # the other hand is out of view: not labelled
        g = h.grasp
        hands_meta.append({
            "side": "left" if h.left else "right",
            "joints_mm": _r(j, 3),
            "center_mm": _r(c, 3),
            "uv": _r(uv, 2),
            "visibility": joint_codes(j, h.hand.joint_radius, depth, labels, intr,
                                      HAND_LABELS[k]),
            "grasp": g.kind,
            "grasp_drawn": g.drawn,
            "object": g.object,
            "contact_gap_mm": [None if not np.isfinite(x) else round(float(x), 2)
                               for x in g.contact_gap_mm],
            "touching": g.touching(),
            "articulation_deg": _r(g.articulation_deg, 3),
            "elbow_mm": _r(h.arm.spheres[0, :3], 2) if len(h.arm.spheres) else None,
        })  # fmt: skip
    out = apply_sensor(depth, intr, spec.sensor, rng, config.quantize)
    _tick(timings, "sensor", t0)
    shown = np.bincount(labels.reshape(-1), minlength=len(LABELS))
    h0 = spec.hands[0]
    meta = {
        "frame_id": frame_id,
        "source": "synthetic",
        "seed": config.seed,
        "scene_version": 3,
        "cube_mm": config.cube_mm,
        "placement": spec.placement,
        "side": "left" if h0.left else "right",
        "grasp": h0.grasp.kind,
        "object": h0.grasp.object,
        "sensor": spec.sensor.kind,
        "sensor_params": spec.sensor.to_meta(),
        "parts": [n for n, k in LABELS.items() if k > LABELS["hand"] and shown[k] > 0],
        "center_mm": _r(h0.center_mm, 3),
        "visible": [c == "visible" for c in hands_meta[0]["visibility"]],
        "hands": hands_meta,
        "num_hands": len(hands_meta),
        "camera": spec.meta.get("camera", {}) | {
            "fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy,
            "width": intr.width, "height": intr.height},
    } | {k: v for k, v in spec.meta.items() if k != "camera"}  # fmt: skip
    frame = DepthFrame(out, intr, h0.hand.joints.astype(np.float32), HANDS2019_21, meta)
    return Scene(frame, depth, labels)


def without_hands_v3(spec: SceneSpecV3) -> SceneSpecV3:
    """The scene with no hand in it: hands, arms and held objects out; the rest stays.

    Hand 0's joints stay as the frame's label (none visible) for bookkeeping.
    """
    hidden = []
    for h in spec.hands[:1]:
        ghost = replace(primitives(), joints=h.hand.joints, joint_radius=h.hand.joint_radius)
        hidden.append(replace(h, hand=ghost, held=None, arm=primitives()))
    return replace(spec, hands=hidden)


def render_scene_v3(config, rng: np.random.Generator, frame_id=0, timings=None,
                    hands: bool = True) -> Scene:
    """Frame of scene version 3 drawn from ``rng`` (``hands=False``: without its hands)."""
    t0 = time.process_time()
    spec = sample_scene_v3(config, rng)
    if not hands:
        spec = without_hands_v3(spec)
    _tick(timings, "sample", t0)
    scene = render_spec_v3(spec, config, rng, frame_id, timings)
    if not hands:
        meta = scene.frame.meta
        meta["visible"], meta["hand_free"], meta["hands"], meta["num_hands"] = (
            [False] * len(meta["visible"]), True, [], 0)
    return scene
