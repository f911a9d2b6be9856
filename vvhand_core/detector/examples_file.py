"""The hand detector's training examples on disk (``.npz``), keyed by what made them.

A file holds :class:`~vvhand_core.detector.data.Examples` with a key: the sources (SynthConfig
dict, frame count), the detector config and the targets' version (``data.TARGETS``). It
loads for the same sources and canonical camera whatever the network's shape
(``ops.NETWORK_FIELDS``), and as the first sources of a larger set
(:func:`load_examples_prefix`). Examples written before the off-image targets (``TARGETS``
1, five columns) load with them added (:func:`add_offimage_targets`: the scenes drawn
again, not rendered).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vvhand_core.detector.data import (
    MAX_HANDS,
    TARGETS,
    Examples,
    target_row,
)
from vvhand_core.detector.net import DetectorConfig, canonical_camera
from vvhand_core.detector.offimage import labelled_centres, reaching_centres, spec_hands
from vvhand_core.detector.ops import NETWORK_FIELDS


def _examples_key(sources: list[tuple[dict, int]], cfg: DetectorConfig) -> str:
    return json.dumps({"sources": sources, "detector": cfg.to_dict(), "targets": TARGETS},
                      sort_keys=True)


def _without_network(key: str) -> dict:
    """An examples key without the network's shape and its targets' version.

    Examples do not depend on the network's shape (``NETWORK_FIELDS``: a key written
    before a field existed matches its default too); older targets are brought up to date
    on loading.
    """
    parsed = json.loads(key)
    for name in NETWORK_FIELDS:
        parsed["detector"].pop(name, None)
    parsed.pop("targets", None)
    return parsed


def _targets_version(key: str) -> int:
    return int(json.loads(key).get("targets", 1))


def add_offimage_targets(ex: Examples, sources: list[tuple[dict, int]], cfg: DetectorConfig,
                         min_depth_mm: float = 200.0, max_depth_mm: float = 1200.0
                         ) -> Examples:
    """Examples of ``TARGETS`` 1 (five columns) with the off-image hands' rows added.

    ``sources``: what made ``ex``, in order. Each v3 frame's scene is drawn again (no
    rendering) for its unlabelled hands that reach into the image; they take the free
    rows after the labelled hands, and the labelled hands' rows are made again from the
    drawn scene (their heat points kept ``INSET_PX`` inside the border). Rows of other
    scene versions keep their centre as heat point.
    """
    hands = ex.hands.copy()  # five columns became seven in Examples(): heat point = centre
    row = 0
    for synth, count in sources:
        for i in range(count):
            spec = None if synth.get("hand_free") else spec_hands(synth, i)
            if spec is not None:  # v3: every row again, from the drawn scene
                cam = canonical_camera(spec.intr, cfg.focal_px)
                canon = ex.depth[row + i, :cam.height, :cam.width].astype(np.float32)
                hands[row + i] = 0
                centres = [*labelled_centres(spec), *reaching_centres(spec)]
                for k, c in enumerate(centres[:MAX_HANDS]):
                    got = target_row(canon, cam, c, cfg, min_depth_mm, max_depth_mm)
                    if got is not None:
                        hands[row + i, k] = got
        row += count
    return Examples(ex.depth, ex.near_mm, hands, ex.sizes)


def save_examples(path, ex: Examples, sources: list[tuple[dict, int]],
                  cfg: DetectorConfig) -> None:
    """Write examples with the key of what made them (sources, canonical camera)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    extra = {} if ex.sizes is None else {"sizes": ex.sizes}
    np.savez(path, depth=ex.depth, near_mm=ex.near_mm, hands=ex.hands,
             key=np.array(_examples_key(sources, cfg)), **extra)


def _sizes(z) -> np.ndarray | None:
    return np.asarray(z["sizes"]) if "sizes" in z.files else None


def load_examples(path, sources: list[tuple[dict, int]], cfg: DetectorConfig) -> Examples:
    """Examples written by :func:`save_examples` for the same sources and config.

    ValueError (naming the file) when they were made from anything else; the network's
    ``width`` may differ (the canonical images and targets do not depend on it).
    """
    with np.load(path) as z:
        key = str(z["key"])
        if _without_network(key) != _without_network(_examples_key(sources, cfg)):
            raise ValueError(f"{path}: examples were rendered for other sources or another "
                             "detector config; delete the file or pass another path")
        ex = Examples(z["depth"], z["near_mm"], z["hands"], _sizes(z))
    return ex if _targets_version(key) >= TARGETS else add_offimage_targets(ex, sources, cfg)


def load_examples_prefix(path, sources: list[tuple[dict, int]], cfg: DetectorConfig
                         ) -> tuple[Examples, int]:
    """Examples of :func:`save_examples` made from the first k of ``sources``, and k.

    ValueError (naming the file) when its sources are not a prefix of ``sources`` (or its
    canonical camera differs); the network's ``width`` may differ.
    """
    want = _without_network(_examples_key(sources, cfg))
    with np.load(path) as z:
        key = str(z["key"])
        have = _without_network(key)
        k = len(have["sources"])
        if have["detector"] != want["detector"] or have["sources"] != want["sources"][:k]:
            raise ValueError(f"{path}: its sources are not the first of this run's (or "
                             "another detector config made them)")
        ex = Examples(z["depth"], z["near_mm"], z["hands"], _sizes(z))
    if _targets_version(key) < TARGETS:
        ex = add_offimage_targets(ex, [tuple(s) for s in have["sources"]], cfg)
    return ex, k
