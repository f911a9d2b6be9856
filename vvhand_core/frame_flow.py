"""The frame flow of both pipelines, written once over a backend's operations (no torch).

    clean depth -> localise (or given centres) -> crop (T, centre, cube)
      -> view scores: student on the normalised crop (M logits)   [selector "student"]
                      teacher on A2J outputs of all M views       [selector "teacher"]
                      none, the N views of the N-grid             [selector "uniform"]
      -> render the N views to use (all M for "teacher") -> A2J on them in one batch
      -> crop uvd -> view mm -> M_i^-1 -> fusion (softmax over the N selected logits, or
         the unweighted average) -> one HandPoseResult per hand
      [-> the same crop through an alternate pose model (:meth:`FrameFlow.set_alternate`)]
      [-> hand-model fit (``config.fit``, :mod:`vvhand_core.fit.stage`)]

**Alternate model**: a second pipeline (another checkpoint, e.g. the packaged grasp model
of hands holding things; its own config is kept equal to this one's but without the fit,
and with the geometric localiser, which it never runs: it only estimates crops)
estimates every crop too, and the fit starts from both estimates and keeps the one whose
fitted hand model explains the depth better (smaller residual), so a hand either model
gets right is reported. It costs the networks and the fit twice per hand. Without the fit
the results only carry the alternate's estimate (``HandPoseResult.alternate``) for a fit
applied later (``vvhand bench fit``); the joints stay this model's
(:func:`vvhand_core.load.load_pipeline` refuses an alternate model without the fit).

:class:`FrameFlow` holds these steps for :class:`~vvhand_core.pipeline.VirtualViewPipeline`
(torch tensors on a device; networks in torch or onnxruntime) and
:class:`~vvhand_core.lite.pipeline.LitePipeline` (numpy, networks in onnxruntime). What a
backend computes, and on which arrays, is its :class:`~vvhand_core.frame_ops.FrameOps`.
Arrays of a backend support ``.shape``, ``.reshape`` and basic indexing; everything else
goes through the ops.
Shapes: B frames, L crops, M candidate views, N selected views, V views, J joints, S crop
pixels; K = [fx, fy, cx, cy] per crop (L, 4); T (L, 3, 3) maps image pixels to crop
pixels. Selected views are indices into the M-view candidate grid.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vvhand_core.fit.stage import FitStage, check_fit_skeleton
from vvhand_core.frame_ops import Array, Crops
from vvhand_core.hand_pose_result import HandPoseResult, StageTimer
from vvhand_core.hands import HandsResult, finish_hands, hands_result, locate_hands
from vvhand_core.localise import locate_frames


def clean_depth(depth: np.ndarray) -> np.ndarray:
    """Depth (B, H, W) as a writable C-contiguous float32 array, non-finite values 0.

    (A ROS image buffer is read-only; NaN marks missing depth in float images.)
    """
    floating = np.issubdtype(depth.dtype, np.floating)
    depth = depth.astype(np.float32, copy=False)
    if not (depth.flags.writeable and depth.flags.c_contiguous):
        depth = np.array(depth, dtype=np.float32, order="C")
    if floating and not np.isfinite(depth).all():
        depth = np.where(np.isfinite(depth), depth, np.float32(0))
    return depth


def make_fit(config, skeleton) -> FitStage | None:
    """The hand-model fit stage of a FrameConfig (None when ``config.fit`` is None).

    Its sequences restart when the hand jumped (``config.track_jump_mm``). ValueError for
    a skeleton the hand model does not have.
    """
    if config.fit is None:
        return None
    check_fit_skeleton(skeleton)
    return FitStage(config.fit, config.track_jump_mm)


def _check_depth(depth_mm: np.ndarray, ndim: int, intrinsics) -> np.ndarray:
    depth = np.asarray(depth_mm)
    if depth.ndim != ndim:
        raise ValueError(f"depth_mm must be {'(H, W)' if ndim == 2 else '(B, H, W)'}, got "
                         f"shape {depth.shape}")
    h, w = depth.shape[-2:]
    if (w, h) != (intrinsics.width, intrinsics.height):
        raise ValueError(f"depth image is {w}x{h}, intrinsics are for "
                         f"{intrinsics.width}x{intrinsics.height}")
    return depth


class FrameFlow:
    """``run``, ``run_batch`` and ``run_hands`` of a pipeline (module doc).

    A pipeline sets ``config`` (a :class:`~vvhand_core.frame_config.FrameConfig`),
    ``skeleton``, ``num_candidates``, ``ops`` (its ``FrameOps``), ``_localiser``,
    ``_located`` (:class:`~vvhand_core.hands.LocatedHand`) and ``_fit`` (a FitStage or
    None); :meth:`_locator` returns the localiser to run (made on demand where a pipeline
    makes it late) and :meth:`_camera` the intrinsics the localiser and fit get.
    """

    _alternate: FrameFlow | None = None

    def _locator(self):
        return self._localiser

    @property
    def alternate(self) -> FrameFlow | None:
        """The alternate pose model's pipeline (module doc), or None."""
        return self._alternate

    def set_alternate(self, other: FrameFlow | None) -> None:
        """Estimate every crop with ``other``'s networks too; the fit picks (module doc).

        ``other``: a pipeline of the same kind, skeleton and candidate grid (None: off).
        Its config becomes this one's without the fit (``_alternate_changes``).
        ValueError for a pipeline that cannot stand in.
        """
        if other is None:
            self._alternate = None
            return
        if other is self or type(other) is not type(self):
            raise ValueError(f"the alternate model must be another {type(self).__name__}, "
                             f"got {type(other).__name__}")
        if (other.skeleton.name, other.num_candidates) != (self.skeleton.name,
                                                          self.num_candidates):
            raise ValueError(f"the alternate model predicts {other.skeleton.name!r} with M = "
                             f"{other.num_candidates}; this one {self.skeleton.name!r} with "
                             f"M = {self.num_candidates}")
        other.configure(**self._alternate_changes(self.config))
        self._alternate = other

    @staticmethod
    def _alternate_changes(config) -> dict:
        """The alternate pipeline's config fields: ``config``'s, without the fit.

        Its localiser is the geometric one (made lazily, no weights): the alternate only
        estimates the crops it is given, so it never locates (a detector there would be
        loaded, and rebuilt on every change of the depth range, for nothing).
        """
        skip = {"fit", "num_threads", "localiser", "detector_weights"}
        return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                if f.name not in skip} | {"fit": None, "localiser": "geometric"}

    def configure(self, **changes: object) -> None:
        """Change config fields between calls (validated; ValueError names the problem).

        The alternate model (if any) follows. Turning the fit off while an alternate model
        is set is refused (its estimates would be made and never used).
        """
        if (self._alternate is not None and self.config.fit is not None
                and "fit" in changes and changes["fit"] is None):
            raise ValueError("the alternate model needs the hand-model fit (its residual "
                             "chooses between the models): the fit stays on while "
                             "alternate_model is set")
        old = self.config
        self._configure(**changes)
        if self._alternate is not None:
            try:
                self._alternate.configure(**self._alternate_changes(self.config))
            except ValueError as exc:  # refused as a whole: this pipeline goes back too
                self._configure(**{f.name: getattr(old, f.name)
                                   for f in dataclasses.fields(old) if f.name != "num_threads"})
                raise ValueError(f"the alternate model: {exc}") from exc

    def _camera(self, intrinsics):
        return intrinsics

    def reset_tracking(self) -> None:
        """Forget the previous frame's hand centre (and hand-model fit)."""
        if self._localiser is not None:
            self._localiser.reset()
        self._located.reset()
        if self._fit is not None:
            self._fit.reset()

    def run(self, depth_mm: np.ndarray, intrinsics, centre_mm: np.ndarray | None = None
            ) -> HandPoseResult:
        """One frame: depth (H, W) uint16 or float mm (0/NaN invalid) -> HandPoseResult.

        ``centre_mm`` (3,) skips localisation (e.g. an oracle centre). ValueError for a
        depth image of another shape than (H, W) or than the intrinsics' size.
        """
        depth = np.asarray(depth_mm)
        if depth.ndim != 2:
            raise ValueError(f"depth_mm must be (H, W), got shape {depth.shape}")
        centres = None if centre_mm is None else np.asarray(centre_mm, np.float64).reshape(1, 3)
        return self.run_batch(depth[None], intrinsics, centres)[0]

    def run_batch(self, depth_mm: np.ndarray, intrinsics,
                  centres_mm: np.ndarray | None = None) -> list[HandPoseResult]:
        """B frames of one camera: depth (B, H, W) mm -> B results (frames in order).

        ``centres_mm`` (B, 3) mm skips localisation. With tracking on, frames are treated
        as consecutive (frame i's centre is the prior of frame i + 1). Timings are the
        batch's divided by B.
        """
        depth = _check_depth(depth_mm, 3, intrinsics)
        b = depth.shape[0]
        if centres_mm is not None and np.shape(centres_mm) != (b, 3):
            raise ValueError(f"centres_mm must be ({b}, 3), got {np.shape(centres_mm)}")
        timer = self.ops.timer()
        with self.ops.inference():
            results = self._run(clean_depth(depth), self._camera(intrinsics), centres_mm,
                                timer)
        per_frame = {k: v / b for k, v in timer.finish().items()}
        for r in results:
            r.timings_ms = dict(per_frame)
        return results

    def run_hands(self, depth_mm: np.ndarray, intrinsics) -> HandsResult:
        """Every hand of one frame, depth (H, W) mm -> HandsResult (``vvhand_core.hands``).

        Up to ``config.max_hands`` hands, estimated in one batch; with max_hands 1 exactly
        :meth:`run`'s answer.
        """
        if self.config.max_hands == 1:
            return HandsResult.of_one(self.run(depth_mm, intrinsics))
        depth = _check_depth(depth_mm, 2, intrinsics)
        timer = self.ops.timer()
        with self.ops.inference():
            depth = clean_depth(depth[None])
            intr = self._camera(intrinsics)
            found = locate_hands(self._locator(), depth[0], intr, self._located)
            timer.lap("localise")
            results = (self._estimate_at(depth, [0] * len(found),
                                         [c.centre_mm for c in found], intr, timer)
                       if found else [])
            hands, dropped = finish_hands(results, [c.track_id for c in found], self._fit,
                                          depth[0], intr, self.config.track, self._invalid,
                                          self._localiser, self._located)
            if self._fit is not None:
                timer.lap("fit")
        return hands_result(hands, dropped, self._invalid, timer.finish(), self._located)

    def _invalid(self, message: str, centre: np.ndarray | None = None) -> HandPoseResult:
        return HandPoseResult.invalid(message, self.skeleton.num_joints, self.num_candidates,
                                      self.config.cube_mm, centre)

    def _run(self, depth: np.ndarray, intr, centres_in: np.ndarray | None,
             timer: StageTimer) -> list[HandPoseResult]:
        """Clean depth (B, H, W) -> one result per frame (localised, estimated, fitted)."""
        b = depth.shape[0]
        localiser = self._locator() if centres_in is None else None  # given: not needed
        centres, messages = locate_frames(localiser, depth, intr, centres_in)
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
                     intr, timer: StageTimer) -> list[HandPoseResult]:
        """One estimate per centre (3,) mm, cropped from depth[frames[n]]: one batch."""
        cfg, ops, n = self.config, self.ops, len(frames)
        crops = ops.crop(depth, frames, centres, intr, cfg.cube_mm, cfg.mirror)
        timer.lap("crop")
        joints, views, idx, weights, logits, score = self._select_and_fuse(crops, timer)
        passes = None
        if cfg.mirror:
            joints, views, idx, weights, passes = ops.merge_mirror(joints, views, idx, weights)
            logits, score, passes = logits[:n], score[:n], ops.numpy(passes)
        joints, views, idx, weights, logits, score = (
            ops.numpy(x) for x in (joints, views, idx, weights, logits, score))
        timer.lap("fusion")
        results = []
        for i in range(n):
            if not crops.has_depth[i]:
                results.append(self._invalid("empty crop: no depth inside the hand cube",
                                             centres[i]))
                continue
            results.append(HandPoseResult.estimate(
                centres[i], cfg.cube_mm, self.num_candidates, joints[i], views[i], idx[i],
                weights[i], logits[i], score[i], self.skeleton, cfg.side))
            if passes is not None:
                results[-1].passes_joints_mm = passes[i]
        if self._alternate is not None:
            others = self._alternate._estimate_at(depth, frames, centres, intr, timer)
            for r, other in zip(results, others, strict=True):
                r.alternate = other if r.valid and other.valid else None
        return results

    def _a2j_views(self, views_mm: Array, zc: Array, features: bool = False
                   ) -> tuple[Array, Array | None]:
        """Rendered views (L, V, S, S) mm -> uvd (L, V, J, 3) and the teacher's input."""
        n, v, s, _ = views_mm.shape
        x = self.ops.normalise(views_mm, zc, self.config.cube_mm).reshape(n * v, 1, s, s)
        uvd, feats = self.ops.a2j(x, features)
        return uvd.reshape(n, v, *uvd.shape[1:]), feats

    def _select_and_fuse(self, crops: Crops, timer: StageTimer):
        """Crops -> views chosen, rendered, estimated and fused (backend arrays).

        Returns the fused joints (L, J, 3) mm, the N views' joints (L, N, J, 3) mm in the
        camera frame, their indices (L, N), weights (L, N), all M logits (L, M) and the
        selection score (L,).
        """
        cfg, ops, m, n_sel = self.config, self.ops, self.num_candidates, self.config.num_views
        crop, t, k, centre = crops.depth_mm, crops.t, crops.k, crops.centre_mm
        nl, zc = crop.shape[0], centre[:, 2]
        mats_all = ops.view_matrices(centre)  # (L, M, 4, 4)
        if cfg.selector == "student":
            logits = ops.student(ops.normalise(crop, zc, cfg.cube_mm)[:, None])  # (L, M)
            idx = ops.select_top_n(logits, n_sel)
            timer.lap("student")
            mats = ops.gather_views(mats_all, idx)
            views = ops.render(crops, mats)
            timer.lap("render")
            uvd, _ = self._a2j_views(views, zc)
            timer.lap("a2j")
            weights = ops.fusion_weights(ops.gather_views(logits, idx), cfg.fusion)
            score = ops.selection_score(logits, idx)
        elif cfg.selector == "teacher":
            views = ops.render(crops, mats_all)
            timer.lap("render")
            uvd_all, feats = self._a2j_views(views, zc, features=True)
            timer.lap("a2j")
            logits = ops.teacher(feats, m)
            idx = ops.select_top_n(logits, n_sel)
            timer.lap("student")
            mats, uvd = ops.gather_views(mats_all, idx), ops.gather_views(uvd_all, idx)
            weights = ops.fusion_weights(ops.gather_views(logits, idx), cfg.fusion)
            score = ops.selection_score(logits, idx)
        else:  # uniform
            idx = ops.uniform_indices(n_sel, nl)
            mats = ops.gather_views(mats_all, idx)
            views = ops.render(crops, mats)
            timer.lap("render")
            uvd, feats = self._a2j_views(views, zc, features=cfg.fusion == "confidence")
            timer.lap("a2j")
            if cfg.fusion == "confidence":
                weights = ops.fusion_weights(ops.teacher(feats, n_sel), "confidence")
                timer.lap("student")
            else:
                weights = ops.fusion_weights(ops.zeros((nl, n_sel)), "average")
            logits = ops.zeros((nl, m))
            score = ops.ones((nl,))
        joints_view = ops.crop_uvd_to_camera_mm(uvd, t, k, zc, cfg.cube_mm)
        views_cam = ops.to_camera_frame(joints_view, ops.invert_rigid(mats))  # (L, N, J, 3)
        joints = ops.fuse_camera_joints(views_cam, weights)  # (L, J, 3) mm, Eq. 2
        return joints, views_cam, idx, weights, logits, score


__all__ = ["FrameFlow", "clean_depth", "make_fit"]
