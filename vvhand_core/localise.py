"""Hand centre without ground truth (live camera), and the oracle centre for comparisons.

Default rule: the nearest sizeable object in [min_depth, max_depth] is the hand.

1. Subsample the depth image (``stride``), keep pixels in range, and cut it into objects:
   4-connected components where a depth step above ``jump_mm`` between neighbours
   separates (the farther pixel of the pair is dropped, so a hand in front of a wall or
   a table is never one object with it).
2. Components below ``min_blob_pixels`` are noise (isolated or salt pixels). A candidate
   needs a visible metric area of at least ``min_area_mm2``; candidates are visited
   nearest first, by their ``near_percentile`` depth z_near.
3. Only points with depth in [z_near - cube/2, z_near + cube/2] count, from the candidate
   and from small fragments (a finger cut off by its own depth step), never from other
   large objects: an attached forearm or a wall behind cannot drag the centre far.
4. The centre (x, y) is refined by iterating the centre of mass of those points inside
   the cube window around the current estimate (mean shift with a box kernel), each
   point weighted by its visible area and exp(-(z - z_near) / depth_tau_mm): a forearm
   recedes from the camera, so it cannot pull the centre along itself. The centre's
   depth is the plain (area-weighted) mean depth of the points in the final window.
5. Plausibility: the points in the final window must cover at least ``min_area_mm2`` and
   at most ``max_fill`` of the cube's cross-section, and the object's slab must not
   reach past 1.5 cube/2 on both sides of the centre (a wall or a table top is not a
   hand; a forearm leaves on one side only); otherwise the next candidate is tried.

With ``use_tracking`` the previous centre is a prior: the object with the most area in
the cube around it is refined first; when that fails the prior is dropped and the frame is
searched from scratch. "No hand" is ``None``, never an exception.

``locate_all(depth_mm, intrinsics)`` returns every hand
(:class:`~vvhand_core.detector.tracks.HandCandidate` list): each of the
``max_candidates`` nearest sizeable objects that passes steps 3-5 is a hand, scored by its
rank, 1 / (1 + r) with r = 0 for the nearest (so the order by score is nearest first;
there is no learned evidence here); detections closer than ``merge_radius_mm`` are one
hand; at most ``max_hands``. With tracking each hand keeps its own prior
(:class:`~vvhand_core.detector.tracks.HandTracks`): every live track's prior is refined
first as above and scores 1 (a tracked hand is believed first, as in ``locate``); hands
are matched to tracks greedily by distance within ``track_radius_mm``, and a track ends
after ``track_max_misses`` frames unseen. ``locate`` and ``locate_all`` keep separate
state; ``reset`` forgets both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vvhand_core.camera import Intrinsics
from vvhand_core.detector.tracks import (
    MERGE_RADIUS_MM,
    HandCandidate,
    HandTracks,
    merge_duplicates,
    ordered,
)


@dataclass
class LocaliseConfig:
    """Parameters of the hand localiser (millimetres, subsampled pixels)."""

    min_depth_mm: float = 200.0
    max_depth_mm: float = 1200.0
    cube_mm: float = 250.0
    stride: int = 4
    jump_mm: float = 40.0
    min_blob_pixels: int = 4
    min_area_mm2: float = 1500.0
    max_fill: float = 0.8
    near_percentile: float = 2.0
    depth_tau_mm: float = 30.0
    iterations: int = 10
    max_candidates: int = 5
    use_tracking: bool = True
    max_hands: int = 2  # locate_all: at most this many hands
    merge_radius_mm: float = MERGE_RADIUS_MM  # locate_all: closer detections are one hand
    track_radius_mm: float = 120.0  # locate_all: a hand within this of a track continues it
    track_max_misses: int = 2  # locate_all: a track ends after this many frames unseen

    def __post_init__(self) -> None:
        """Validate the parameters (ValueError)."""
        if not 0 < self.min_depth_mm < self.max_depth_mm:
            raise ValueError("need 0 < min_depth_mm < max_depth_mm")
        if self.cube_mm <= 0 or self.stride < 1 or self.iterations < 1:
            raise ValueError("cube_mm > 0, stride >= 1 and iterations >= 1 are required")
        if not 0 < self.max_fill <= 1:
            raise ValueError("max_fill must be in (0, 1]")
        if self.max_hands < 1 or self.merge_radius_mm < 0:
            raise ValueError("max_hands >= 1 and merge_radius_mm >= 0 are required")


@dataclass
class _Scene:
    """One subsampled frame, cut into labelled objects."""

    depth: np.ndarray  # (h, w) mm, float32
    points: np.ndarray  # (h, w, 3) camera mm
    area: np.ndarray  # (h, w) visible mm^2 per subsampled pixel
    labels: np.ndarray  # (h, w) int, 0 = none
    fragment: np.ndarray  # (n_labels + 1,) bool: small pieces that may belong to a hand
    big: np.ndarray  # (n_labels + 1,) bool: sizeable objects


class HandLocaliser:
    """Finds hand centres in depth frames; holds the tracking state (its only state)."""

    def __init__(self, cfg: LocaliseConfig | None = None) -> None:
        """A localiser without a prior (ValueError from HandTracks on bad track settings)."""
        self.cfg = cfg = cfg or LocaliseConfig()
        self.prior: np.ndarray | None = None  # locate()'s single prior
        self.tracks = HandTracks(cfg.track_radius_mm, 0.0, cfg.track_max_misses,
                                 cfg.max_hands)  # locate_all()'s

    def reset(self) -> None:
        """Forget the tracking prior and end every track (e.g. when the stream restarts)."""
        self.prior = None
        self.tracks.reset()

    def locate(self, depth_mm: np.ndarray, intr: Intrinsics) -> np.ndarray | None:
        """Hand centre (3,) in camera mm from a depth image (H, W) in mm, or None."""
        scene = self._scene(np.asarray(depth_mm), intr)
        centre = None
        if scene is not None:
            if self.cfg.use_tracking and self.prior is not None:
                centre = self._track(scene, self.prior)
            if centre is None:
                centre = self._detect(scene)
        self.prior = centre if self.cfg.use_tracking else None
        return centre

    def locate_all(self, depth_mm: np.ndarray, intr: Intrinsics) -> list[HandCandidate]:
        """Every hand (module docstring) in depth (H, W) mm; [] when there is none."""
        cfg = self.cfg
        scene = self._scene(np.asarray(depth_mm), intr)
        found: list[tuple[float, np.ndarray]] = []
        if scene is not None:
            if cfg.use_tracking:
                for track in self.tracks.tracks:
                    c = self._track(scene, track.centre_mm)
                    if c is not None:
                        found.append((1.0, c))
            found += [(1.0 / (1 + r), c) for r, c in enumerate(self._detect_all(scene))]
        found = [found[k] for k in merge_duplicates(found, cfg.merge_radius_mm)]
        if cfg.use_tracking:
            return self.tracks.update(found, [True] * len(found))
        return ordered([HandCandidate(c, s) for s, c in found])[:cfg.max_hands]

    # ------------------------------------------------------------------ steps

    def _scene(self, depth_mm: np.ndarray, intr: Intrinsics) -> _Scene | None:
        cfg = self.cfg
        st = cfg.stride
        d = depth_mm[::st, ::st].astype(np.float32)
        d = np.nan_to_num(d, nan=0.0)
        valid = (d >= cfg.min_depth_mm) & (d <= cfg.max_depth_mm)
        if valid.sum() < cfg.min_blob_pixels:
            return None
        # cut objects at depth steps: drop the farther pixel of each jumping 4-neighbour pair
        keep = valid.copy()
        for axis in (0, 1):
            diff = np.diff(d, axis=axis)
            a = [slice(None), slice(None)]
            b = [slice(None), slice(None)]
            a[axis], b[axis] = slice(None, -1), slice(1, None)
            a, b = tuple(a), tuple(b)
            jump = valid[a] & valid[b] & (np.abs(diff) > cfg.jump_mm)
            keep[b] &= ~(jump & (diff > 0))  # second pixel farther
            keep[a] &= ~(jump & (diff < 0))  # first pixel farther
        labels, n = ndimage.label(keep)
        rows, cols = np.mgrid[0 : d.shape[0], 0 : d.shape[1]]
        u, v = cols * float(st), rows * float(st)
        x = (u - intr.cx) / intr.fx * d
        y = (v - intr.cy) / intr.fy * d
        points = np.stack((x, y, d), axis=-1)
        area = (d * st / intr.fx) * (d * st / intr.fy)
        flat = labels.ravel()
        counts = np.bincount(flat, minlength=n + 1)
        areas = np.bincount(flat, weights=np.where(keep, area, 0).ravel(), minlength=n + 1)
        enough = counts >= cfg.min_blob_pixels
        enough[0] = False
        big = enough & (areas >= cfg.min_area_mm2)
        return _Scene(d, points, area, labels, enough & ~big, big)

    def _near_depths(self, scene: _Scene, ids: np.ndarray) -> np.ndarray:
        """near_percentile depth of each component in ids (vectorised over components)."""
        lab = scene.labels.ravel()
        sel = np.flatnonzero(np.isin(lab, ids))
        order = np.lexsort((scene.depth.ravel()[sel], lab[sel]))
        lab_s, dep_s = lab[sel][order], scene.depth.ravel()[sel][order]
        starts = np.searchsorted(lab_s, ids, side="left")
        ends = np.searchsorted(lab_s, ids, side="right")
        pick = starts + np.floor((ends - starts - 1) * self.cfg.near_percentile / 100).astype(int)
        return dep_s[pick]

    def _detect(self, scene: _Scene) -> np.ndarray | None:
        """The nearest object that passes as a hand (refined), or None."""
        return next(self._hands(scene), None)

    def _detect_all(self, scene: _Scene) -> list[np.ndarray]:
        """Every one of the ``max_candidates`` nearest objects that passes, nearest first."""
        return list(self._hands(scene))

    def _hands(self, scene: _Scene):
        """Refined centres of the nearest sizeable objects that pass, nearest first (lazy)."""
        ids = np.flatnonzero(scene.big)
        if ids.size == 0:
            return
        near = self._near_depths(scene, ids)
        for i in np.argsort(near, kind="stable")[: self.cfg.max_candidates]:
            centre = self._refine(scene, int(ids[i]), float(near[i]), None)
            if centre is not None:
                yield centre

    def _track(self, scene: _Scene, prior: np.ndarray) -> np.ndarray | None:
        half = self.cfg.cube_mm / 2
        inside = np.all(np.abs(scene.points - prior) <= half, axis=-1) & (scene.labels > 0)
        if not inside.any():
            return None
        lab = scene.labels[inside]
        weights = np.bincount(lab, weights=scene.area[inside], minlength=scene.big.size)
        best = int(np.argmax(weights))
        if not scene.big[best]:
            return None
        near = np.percentile(scene.depth[inside & (scene.labels == best)],
                             self.cfg.near_percentile)
        return self._refine(scene, best, float(near), prior)

    def _refine(
        self, scene: _Scene, label: int, z_near: float, start: np.ndarray | None
    ) -> np.ndarray | None:
        cfg = self.cfg
        half = cfg.cube_mm / 2
        slab = np.abs(scene.depth - z_near) <= half
        member = ((scene.labels == label) | scene.fragment[scene.labels]) & slab
        pts, area = scene.points[member], scene.area[member]
        # nearer points weigh more: a forearm or the back of the hand recedes from the camera
        weight = area * np.exp(-np.clip(pts[:, 2] - z_near, 0, None) / cfg.depth_tau_mm)
        xy = pts[:, :2]
        if start is None:
            own = scene.labels[member] == label
            centre = (xy[own] * weight[own, None]).sum(0) / weight[own].sum()
        else:
            centre = np.asarray(start[:2], dtype=np.float64)
        for it in range(cfg.iterations):
            sel = np.all(np.abs(xy - centre) <= half, axis=1)
            if not sel.any():
                return None
            if it == 0 and area[sel].sum() > cfg.max_fill * cfg.cube_mm**2:
                return None  # a surface filling the window (wall, table): not a hand
            new = (xy[sel] * weight[sel, None]).sum(0) / weight[sel].sum()
            moved = float(np.abs(new - centre).max())
            centre = new
            if moved < 0.5:
                break
        sel = np.all(np.abs(xy - centre) <= half, axis=1)
        covered = float(area[sel].sum())
        if covered < cfg.min_area_mm2 or covered > cfg.max_fill * cfg.cube_mm**2:
            return None
        own = scene.labels[member] == label
        if _spans(xy[own] - centre, 1.5 * half):
            return None
        z = float((pts[sel, 2] * area[sel]).sum() / covered)  # plain centre of mass in depth
        return np.array([centre[0], centre[1], z], dtype=np.float64)


def _spans(offsets: np.ndarray, reach: float) -> bool:
    """True when offsets (N, 2) reach beyond +-reach on both sides of x or of y."""
    if offsets.size == 0:
        return False
    lo, hi = offsets.min(axis=0), offsets.max(axis=0)
    return bool(np.any((lo < -reach) & (hi > reach)))


LOCALISERS = ("detector", "geometric")


def make_localiser(kind: str, min_depth_mm: float, max_depth_mm: float, cube_mm: float,
                   use_tracking: bool, detector_weights: str = "", num_threads: int = 0,
                   max_hands: int = 2):
    """A localiser (``locate(depth_mm, intr)``, ``locate_all``, ``reset()``) of the named kind.

    "detector": the learned hand detector (``vvhand_core.detector``, the default, weights
    from ``detector_weights`` or the packaged file; ``num_threads``: its onnxruntime
    threads, 0 = ``detector.runtime.session_threads``); "geometric": :class:`HandLocaliser`,
    the nearest sizeable object (no weights; it crops the forearm when that is nearest).
    ``max_hands``: the most hands ``locate_all`` returns.
    """
    if kind == "geometric":
        return HandLocaliser(LocaliseConfig(min_depth_mm=min_depth_mm, max_depth_mm=max_depth_mm,
                                            cube_mm=cube_mm, use_tracking=use_tracking,
                                            max_hands=max_hands))
    if kind == "detector":
        from vvhand_core.detector.localiser import DetectorLocaliser, DetectorLocaliserConfig

        return DetectorLocaliser(DetectorLocaliserConfig(
            weights=detector_weights, min_depth_mm=min_depth_mm, max_depth_mm=max_depth_mm,
            use_tracking=use_tracking, num_threads=num_threads, max_hands=max_hands))
    raise ValueError(f"localiser must be one of {LOCALISERS}, got {kind!r}")


def oracle_centre(joints_mm, joint_ids=None):
    """Mean of a joint subset: joints_mm (..., J, 3) (numpy or torch) -> (..., 3).

    The evaluation-only "oracle" centre from ground truth, to compare with published
    tables; joint_ids None means all joints.
    """
    sub = joints_mm if joint_ids is None else joints_mm[..., list(joint_ids), :]
    return sub.mean(-2) if not isinstance(sub, np.ndarray) else sub.mean(axis=-2)


def locate_frames(localiser, depth_mm: np.ndarray, intrinsics: Intrinsics,
                  centres_mm: np.ndarray | None = None
                  ) -> tuple[list[np.ndarray | None], list[str]]:
    """Hand centres (3,) mm of depth frames (B, H, W), or why there is none ("" if found).

    ``centres_mm`` (B, 3) given: used as they are (e.g. an oracle centre) when finite and
    in front of the camera; else each frame is located in order (so that tracking sees
    consecutive frames). A frame without a centre gets None and a message.
    """
    centres: list[np.ndarray | None] = []
    messages = [""] * len(depth_mm)
    for i in range(len(depth_mm)):
        if centres_mm is None:
            c = localiser.locate(depth_mm[i], intrinsics)
            if c is None:
                messages[i] = "no hand in range"
        else:
            c = np.asarray(centres_mm[i], np.float64)
            if not (np.isfinite(c).all() and c[2] > 0):
                c, messages[i] = None, f"invalid hand centre {centres_mm[i]}"
        centres.append(None if c is None else np.asarray(c, np.float64))
    return centres, messages
