"""VirtualViewPipeline: one depth image (+ intrinsics) -> 3D hand joints in camera mm.

    localise -> crop (T, centre, cube) -> normalise
      -> view scores: student on the crop (M logits)          [selector "student"]
                      teacher on A2J outputs of all M views   [selector "teacher"]
                      none, the N views of the N-grid         [selector "uniform"]
      -> render the N views to use (all M for "teacher") -> A2J on them in one batch
      -> crop uvd -> view mm -> M_i^-1 -> fusion (softmax over the N selected logits,
         or the unweighted average)

The node, rosbag replay, ``vvhand eval``, ``vvhand bench`` and the demo all call this
object; nothing else re-implements a step. ``run`` / ``run_batch`` estimate one hand per
frame (the localiser's nearest confident hand); ``run_hands`` every hand of a frame, up to
``config.max_hands``, in one batch (:mod:`vvhand_core.hands`). Selected views are always
indices into the M-view candidate grid (uniform N-grids are subsets of it). Networks run under
``torch.inference_mode``; numpy is only touched at the input and output.

Backends (``PipelineConfig.backend``, :mod:`vvhand_core.backends`): "torch" runs the
torch modules; "onnxruntime" runs the same networks as ONNX models in onnxruntime, either
exported in memory from the torch modules (first needed) or loaded from a directory
written by ``vvhand export-onnx`` (:meth:`VirtualViewPipeline.from_onnx`, also picked by
:meth:`~VirtualViewPipeline.from_checkpoint` for a directory). Localisation, crop,
rendering, mapping back and fusion are the same torch code for both.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from vvhand_core.backends import Networks, check_backend, load_onnx_dir, make_networks
from vvhand_core.camera import Intrinsics, with_mirror_t
from vvhand_core.checkpoint import load_checkpoint, resolve_device
from vvhand_core.crop import CropConfig, crop_depth, normalise
from vvhand_core.fit.stage import FitStage, make_fit_stage
from vvhand_core.fusion import (
    fuse_camera_joints,
    fusion_weights,
    gather_views,
    merge_mirror_pass,
    select_top_n,
    selection_score,
    to_camera_frame,
)
from vvhand_core.hands import (
    HandsResult,
    LocatedHand,
    finish_hands,
    hands_result,
    locate_hands,
)
from vvhand_core.jointspace import crop_uvd_to_camera_mm
from vvhand_core.localise import locate_frames, make_localiser
from vvhand_core.models import A2J, Student, Teacher, teacher_features
from vvhand_core.onnx_model import OnnxNetworks
from vvhand_core.pipeline_config import (
    SELECTORS,
    STAGES,
    HandPoseResult,
    PipelineConfig,
    StageTimer,
    check_config,
    check_networks,
    clean_depth,
)
from vvhand_core.render import make_renderer
from vvhand_core.skeletons import Skeleton
from vvhand_core.views import (
    grid_subset_indices,
    invert_rigid,
    view_grid,
    view_matrices,
)

__all__ = ["HandPoseResult", "HandsResult", "PipelineConfig", "SELECTORS", "STAGES",
           "VirtualViewPipeline"]

class VirtualViewPipeline:
    """Depth image -> hand joints by virtual-view selection and fusion (see module doc).

    a2j, student, teacher: the torch networks (student or teacher may be None when no
    mode that needs them is used; all None with ``onnx``); skeleton: the joint set A2J
    predicts; num_candidates: M, the size of the candidate grid the student scores;
    onnx: the networks as onnxruntime sessions (built from the torch networks when the
    backend "onnxruntime" is first used, if not given). The torch networks are moved to
    the configured device and put in eval mode (a trainer validating through the pipeline
    must call ``.train()`` again afterwards).
    """

    def __init__(self, a2j: A2J | None, student: Student | None, teacher: Teacher | None,
                 skeleton: Skeleton, config: PipelineConfig | None = None,
                 num_candidates: int = 25, *, onnx: OnnxNetworks | None = None) -> None:
        check_networks(a2j, student, onnx, skeleton, num_candidates)
        self.a2j, self.student, self.teacher, self.onnx = a2j, student, teacher, onnx
        self.skeleton = skeleton
        self.num_candidates = num_candidates
        self.crop_size = a2j.config.crop_size if a2j is not None else onnx.crop_size
        self.networks: Networks | None = None
        self.config = PipelineConfig()
        self.device = torch.device("cpu")
        self.renderer = None
        self._localiser = None
        self._located = LocatedHand()  # run_hands: the hand locate() follows
        self._fit: FitStage | None = None
        self._apply(config or PipelineConfig(), force=True)

    # ------------------------------------------------------------------ set-up
    @classmethod
    def from_checkpoint(cls, path: str | Path,
                        config: PipelineConfig | None = None) -> VirtualViewPipeline:
        """Load networks + skeleton from a checkpoint (CheckpointError if it is bad).

        Without a config, the cube edge the model was trained with is used. A directory
        (written by ``vvhand export-onnx``) is loaded by :meth:`from_onnx`; a checkpoint
        with ``config.backend == "onnxruntime"`` is exported to ONNX in memory.
        """
        if Path(path).is_dir():
            return cls.from_onnx(path, config)
        device = resolve_device(config.device if config else "auto")
        loaded = load_checkpoint(path, device)
        if config is None:
            config = PipelineConfig(cube_mm=float(loaded.model_config.cube_mm))
        return cls(loaded.a2j, loaded.student, loaded.teacher, loaded.skeleton, config,
                   loaded.model_config.num_candidates)

    @classmethod
    def from_onnx(cls, path: str | Path,
                  config: PipelineConfig | None = None) -> VirtualViewPipeline:
        """Load a directory written by ``vvhand export-onnx`` (backend "onnxruntime").

        OnnxModelError (a ValueError) names the directory and what is wrong with it, also
        for a config asking for another backend or a missing onnxruntime. onnxruntime uses
        as many threads as torch (``torch.get_num_threads()`` at load time).
        """
        onnx = load_onnx_dir(path, config.backend if config else "onnxruntime",
                             resolve_device(config.device if config else "auto"))
        if config is None:
            config = PipelineConfig(cube_mm=onnx.cube_mm, backend="onnxruntime")
        return cls(None, None, None, onnx.skeleton, config, onnx.num_candidates, onnx=onnx)

    def configure(self, **changes: object) -> None:
        """Change config fields between calls (validated; ValueError names the problem)."""
        names = {f.name for f in dataclasses.fields(PipelineConfig)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown pipeline option(s) {unknown}; known: {sorted(names)}")
        self._apply(dataclasses.replace(self.config, **changes))

    def _apply(self, cfg: PipelineConfig, force: bool = False) -> None:
        """Validate cfg and build what it needs; commit only when everything succeeded."""
        check_backend(cfg.backend, (self.a2j, self.student, self.teacher), self.onnx)
        check_config(cfg, self.num_candidates, self.student is not None,
                     self.teacher is not None)
        old = self.config
        fit = (make_fit_stage(cfg.fit, self.skeleton) if force or cfg.fit != old.fit
               else self._fit)
        device = resolve_device(cfg.device)
        renderer = self.renderer
        if force or (cfg.device, cfg.renderer) != (old.device, old.renderer):
            try:
                renderer = make_renderer(cfg.renderer, device=device)
            except (RuntimeError, ValueError) as exc:
                raise ValueError(f"renderer {cfg.renderer!r} on {device}: {exc}") from None
        localiser = self._localiser
        loc = (cfg.localiser, cfg.min_depth_mm, cfg.max_depth_mm, cfg.cube_mm, cfg.track,
               cfg.detector_weights)
        if force or (*loc, cfg.max_hands) != (old.localiser, old.min_depth_mm, old.max_depth_mm,
                                              old.cube_mm, old.track, old.detector_weights,
                                              old.max_hands):
            # ValueError names a bad weights file
            localiser = make_localiser(*loc, max_hands=cfg.max_hands)
        uniform_idx = (grid_subset_indices(cfg.num_views, self.num_candidates).to(device)
                       if cfg.selector == "uniform" else None)
        networks = self.networks
        if force or cfg.backend != old.backend:
            networks, self.onnx = make_networks(
                cfg.backend, (self.a2j, self.student, self.teacher), self.onnx, self.skeleton,
                cfg.cube_mm, self.num_candidates, device)
        # commit
        if force or device != self.device:
            for net in (self.a2j, self.student, self.teacher):
                if net is not None:
                    net.to(device)
        for net in (self.a2j, self.student, self.teacher):
            if net is not None:
                net.eval()
        self.config, self.device, self.renderer = cfg, device, renderer
        self.networks = networks
        if localiser is not self._localiser:
            self._located.reset()
        self._localiser, self._uniform_idx, self._fit = localiser, uniform_idx, fit
        self._grid = view_grid(self.num_candidates).to(device)

    def reset_tracking(self) -> None:
        """Forget the previous frame's hand centre (and hand-model fit)."""
        if self._localiser is not None:
            self._localiser.reset()
        self._located.reset()
        if self._fit is not None:
            self._fit.reset()

    # ------------------------------------------------------------------ running
    def run(self, depth_mm: np.ndarray, intrinsics: Intrinsics,
            centre_mm: np.ndarray | None = None) -> HandPoseResult:
        """One frame: depth (H, W) uint16 or float mm (0/NaN invalid) -> HandPoseResult.

        ``centre_mm`` (3,) skips localisation (e.g. an oracle centre).
        """
        depth = np.asarray(depth_mm)
        if depth.ndim != 2:
            raise ValueError(f"depth_mm must be (H, W), got shape {depth.shape}")
        centres = None if centre_mm is None else np.asarray(centre_mm, np.float64).reshape(1, 3)
        return self.run_batch(depth[None], intrinsics, centres)[0]

    def run_batch(self, depth_mm: np.ndarray, intrinsics: Intrinsics,
                  centres_mm: np.ndarray | None = None) -> list[HandPoseResult]:
        """B frames of one camera: depth (B, H, W) -> B results (frames in order).

        ``centres_mm`` (B, 3) skips localisation. With tracking on, frames are treated
        as consecutive (frame i's centre is the prior of frame i + 1).
        """
        depth = np.asarray(depth_mm)
        if depth.ndim != 3:
            raise ValueError(f"depth_mm must be (B, H, W), got shape {depth.shape}")
        b, h, w = depth.shape
        if (w, h) != (intrinsics.width, intrinsics.height):
            raise ValueError(f"depth image is {w}x{h}, intrinsics are for "
                             f"{intrinsics.width}x{intrinsics.height}")
        if centres_mm is not None and np.shape(centres_mm) != (b, 3):
            raise ValueError(f"centres_mm must be ({b}, 3), got {np.shape(centres_mm)}")
        timer = StageTimer(self.device)
        with torch.inference_mode():
            results = self._run(depth, intrinsics, centres_mm, timer)
        per_frame = {k: v / b for k, v in timer.finish().items()}
        for r in results:
            r.timings_ms = dict(per_frame)
        return results

    def run_hands(self, depth_mm: np.ndarray, intrinsics: Intrinsics) -> HandsResult:
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
        timer = StageTimer(self.device)
        with torch.inference_mode():
            depth = clean_depth(depth[None])
            found = locate_hands(self._localiser, depth[0], intrinsics, self._located)
            timer.lap("localise")
            results = (self._estimate_at(depth, [0] * len(found),
                                         [c.centre_mm for c in found], intrinsics, timer)
                       if found else [])
            hands, dropped = finish_hands(results, [c.track_id for c in found], self._fit,
                                          depth[0], intrinsics, self.config.track,
                                          self._invalid, self._localiser, self._located)
            if self._fit is not None:
                timer.lap("fit")
        return hands_result(hands, dropped, self._invalid, timer.finish(), self._located)

    def _invalid(self, message: str, centre: np.ndarray | None = None) -> HandPoseResult:
        return HandPoseResult.invalid(message, self.skeleton.num_joints, self.num_candidates,
                                      self.config.cube_mm, centre)

    def _run(self, depth: np.ndarray, intr: Intrinsics, centres_in: np.ndarray | None,
             timer: StageTimer) -> list[HandPoseResult]:
        b, depth = depth.shape[0], clean_depth(depth)
        centres, messages = locate_frames(self._localiser, depth, intr, centres_in)
        timer.lap("localise")
        live = [i for i in range(b) if centres[i] is not None]
        results: list[HandPoseResult] = [self._invalid(msg) for msg in messages]
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
                     intr: Intrinsics, timer: StageTimer) -> list[HandPoseResult]:
        """One estimate per centre (3,) mm, cropped from depth[frames[n]]: one batch."""
        cfg, dev = self.config, self.device
        live = frames
        # -------- crop + normalise
        k1 = intr.as_tensor(device=dev)
        k = k1.expand(len(live), 4)
        centre_t = torch.from_numpy(np.stack(centres)).to(dev, torch.float32)
        whole = live == list(range(depth.shape[0]))
        depth_t = torch.from_numpy(depth if whole else depth[live]).to(dev)
        if cfg.mirror:  # the mirror pass: the same frames flipped left-right, second
            depth_t, k, centre_t = with_mirror_t(depth_t, centre_t, intr)
        crop, t = crop_depth(depth_t, centre_t, k, CropConfig(cfg.cube_mm, self.crop_size))
        zc = centre_t[:, 2]
        has_fg = (crop > 0).flatten(1).any(1).cpu()
        crop_in = normalise(crop, zc, cfg.cube_mm)[:, None]  # (L, 1, S, S); 2L with mirror
        timer.lap("crop")
        # -------- choose views, render, A2J, fuse
        joints, views, idx, weights, logits, score = self._estimate(crop, crop_in, t, k,
                                                                    centre_t, timer)
        passes = None
        if cfg.mirror:
            joints, views, idx, weights, passes = merge_mirror_pass(joints, views, idx, weights)
            logits, score, passes = logits[: len(live)], score[: len(live)], passes.cpu().numpy()
        joints_np, views_np, idx_np = joints.cpu().numpy(), views.cpu().numpy(), idx.cpu().numpy()
        w_np, logits_np, score_np = (weights.float().cpu().numpy(), logits.float().cpu().numpy(),
                                     score.float().cpu().numpy())
        timer.lap("fusion")
        results = []
        for n in range(len(live)):
            if not has_fg[n]:
                results.append(self._invalid("empty crop: no depth inside the hand cube",
                                             centres[n]))
                continue
            results.append(HandPoseResult.estimate(
                centres[n], cfg.cube_mm, self.num_candidates, joints_np[n], views_np[n],
                idx_np[n], w_np[n], logits_np[n], score_np[n], self.skeleton, cfg.side))
            if passes is not None:
                results[-1].passes_joints_mm = passes[n]
        return results

    def _a2j_views(self, views_mm: torch.Tensor, zc: torch.Tensor, features: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Rendered views (L, V, S, S) mm -> uvd (L, V, J, 3) and the teacher's input.

        The teacher's input (L*V, J, 64, H_c, W_c) only when ``features``, else None.
        """
        n, v, s, _ = views_mm.shape
        x = normalise(views_mm, zc, self.config.cube_mm).reshape(n * v, 1, s, s)
        uvd, feats = self.networks.a2j(x, features)
        return uvd.reshape(n, v, *uvd.shape[1:]), feats

    def _estimate(self, crop: torch.Tensor, crop_in: torch.Tensor, t: torch.Tensor,
                  k: torch.Tensor, centre: torch.Tensor, timer: StageTimer):
        cfg, m, n_sel = self.config, self.num_candidates, self.config.num_views
        nets = self.networks
        nl = crop.shape[0]
        zc = centre[:, 2]
        mats_all = view_matrices(self._grid, centre)  # (L, M, 4, 4)
        if cfg.selector == "student":
            logits = nets.student(crop_in)  # (L, M)
            idx = select_top_n(logits, n_sel)
            timer.lap("student")
            mats = gather_views(mats_all, idx)
            views = self.renderer.render(crop, t, k, mats)
            timer.lap("render")
            uvd, _ = self._a2j_views(views, zc)
            timer.lap("a2j")
            weights = fusion_weights(gather_views(logits, idx), cfg.fusion)
            score = selection_score(logits, idx)
        elif cfg.selector == "teacher":
            views = self.renderer.render(crop, t, k, mats_all)
            timer.lap("render")
            uvd_all, feats = self._a2j_views(views, zc, features=True)
            timer.lap("a2j")
            logits = nets.teacher(teacher_features(feats, m))
            idx = select_top_n(logits, n_sel)
            timer.lap("student")
            mats, uvd = gather_views(mats_all, idx), gather_views(uvd_all, idx)
            weights = fusion_weights(gather_views(logits, idx), cfg.fusion)
            score = selection_score(logits, idx)
        else:  # uniform
            idx = self._uniform_idx.expand(nl, n_sel)
            mats = gather_views(mats_all, idx)
            views = self.renderer.render(crop, t, k, mats)
            timer.lap("render")
            uvd, feats = self._a2j_views(views, zc, features=cfg.fusion == "confidence")
            timer.lap("a2j")
            if cfg.fusion == "confidence":
                view_logits = nets.teacher(teacher_features(feats, n_sel))
                weights = fusion_weights(view_logits, "confidence")
                timer.lap("student")
            else:
                weights = fusion_weights(torch.zeros(nl, n_sel, device=crop.device), "average")
            logits = torch.zeros(nl, m, device=crop.device)
            score = torch.ones(nl, device=crop.device)
        joints_view = crop_uvd_to_camera_mm(uvd, t, k, zc, cfg.cube_mm)
        views_cam = to_camera_frame(joints_view, invert_rigid(mats))  # (L, N, J, 3)
        joints = fuse_camera_joints(views_cam, weights)  # Eq. 2, as fusion.fuse_joints
        return joints, views_cam, idx, weights, logits, score
