"""Hand centres from the learned detector: the default localiser of the pipeline.

``DetectorLocaliser.locate(depth_mm, intrinsics)`` resamples the frame to the canonical
camera (``detector.net``), runs the network once, lifts every heat-map peak to a 3D
centre (the refiner on a patch around it, or the local surface depth + the predicted
``dz``; a hand centred outside the image peaks at the border and the refiner's offsets
lead to its centre outside, which is reported as it is: ``detector.offimage``), scores
it by its peak (times ``edge_factor`` when the centre lies within ``edge_margin_px``
canonical pixels of the image border or outside it: objects cut by the border look like
hands more often than whole ones; chosen on the tuning splits, assets/hand_detector.md)
and picks one:

* Rule without a prior: among the candidates scoring at least ``threshold`` and at least
  ``relative_threshold`` x the best score, the NEAREST one (smallest depth) wins, so with
  two hands in view the one closer to the camera is tracked (the synthetic scenes label
  the nearest hand for the same reason). When some of them score at least
  ``hand_threshold`` (confident hands), the nearest of those wins: a weaker object nearer
  to the camera (a cup, a tool, a shoulder) does not take the crop from a confident hand.
  Chosen on the tuning splits (a one-off sweep, 500 frames each, failures = no hand or
  > 60 mm off: 20 -> 15 of 2000 with 0.5; assets/hand_detector.md); the test splits'
  measurement is in docs/results.md (``vvhand detector eval``).
* With tracking (``use_tracking``), the candidate nearest to the previous centre wins when
  it lies within ``track_radius_mm`` of it and scores at least ``track_threshold``
  (lower than ``threshold``: a hand seen a frame ago is believed on weaker evidence);
  otherwise the frame is searched as without a prior.

``locate_all(depth_mm, intrinsics)`` returns every hand instead
(:class:`~vvhand_core.detector.tracks.HandCandidate` list, score descending, equal
scores nearer first): the peaks are lifted as above, detections closer than
``merge_radius_mm`` (3D) are one hand (the best kept), and a hand without a track needs a
score of at least ``threshold`` and ``relative_threshold`` x the frame's best; at most
``max_hands``. With tracking each hand keeps its own prior
(:class:`~vvhand_core.detector.tracks.HandTracks`: greedy matching by distance within
``track_radius_mm``, ``track_threshold`` for a tracked hand, a track ends after
``track_max_misses`` frames without its hand). ``locate`` and ``locate_all`` keep
separate state (one prior; the tracks): use one of them per stream. ``reset`` forgets
both.

"No hand" is ``None`` (``[]`` from ``locate_all``), never an exception. The weights come
from a small file written by ``vvhand detector train`` (default: the packaged
``assets/hand_detector.pt``). The two networks run with torch or onnxruntime
(``runtime``, see ``detector.runtime``); the rest is the same numpy code for both
(``detector.ops``). With onnxruntime, weights whose ONNX
export lies next to them (``detector.shipped``; the packaged detector's does) load from
it without torch: this module imports torch only to read a ``.pt`` file (runtime "torch",
or weights without an export, which are exported in memory).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vvhand_core.camera import Intrinsics, back_project_np
from vvhand_core.detector.ops import (
    DZ_SCALE_MM,
    DetectorConfig,
    apply_offsets,
    canonical_depth,
    canonical_index,
    encode_input,
    find_peaks,
    patch_at,
    surface_depth_mm,
)
from vvhand_core.detector.runtime import (
    OrtRunner,
    check_runtime,
    make_runner,
    onnxruntime_error,
)
from vvhand_core.detector.shipped import description_path, load_exported
from vvhand_core.detector.tracks import (
    MERGE_RADIUS_MM,
    HandCandidate,
    HandTracks,
    merge_duplicates,
    ordered,
    select_new,
)

if TYPE_CHECKING:
    import torch

    from vvhand_core.detector.net import HandDetectorNet
    from vvhand_core.detector.refine import RefineNet

FORMAT = "vvhand-hand-detector"
VERSION = 1


def default_weights_path() -> Path:
    """The packaged detector weights."""
    return Path(__file__).resolve().parents[1] / "assets" / "hand_detector.pt"


def is_packaged(weights: str | os.PathLike) -> bool:
    """Whether ``weights`` ("" = the default) are the packaged detector's."""
    return not str(weights) or Path(weights).resolve() == default_weights_path()


def fold_batchnorm(net):
    """``detector.net.fold_batchnorm`` (imports torch)."""
    from vvhand_core.detector.net import fold_batchnorm as fold

    return fold(net)


@dataclass
class DetectorLocaliserConfig:
    """How detections become one hand centre (see the module docstring)."""

    weights: str = ""  # "" = the packaged default
    min_depth_mm: float = 200.0
    max_depth_mm: float = 1200.0
    threshold: float = 0.4  # 0.3 before 2026-12-02: hand_detector.md, "Choice rule"
    relative_threshold: float = 0.5
    hand_threshold: float = 0.5  # 1.0: the nearest strong candidate, however weak
    track_threshold: float = 0.1
    track_radius_mm: float = 120.0
    use_tracking: bool = True
    max_peaks: int = 5
    edge_margin_px: float = 16.0  # canonical pixels: a centre this near the border ...
    edge_factor: float = 0.8  # ... scores this x its peak (1.0: no border rule)
    max_hands: int = 2  # locate_all: at most this many hands
    merge_radius_mm: float = MERGE_RADIUS_MM  # locate_all: closer detections are one hand
    track_max_misses: int = 2  # locate_all: a track ends after this many frames unseen
    runtime: str = "auto"  # "auto" (onnxruntime if installed, else torch) | "torch" | "onnxruntime"
    num_threads: int = 0  # onnxruntime's intra-op threads (0: detector.runtime.session_threads)

    def __post_init__(self) -> None:
        """Validate."""
        check_runtime(self.runtime)
        if not 0 < self.min_depth_mm < self.max_depth_mm:
            raise ValueError("need 0 < min_depth_mm < max_depth_mm")
        for name in ("threshold", "relative_threshold", "hand_threshold", "track_threshold",
                     "edge_factor"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.track_radius_mm <= 0 or self.max_peaks < 1 or self.edge_margin_px < 0:
            raise ValueError("track_radius_mm > 0, max_peaks >= 1 and edge_margin_px >= 0 "
                             "are required")
        if self.max_hands < 1 or self.merge_radius_mm < 0 or self.track_max_misses < 0:
            raise ValueError("max_hands >= 1, merge_radius_mm >= 0 and track_max_misses >= 0 "
                             "are required")


def _cpu_state(module: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def save_detector(path: str | Path, net: HandDetectorNet, meta: dict,
                  refiner: RefineNet | None = None) -> Path:
    """Write weights (+ the refiner's) + config + metadata (loads with weights_only=True)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "version": VERSION, "config": net.config.to_dict(),
            "meta": meta, "state": _cpu_state(net)}
    if refiner is not None:
        blob["refine_state"] = _cpu_state(refiner)
        blob["refine_config"] = refiner.config.to_dict()
    torch.save(blob, path)
    return path


def load_detector(path: str | Path) -> tuple[HandDetectorNet, RefineNet | None, dict]:
    """The networks (eval mode, CPU; refiner None when the file has none) and metadata.

    ValueError naming the file when it is missing, unreadable or does not fit, or when
    torch (needed to read it) is not installed.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"hand detector {path}: file not found")
    try:
        import torch

        from vvhand_core.detector.net import HandDetectorNet
        from vvhand_core.detector.refine import RefineNet
    except ImportError as exc:
        raise ValueError(f"hand detector {path}: reading a .pt file needs torch ({exc}); "
                         "without torch only detectors exported with `vvhand detector "
                         "export-onnx` run (the packaged one is)") from None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one clear error
        raise ValueError(f"hand detector {path}: unreadable ({type(exc).__name__}: {exc})"
                         ) from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"hand detector {path}: not a {FORMAT} file")
    try:
        net = HandDetectorNet(DetectorConfig(**blob["config"]))
        net.load_state_dict(blob["state"])
        refiner = None
        if "refine_state" in blob:
            refiner = RefineNet(**blob.get("refine_config", {}))  # older files: defaults
            refiner.load_state_dict(blob["refine_state"])
            refiner.eval()
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"hand detector {path}: weights do not fit ({exc})") from None
    return net.eval(), refiner, dict(blob.get("meta", {}))


class DetectorLocaliser:
    """Finds hand centres with the learned detector; holds the tracking state."""

    def __init__(self, cfg: DetectorLocaliserConfig | None = None,
                 net: HandDetectorNet | None = None, refiner: RefineNet | None = None) -> None:
        """Load the weights (``cfg.weights`` or the packaged default) unless ``net`` given.

        ``refiner`` (loaded with the weights when the file has one) refines each
        candidate from a patch around it; without one the heat-map's dz is used. Both
        run with ``cfg.runtime`` (``self.runtime``: the one chosen; ValueError when
        "onnxruntime" cannot run). With onnxruntime, weights with an ONNX export next
        to them (the packaged ones) load from it, without torch (``self.net`` and
        ``self.refiner`` are None then; DetectorOnnxError naming a broken file).
        """
        self.cfg = cfg = cfg or DetectorLocaliserConfig()
        weights = Path(cfg.weights or default_weights_path())
        if net is None and self._use_export(weights):
            exported = load_exported(weights)
            self.config: DetectorConfig = exported.config
            self.net = self.refiner = None
            self.runner = OrtRunner(exported.models, cfg.num_threads)
            self.has_refiner = "refine" in exported.models
            self.refine_border = exported.refine_config.border
        else:
            if net is None:
                net, refiner, _ = load_detector(weights)
                net = fold_batchnorm(net)  # private copies, used for inference only
                refiner = None if refiner is None else fold_batchnorm(refiner)
            self.config = net.config
            self.net = net.eval()
            self.refiner = None if refiner is None else refiner.eval()
            self.runner = make_runner(cfg.runtime, self.net, self.refiner, cfg.num_threads)
            self.has_refiner = self.refiner is not None
            self.refine_border = self.has_refiner and self.refiner.config.border
        self.runtime: str = self.runner.name
        self.prior: np.ndarray | None = None  # locate()'s single prior
        self.tracks = HandTracks(cfg.track_radius_mm, cfg.track_threshold,
                                 cfg.track_max_misses, cfg.max_hands)  # locate_all()'s
        # canonical_index per (camera, focal length, image shape): a few cameras at most
        self._index: dict[tuple, tuple[np.ndarray, Intrinsics]] = {}

    def _use_export(self, weights: Path) -> bool:
        """Whether to run the ONNX export next to ``weights`` (runtime onnxruntime / auto).

        The packaged weights always have one (a broken one raises, never falls back);
        other weights when their description exists. "onnxruntime" without onnxruntime:
        ValueError saying how to install it.
        """
        if self.cfg.runtime == "torch":
            return False
        missing = onnxruntime_error()
        if missing is not None:
            if self.cfg.runtime == "onnxruntime":
                raise ValueError(f"detector runtime 'onnxruntime': {missing}")
            return False
        return is_packaged(weights) or description_path(weights).is_file()

    def reset(self) -> None:
        """Forget the tracking prior and end every track."""
        self.prior = None
        self.tracks.reset()

    def candidates(self, depth_mm: np.ndarray, intr: Intrinsics, threshold: float
                   ) -> list[tuple[float, np.ndarray]]:
        """(score, centre (3,) camera mm) of every peak scoring >= threshold, best first.

        The score is the heat-map peak, times ``edge_factor`` where the centre lies within
        ``edge_margin_px`` canonical pixels of the image border (so it may be < threshold).
        """
        cfg = self.cfg
        depth_mm = np.asarray(depth_mm)
        canon, cam = canonical_depth(depth_mm, intr, self.config.focal_px,
                                     self._canonical_index(intr, depth_mm.shape))
        x = encode_input(canon, cfg.min_depth_mm, cfg.max_depth_mm)
        peaks = find_peaks(self.runner.heat(x[None]), threshold, cfg.max_peaks)
        found = []
        for p, uvz in zip(peaks, self._lift(canon, peaks)):
            if uvz is None:
                continue
            u, v, z = uvz
            edge = min(u, v, cam.width - 1 - u, cam.height - 1 - v) < cfg.edge_margin_px
            # back to the original camera: canonical pixels map through the same rays
            found.append((p.score * (cfg.edge_factor if edge else 1.0),
                          back_project_np((u, v), z, cam)))
        return sorted(found, key=lambda sc: -sc[0])

    def _canonical_index(self, intr: Intrinsics, shape: tuple[int, ...]
                         ) -> tuple[np.ndarray, Intrinsics]:
        focal = self.config.focal_px
        key = (intr, focal, shape)
        index = self._index.get(key)
        if index is None:
            if len(self._index) >= 8:
                self._index.clear()
            index = self._index[key] = canonical_index(intr, focal, shape)
        return index

    def _lift(self, canon: np.ndarray, peaks: list) -> list[tuple[float, float, float] | None]:
        """Canonical (u, v) and depth (mm) of each peak.

        With a refiner: from the patch around the peak (all peaks in one batch); without
        one, or where the patch holds no depth: the surface depth plus the heat-map's dz.
        """
        cfg = self.cfg
        lifted: list[tuple[float, float, float] | None] = []
        patches, where = [], []
        for k, p in enumerate(peaks):
            u0, v0 = int(round(p.u)), int(round(p.v))
            got = None if not self.has_refiner else patch_at(
                canon, u0, v0, cfg.min_depth_mm, cfg.max_depth_mm, self.refine_border)
            if got is not None:
                patches.append(got[0])
                where.append((k, u0, v0, got[1]))
            z_s = None if got is not None else surface_depth_mm(
                canon, p.u, p.v, self.config, cfg.min_depth_mm, cfg.max_depth_mm)
            lifted.append(None if z_s is None else (p.u, p.v, z_s + p.dz * DZ_SCALE_MM))
        if patches:
            offsets = self.runner.refine(np.stack(patches))
            for (k, u0, v0, z_ref), off in zip(where, offsets):
                lifted[k] = apply_offsets(u0, v0, z_ref, off)
        return lifted

    def choose(self, found: list[tuple[float, np.ndarray]]) -> np.ndarray | None:
        """The centre the rules of the module docstring pick from ``candidates``."""
        cfg = self.cfg
        if cfg.use_tracking and self.prior is not None:
            near = [(float(np.linalg.norm(c - self.prior)), c) for s, c in found
                    if s >= cfg.track_threshold]
            near = [(d, c) for d, c in near if d <= cfg.track_radius_mm]
            if near:
                return min(near, key=lambda dc: dc[0])[1]
        strong = [(s, c) for s, c in found if s >= cfg.threshold]
        if not strong:
            return None
        best = max(s for s, _ in strong)
        strong = [(s, c) for s, c in strong if s >= cfg.relative_threshold * best]
        pool = [c for s, c in strong if s >= cfg.hand_threshold] or [c for _, c in strong]
        return min(pool, key=lambda c: c[2])

    def locate(self, depth_mm: np.ndarray, intr: Intrinsics) -> np.ndarray | None:
        """Hand centre (3,) camera mm from depth (H, W) mm (0/NaN invalid), or None."""
        cfg = self.cfg
        low = min(cfg.threshold, cfg.track_threshold) if self.prior is not None else cfg.threshold
        centre = self.choose(self.candidates(np.asarray(depth_mm), intr, low))
        self.prior = centre if cfg.use_tracking else None
        return centre

    def locate_all(self, depth_mm: np.ndarray, intr: Intrinsics) -> list[HandCandidate]:
        """Every hand (module docstring) in depth (H, W) mm (0/NaN invalid); [] if none."""
        cfg = self.cfg
        if not cfg.use_tracking:
            return hands_without_tracks(self.candidates(np.asarray(depth_mm), intr,
                                                        cfg.threshold), cfg)
        low = min(cfg.threshold, cfg.track_threshold) if self.tracks.tracks else cfg.threshold
        found = self.candidates(np.asarray(depth_mm), intr, low)
        found = [found[k] for k in merge_duplicates(found, cfg.merge_radius_mm)]
        return self.tracks.update(found, strong_flags(found, cfg))


def strong_flags(found: list[tuple[float, np.ndarray]], cfg: DetectorLocaliserConfig
                 ) -> list[bool]:
    """Which detections may be a hand without a track.

    A score of at least ``threshold`` and ``relative_threshold`` x the best of ``found``.
    """
    best = max((s for s, _ in found), default=0.0)
    return [s >= cfg.threshold and s >= cfg.relative_threshold * best for s, _ in found]


def hands_without_tracks(found: list[tuple[float, np.ndarray]], cfg: DetectorLocaliserConfig
                         ) -> list[HandCandidate]:
    """``locate_all``'s answer without tracking, from ``candidates``' detections.

    ``found`` taken at ``cfg.threshold`` or lower: duplicates merged, the strong ones, at
    most ``max_hands``, :func:`~vvhand_core.detector.tracks.ordered`.
    """
    found = [found[k] for k in merge_duplicates(found, cfg.merge_radius_mm)]
    strong = strong_flags(found, cfg)
    return ordered([HandCandidate(found[k][1], float(found[k][0]))
                    for k in select_new(found, strong, cfg.max_hands)])
