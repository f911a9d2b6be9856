"""LitePipeline: depth image -> hand joints with numpy, scipy and onnxruntime (no torch).

The same steps as :class:`vvhand_core.pipeline.VirtualViewPipeline` with backend
"onnxruntime", for inference:

    localise (learned detector: numpy + onnxruntime; or geometric: numpy/scipy)
      -> crop + normalise -> student (onnxruntime)
      -> render the top-N views (numpy z-buffer) -> A2J (onnxruntime) -> crop uvd
      -> camera mm -> M_i^-1 -> softmax fusion -> joint spread, side
      [-> hand-model fit (``config.fit``; :mod:`vvhand_core.fit`, numpy and scipy)]

with the numpy twins of :mod:`vvhand_core.lite` and the sessions of
:class:`vvhand_core.onnx_model.OnnxNetworks` (a directory written by ``vvhand
export-onnx``). Selectors "student", "teacher" and "uniform" and both fusions work as in
the torch pipeline, the hand-model fit too (the same stage, ``fit.stage.FitStage``); the
mirror pass does not exist here. The learned detector runs
from its ONNX export (``vvhand_core.detector.shipped``: the packaged detector ships it).
Results are :class:`~vvhand_core.lite.result.HandPoseResult`, the torch pipeline's type.

Intrinsics are anything with ``fx, fy, cx, cy, width, height`` (e.g.
:class:`vvhand_core.camera.Intrinsics`; the detector caches per camera, so it must be
hashable). The localiser (:func:`vvhand_core.localise.make_localiser`): the detector is
loaded with the pipeline (a broken export fails there), the geometric one is made when a
frame is first localised; given hand centres skip it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from vvhand_core.fit.stage import make_fit_stage
from vvhand_core.hands import (
    HandsResult,
    LocatedHand,
    finish_hands,
    hands_result,
    locate_hands,
)
from vvhand_core.lite import fusion as fz
from vvhand_core.lite import geometry as geo
from vvhand_core.lite.config import SELECTORS, FrameConfig, LiteConfig, check_lite_config
from vvhand_core.lite.render import render_views
from vvhand_core.lite.result import HandPoseResult, StageTimer
from vvhand_core.onnx_model import OnnxNetworks


class LitePipeline:
    """Depth image -> hand joints, torch-free (see module doc). Build with :meth:`from_onnx`."""

    def __init__(self, onnx: OnnxNetworks, config: LiteConfig | None = None) -> None:
        self.onnx, self.skeleton = onnx, onnx.skeleton
        self.num_candidates, self.crop_size = onnx.num_candidates, onnx.crop_size
        self.config = config or LiteConfig(cube_mm=onnx.cube_mm)
        check_lite_config(self.config, self.num_candidates)
        self._grid_deg = geo.view_grid(self.num_candidates)  # (M, 2)
        self._localiser = None
        self._located = LocatedHand()  # run_hands: the hand locate() follows
        self._fit = make_fit_stage(self.config.fit, self.skeleton)
        if self.config.localiser == "detector":
            self._make_localiser()  # load it now: a broken detector fails here, not later

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

    def configure(self, **changes: object) -> None:
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
        check_lite_config(cfg, self.num_candidates)
        localiser = ("min_depth_mm", "max_depth_mm", "cube_mm", "track", "localiser",
                     "detector_weights", "max_hands")
        fit = self._fit if cfg.fit == self.config.fit else make_fit_stage(cfg.fit, self.skeleton)
        if any(getattr(cfg, k) != getattr(self.config, k) for k in localiser):
            self._localiser = None
            self._located.reset()
        self.config, self._fit = cfg, fit

    def _make_localiser(self):
        """The localiser of the config (made on first use; kept until the config changes)."""
        if self._localiser is None:
            from vvhand_core.localise import make_localiser

            cfg = self.config
            self._localiser = make_localiser(cfg.localiser, cfg.min_depth_mm, cfg.max_depth_mm,
                                             cfg.cube_mm, cfg.track, cfg.detector_weights,
                                             cfg.num_threads, cfg.max_hands)
        return self._localiser

    def reset_tracking(self) -> None:
        """Forget the previous frame's hand centre (and hand-model fit)."""
        if self._localiser is not None:
            self._localiser.reset()
        self._located.reset()
        if self._fit is not None:
            self._fit.reset()

    # ------------------------------------------------------------------ running
    def run(self, depth_mm: np.ndarray, intrinsics: object,
            centre_mm: np.ndarray | None = None) -> HandPoseResult:
        """One frame: depth (H, W) uint16 or float mm (0/NaN invalid) -> HandPoseResult."""
        depth = np.asarray(depth_mm)
        if depth.ndim != 2:
            raise ValueError(f"depth_mm must be (H, W), got shape {depth.shape}")
        centres = None if centre_mm is None else np.asarray(centre_mm, np.float64).reshape(1, 3)
        return self.run_batch(depth[None], intrinsics, centres)[0]

    def run_batch(self, depth_mm: np.ndarray, intrinsics: object,
                  centres_mm: np.ndarray | None = None) -> list[HandPoseResult]:
        """B frames of one camera: depth (B, H, W) -> B results; ``centres_mm`` (B, 3) mm."""
        depth = np.asarray(depth_mm)
        if depth.ndim != 3:
            raise ValueError(f"depth_mm must be (B, H, W), got shape {depth.shape}")
        b, h, w = depth.shape
        if (w, h) != (intrinsics.width, intrinsics.height):
            raise ValueError(f"depth image is {w}x{h}, intrinsics are for "
                             f"{intrinsics.width}x{intrinsics.height}")
        if centres_mm is not None and np.shape(centres_mm) != (b, 3):
            raise ValueError(f"centres_mm must be ({b}, 3), got {np.shape(centres_mm)}")
        timer = StageTimer()
        results = self._run(depth, intrinsics, centres_mm, timer)
        per_frame = {k: v / b for k, v in timer.finish().items()}
        for r in results:
            r.timings_ms = dict(per_frame)
        return results

    def run_hands(self, depth_mm: np.ndarray, intrinsics: object) -> HandsResult:
        """Every hand of one frame, depth (H, W) mm -> HandsResult (``vvhand_core.hands``).

        Up to ``config.max_hands`` hands, estimated in one batch; with max_hands 1 exactly
        :meth:`run`'s answer.
        """
        if self.config.max_hands == 1:
            return HandsResult.of_one(self.run(depth_mm, intrinsics))
        depth = np.asarray(depth_mm)
        if depth.ndim != 2:
            raise ValueError(f"depth_mm must be (H, W), got shape {depth.shape}")
        h, w = depth.shape
        if (w, h) != (intrinsics.width, intrinsics.height):
            raise ValueError(f"depth image is {w}x{h}, intrinsics are for "
                             f"{intrinsics.width}x{intrinsics.height}")
        timer = StageTimer()
        depth = _clean(depth[None])
        intr = _hashable(intrinsics)
        found = locate_hands(self._make_localiser(), depth[0], intr, self._located)
        timer.lap("localise")
        results = (self._estimate_at(depth, [0] * len(found), [c.centre_mm for c in found],
                                     intr, timer) if found else [])
        hands, dropped = finish_hands(results, [c.track_id for c in found], self._fit,
                                      depth[0], intr, self.config.track, self._invalid,
                                      self._localiser, self._located)
        if self._fit is not None:
            timer.lap("fit")
        return hands_result(hands, dropped, self._invalid, timer.finish(), self._located)

    def _invalid(self, message: str, centre: np.ndarray | None = None) -> HandPoseResult:
        return HandPoseResult.invalid(message, self.skeleton.num_joints, self.num_candidates,
                                      self.config.cube_mm, centre)

    def _locate(self, depth: np.ndarray, intr: object, centres_in: np.ndarray | None
                ) -> tuple[list[np.ndarray | None], list[str]]:
        """As ``localise.locate_frames``; the localiser is made (imported) on first use."""
        if centres_in is None:
            from vvhand_core.localise import locate_frames

            return locate_frames(self._make_localiser(), depth, _hashable(intr))
        from vvhand_core.localise import locate_frames

        return locate_frames(None, depth, intr, centres_in)  # given centres: no localiser

    def _run(self, depth: np.ndarray, intr: object, centres_in: np.ndarray | None,
             timer: StageTimer) -> list[HandPoseResult]:
        b, depth = depth.shape[0], _clean(depth)
        centres, messages = self._locate(depth, intr, centres_in)
        timer.lap("localise")
        live = [i for i in range(b) if centres[i] is not None]
        results = [self._invalid(msg) for msg in messages]
        if not live:
            return results
        estimates = self._estimate_at(depth, live, [centres[i] for i in live], intr, timer)
        for i, r in zip(live, estimates):
            results[i] = r
        if self._fit is not None:
            self._fit.apply_all(results, depth, intr, self.config.track, self._invalid,
                                self._localiser)
            timer.lap("fit")
        return results

    def _estimate_at(self, depth: np.ndarray, frames: list[int], centres: list[np.ndarray],
                     intr: object, timer: StageTimer) -> list[HandPoseResult]:
        """One estimate per centre (3,) mm, cropped from depth[frames[n]]: one batch."""
        cfg, live = self.config, frames
        # -------- crop + normalise
        k = np.tile(np.array([intr.fx, intr.fy, intr.cx, intr.cy], np.float32), (len(live), 1))
        centre = np.stack(centres).astype(np.float32)  # (L, 3) mm
        crop_mm, t = geo.crop_depth(depth[live], centre, k, cfg.cube_mm, self.crop_size)
        has_fg = (crop_mm > 0).reshape(len(live), -1).any(1)
        timer.lap("crop")
        joints, views, idx, weights, logits, score = self._estimate(crop_mm, t, k, centre,
                                                                    timer)
        timer.lap("fusion")
        return [self._invalid("empty crop: no depth inside the hand cube", centres[n])
                if not has_fg[n] else HandPoseResult.estimate(
                    centres[n], cfg.cube_mm, self.num_candidates, joints[n], views[n], idx[n],
                    weights[n], logits[n], score[n], self.skeleton, cfg.side)
                for n in range(len(live))]

    def _a2j(self, views_mm: np.ndarray, zc: np.ndarray, features: bool = False
             ) -> tuple[np.ndarray, np.ndarray | None]:
        """Rendered views (L, V, S, S) mm -> uvd (L, V, J, 3), teacher input (L, V, ...)."""
        n, v, s, _ = views_mm.shape
        x = geo.normalise(views_mm, zc, self.config.cube_mm).reshape(n * v, 1, s, s)
        uvd, feats = self.onnx.a2j(x, features)
        feats = None if feats is None else feats.reshape(n, v, *feats.shape[1:])
        return uvd.reshape(n, v, *uvd.shape[1:]), feats

    def _estimate(self, crop_mm: np.ndarray, t: np.ndarray, k: np.ndarray,
                  centre: np.ndarray, timer: StageTimer):
        cfg, m, n_sel = self.config, self.num_candidates, self.config.num_views
        nl, zc = crop_mm.shape[0], centre[:, 2]
        mats_all = geo.view_matrices(self._grid_deg, centre)  # (L, M, 4, 4)
        if cfg.selector == "student":
            crop_in = geo.normalise(crop_mm, zc, cfg.cube_mm)[:, None]  # (L, 1, S, S)
            logits = self.onnx.student(crop_in)  # (L, M)
            idx = fz.select_top_n(logits, n_sel)
            timer.lap("student")
            mats = fz.gather_views(mats_all, idx)
            views = render_views(crop_mm, t, k, mats)
            timer.lap("render")
            uvd, _ = self._a2j(views, zc)
            timer.lap("a2j")
            weights = fz.fusion_weights(fz.gather_views(logits, idx), cfg.fusion)
            score = fz.selection_score(logits, idx)
        elif cfg.selector == "teacher":
            views = render_views(crop_mm, t, k, mats_all)
            timer.lap("render")
            uvd_all, feats = self._a2j(views, zc, features=True)
            timer.lap("a2j")
            logits = self.onnx.teacher(feats)
            idx = fz.select_top_n(logits, n_sel)
            timer.lap("student")
            mats, uvd = fz.gather_views(mats_all, idx), fz.gather_views(uvd_all, idx)
            weights = fz.fusion_weights(fz.gather_views(logits, idx), cfg.fusion)
            score = fz.selection_score(logits, idx)
        else:  # uniform
            idx = np.broadcast_to(geo.grid_subset_indices(n_sel, m), (nl, n_sel))
            mats = fz.gather_views(mats_all, idx)
            views = render_views(crop_mm, t, k, mats)
            timer.lap("render")
            uvd, feats = self._a2j(views, zc, features=cfg.fusion == "confidence")
            timer.lap("a2j")
            if cfg.fusion == "confidence":
                weights = fz.fusion_weights(self.onnx.teacher(feats), "confidence")
                timer.lap("student")
            else:
                weights = fz.fusion_weights(np.zeros((nl, n_sel), np.float32), "average")
            logits = np.zeros((nl, m), np.float32)
            score = np.ones(nl, np.float32)
        joints_view = geo.crop_uvd_to_camera_mm(uvd, t, k, zc, cfg.cube_mm)
        views_cam = fz.to_camera_frame(joints_view, geo.invert_rigid(mats))  # (L, N, J, 3)
        joints = fz.fuse_camera_joints(views_cam, weights)  # (L, J, 3) mm, Eq. 2
        return joints, views_cam, idx, weights, logits, score


def _clean(depth: np.ndarray) -> np.ndarray:
    """Depth (B, H, W) as a C-contiguous float32 copy, non-finite values 0."""
    floating = np.issubdtype(depth.dtype, np.floating)
    depth = np.array(depth, dtype=np.float32, order="C")
    if floating and not np.isfinite(depth).all():
        depth = np.where(np.isfinite(depth), depth, np.float32(0))
    return depth


def _hashable(intr: object):
    """``intr`` as :class:`~vvhand_core.camera.Intrinsics` (the detector caches per camera)."""
    from vvhand_core.camera import Intrinsics

    if isinstance(intr, Intrinsics):
        return intr
    return Intrinsics(float(intr.fx), float(intr.fy), float(intr.cx), float(intr.cy),
                      int(intr.width), int(intr.height))


__all__ = ["LiteConfig", "LitePipeline", "SELECTORS", "check_lite_config"]
