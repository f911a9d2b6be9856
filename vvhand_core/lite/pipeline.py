"""LitePipeline: depth image -> hand joints with numpy, scipy and onnxruntime (no torch).

The frame flow of :class:`vvhand_core.frame_flow.FrameFlow` (the torch pipeline's, with
backend "onnxruntime") over :class:`NumpyOps`: the numpy twins of :mod:`vvhand_core.lite`
(crop, views, z-buffer renderer, mapping back, fusion) and the onnxruntime sessions of
:class:`vvhand_core.onnx_model.OnnxNetworks` (a directory written by ``vvhand
export-onnx``). For inference: selectors "student", "teacher" and "uniform", both fusions,
the hand-model fit (``config.fit``; numpy and scipy) and ``run_hands`` work as in the
torch pipeline; the mirror pass does not exist here. The learned detector runs from its
ONNX export (``vvhand_core.detector.shipped``: the packaged detector ships it). Results
are :class:`~vvhand_core.hand_pose_result.HandPoseResult`, the torch pipeline's type.

Intrinsics are anything with ``fx, fy, cx, cy, width, height`` (e.g.
:class:`vvhand_core.camera.Intrinsics`, which they are turned into: the detector caches
per camera). The localiser (:func:`vvhand_core.localise.make_localiser`): the detector is
loaded with the pipeline (a broken export fails there), the geometric one is made when a
frame is first localised; given hand centres skip it.
"""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_core.frame_config import FrameConfig, check_frame_config
from vvhand_core.frame_flow import FrameFlow, make_fit
from vvhand_core.frame_ops import Crops, FrameOps
from vvhand_core.hand_pose_result import HandPoseResult, StageTimer
from vvhand_core.hands import LocatedHand
from vvhand_core.lite import fusion as fz
from vvhand_core.lite import geometry as geo
from vvhand_core.lite.config import LiteConfig
from vvhand_core.lite.render import render_views
from vvhand_core.localise import make_localiser
from vvhand_core.onnx_model import OnnxNetworks


class NumpyOps(FrameOps):
    """The frame flow's operations on numpy float32 arrays (FrameOps' contracts).

    onnx: the student, A2J and teacher sessions (their M candidates and crop size).
    """

    select_top_n = staticmethod(fz.select_top_n)
    gather_views = staticmethod(fz.gather_views)
    fusion_weights = staticmethod(fz.fusion_weights)
    selection_score = staticmethod(fz.selection_score)
    to_camera_frame = staticmethod(fz.to_camera_frame)
    fuse_camera_joints = staticmethod(fz.fuse_camera_joints)
    invert_rigid = staticmethod(geo.invert_rigid)
    crop_uvd_to_camera_mm = staticmethod(geo.crop_uvd_to_camera_mm)
    normalise = staticmethod(geo.normalise)

    def __init__(self, onnx: OnnxNetworks) -> None:
        self.onnx = onnx
        self._grid_deg = geo.view_grid(onnx.num_candidates)  # (M, 2)

    def inference(self):
        return nullcontext()

    def timer(self) -> StageTimer:
        return StageTimer()

    def crop(self, depth_mm: np.ndarray, frames: list[int], centres_mm: list[np.ndarray],
             intrinsics, cube_mm: float, mirror: bool) -> Crops:
        if mirror:
            raise ValueError("the mirror pass needs torch (the lite pipeline has none)")
        n, intr = len(frames), intrinsics
        k = np.tile(np.array([intr.fx, intr.fy, intr.cx, intr.cy], np.float32), (n, 1))
        centre = np.stack(centres_mm).astype(np.float32)  # (L, 3) mm
        crop, t = geo.crop_depth(depth_mm[frames], centre, k, cube_mm, self.onnx.crop_size)
        return Crops(crop, t, k, centre, (crop > 0).reshape(n, -1).any(1))

    def view_matrices(self, centre_mm: np.ndarray) -> np.ndarray:
        return geo.view_matrices(self._grid_deg, centre_mm)

    def uniform_indices(self, n: int, num_crops: int) -> np.ndarray:
        return np.broadcast_to(geo.grid_subset_indices(n, self.onnx.num_candidates),
                               (num_crops, n))

    def student(self, crop_in: np.ndarray) -> np.ndarray:
        return self.onnx.student(crop_in)

    def render(self, crops: Crops, view_mats: np.ndarray) -> np.ndarray:
        return render_views(crops.depth_mm, crops.t, crops.k, view_mats)

    def a2j(self, views_in: np.ndarray, features: bool):
        return self.onnx.a2j(views_in, features)

    def teacher(self, features: np.ndarray, num_views: int) -> np.ndarray:
        return self.onnx.teacher(features.reshape(-1, num_views, *features.shape[1:]))

    def zeros(self, shape) -> np.ndarray:
        return np.zeros(shape, np.float32)

    def ones(self, shape) -> np.ndarray:
        return np.ones(shape, np.float32)

    def numpy(self, x: np.ndarray) -> np.ndarray:
        return x


class LitePipeline(FrameFlow):
    """Depth image -> hand joints, torch-free (see module doc). Build with :meth:`from_onnx`."""

    def __init__(self, onnx: OnnxNetworks, config: LiteConfig | None = None) -> None:
        self.onnx, self.skeleton = onnx, onnx.skeleton
        self.num_candidates, self.crop_size = onnx.num_candidates, onnx.crop_size
        self.config = config or LiteConfig(cube_mm=onnx.cube_mm)
        check_frame_config(self.config, self.num_candidates)
        self.ops = NumpyOps(onnx)
        self._localiser = None
        self._located = LocatedHand()  # run_hands: the hand locate() follows
        self._fit = make_fit(self.config, self.skeleton)
        if self.config.localiser == "detector":
            self._locator()  # load it now: a broken detector fails here, not later

    @classmethod
    def from_onnx(cls, path: str | Path, config: object | None = None) -> LitePipeline:
        """Load a ``vvhand export-onnx`` directory (OnnxModelError if it is bad).

        config: a :class:`LiteConfig`, a ``PipelineConfig`` (its fields are taken by
        name) or None (the cube edge the networks were trained with).
        """
        if config is not None and not isinstance(config, LiteConfig):
            config = LiteConfig.from_pipeline_config(config)
        onnx = OnnxNetworks.load(path, config.num_threads if config else 0)
        return cls(onnx, config)

    def _configure(self, **changes: object) -> None:
        """Change config fields between calls (validated; ValueError names the problem).

        ``num_threads`` is fixed when the sessions are made (:meth:`from_onnx`).
        """
        if changes.pop("mirror", False):
            raise ValueError("the mirror pass needs torch (the lite pipeline has none)")
        names = {f.name for f in dataclasses.fields(FrameConfig)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown lite pipeline option(s) {unknown}; known: {sorted(names)}")
        cfg = dataclasses.replace(self.config, **changes)
        check_frame_config(cfg, self.num_candidates)
        localiser = ("min_depth_mm", "max_depth_mm", "cube_mm", "track", "localiser",
                     "detector_weights", "max_hands")
        fit = (self._fit if (cfg.fit, cfg.track_jump_mm) == (self.config.fit,
                                                              self.config.track_jump_mm)
               else make_fit(cfg, self.skeleton))
        if any(getattr(cfg, k) != getattr(self.config, k) for k in localiser):
            self._localiser = None
            self._located.reset()
        self.config, self._fit = cfg, fit

    def _locator(self):
        """The localiser of the config, made on first use (kept until the config changes)."""
        if self._localiser is None:
            cfg = self.config
            self._localiser = make_localiser(cfg.localiser, cfg.min_depth_mm, cfg.max_depth_mm,
                                             cfg.cube_mm, cfg.track, cfg.detector_weights,
                                             cfg.num_threads, cfg.max_hands)
        return self._localiser

    def _camera(self, intrinsics: object):
        return _hashable(intrinsics)


def _hashable(intr: object) -> Intrinsics:
    """``intr`` as :class:`~vvhand_core.camera.Intrinsics` (the detector caches per camera)."""
    if isinstance(intr, Intrinsics):
        return intr
    return Intrinsics(float(intr.fx), float(intr.fy), float(intr.cx), float(intr.cy),
                      int(intr.width), int(intr.height))


# LiteConfig and HandPoseResult: importable from here, as before the frame flow moved out
__all__ = ["HandPoseResult", "LiteConfig", "LitePipeline", "NumpyOps"]
