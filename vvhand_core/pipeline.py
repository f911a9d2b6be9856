"""VirtualViewPipeline: one depth image (+ intrinsics) -> 3D hand joints in camera mm.

    localise -> crop (T, centre, cube) -> normalise
      -> view scores: student on the crop (M logits)          [selector "student"]
                      teacher on A2J outputs of all M views   [selector "teacher"]
                      none, the N views of the N-grid         [selector "uniform"]
      -> render the N views to use (all M for "teacher") -> A2J on them in one batch
      -> crop uvd -> view mm -> M_i^-1 -> fusion (softmax over the N selected logits,
         or the unweighted average)

The node, rosbag replay, ``vvhand eval``, ``vvhand bench`` and the demo all call this
object; nothing else re-implements a step. Selected views are always indices into the
M-view candidate grid (uniform N-grids are subsets of it). Networks run under
``torch.inference_mode``; numpy is only touched at the input and output.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from vvhand_core.camera import Intrinsics
from vvhand_core.checkpoint import load_checkpoint, resolve_device
from vvhand_core.confidence import joint_spread_mm
from vvhand_core.crop import CropConfig, crop_depth, normalise
from vvhand_core.fusion import (
    FUSIONS,
    fuse_camera_joints,
    fusion_weights,
    gather_views,
    select_top_n,
    selection_score,
    to_camera_frame,
)
from vvhand_core.jointspace import crop_uvd_to_camera_mm
from vvhand_core.localise import LOCALISERS, make_localiser
from vvhand_core.models import A2J, Student, Teacher, teacher_features
from vvhand_core.pipeline_config import (
    SELECTORS,
    STAGES,
    HandPoseResult,
    PipelineConfig,
    StageTimer,
)
from vvhand_core.render import make_renderer
from vvhand_core.skeletons import Skeleton
from vvhand_core.views import GRID_SHAPES, invert_rigid, view_grid, view_matrices

__all__ = ["HandPoseResult", "PipelineConfig", "SELECTORS", "STAGES", "VirtualViewPipeline"]

class VirtualViewPipeline:
    """Depth image -> hand joints by virtual-view selection and fusion (see module doc).

    a2j, student, teacher: the networks (student or teacher may be None when no mode
    that needs them is used); skeleton: the joint set A2J predicts; num_candidates: M,
    the size of the candidate grid the student scores. The networks are moved to the
    configured device and put in eval mode (a trainer validating through the pipeline
    must call ``.train()`` again afterwards).
    """

    def __init__(self, a2j: A2J, student: Student | None, teacher: Teacher | None,
                 skeleton: Skeleton, config: PipelineConfig | None = None,
                 num_candidates: int = 25) -> None:
        if num_candidates not in GRID_SHAPES:
            raise ValueError(f"num_candidates must be one of {sorted(GRID_SHAPES)}, "
                             f"got {num_candidates}")
        if a2j.num_joints != skeleton.num_joints:
            raise ValueError(f"A2J predicts {a2j.num_joints} joints, skeleton "
                             f"{skeleton.name!r} has {skeleton.num_joints}")
        if student is not None and student.config.num_views != num_candidates:
            raise ValueError(f"the student scores {student.config.num_views} views, "
                             f"num_candidates is {num_candidates}")
        self.a2j, self.student, self.teacher = a2j, student, teacher
        self.skeleton = skeleton
        self.num_candidates = num_candidates
        self.crop_size = a2j.config.crop_size
        self.config = PipelineConfig()
        self.device = torch.device("cpu")
        self.renderer = None
        self._localiser = None
        self._apply(config or PipelineConfig(), force=True)

    # ------------------------------------------------------------------ set-up
    @classmethod
    def from_checkpoint(cls, path: str | Path,
                        config: PipelineConfig | None = None) -> VirtualViewPipeline:
        """Load networks + skeleton from a checkpoint (CheckpointError if it is bad).

        Without a config, the cube edge the model was trained with is used.
        """
        device = resolve_device(config.device if config else "auto")
        loaded = load_checkpoint(path, device)
        if config is None:
            config = PipelineConfig(cube_mm=float(loaded.model_config.cube_mm))
        return cls(loaded.a2j, loaded.student, loaded.teacher, loaded.skeleton, config,
                   loaded.model_config.num_candidates)

    def configure(self, **changes: object) -> None:
        """Change config fields between calls (validated; ValueError names the problem)."""
        names = {f.name for f in dataclasses.fields(PipelineConfig)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown pipeline option(s) {unknown}; known: {sorted(names)}")
        self._apply(dataclasses.replace(self.config, **changes))

    def _validate(self, cfg: PipelineConfig) -> None:
        m, n = self.num_candidates, cfg.num_views
        if cfg.selector not in SELECTORS:
            raise ValueError(f"selector must be one of {SELECTORS}, got {cfg.selector!r}")
        if cfg.localiser not in LOCALISERS:
            raise ValueError(f"localiser must be one of {LOCALISERS}, got {cfg.localiser!r}")
        if cfg.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {cfg.fusion!r}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise ValueError(f"num_views must be an integer, got {n!r}")
        if cfg.selector == "uniform":
            if n not in GRID_SHAPES:
                raise ValueError(f"uniform num_views must be one of {sorted(GRID_SHAPES)}, "
                                 f"got {n}")
            self._uniform_indices(n)  # raises when the N-grid is not inside the M-grid
        elif not 1 <= n <= m:
            raise ValueError(f"num_views must be in 1..{m} (the candidate views), got {n}")
        if cfg.selector == "student" and self.student is None:
            raise ValueError("selector 'student' needs a student network")
        needs_teacher = cfg.selector == "teacher" or (
            cfg.selector == "uniform" and cfg.fusion == "confidence")
        if needs_teacher and self.teacher is None:
            raise ValueError(f"selector {cfg.selector!r} with fusion {cfg.fusion!r} needs a "
                             "teacher network")
        if not cfg.cube_mm > 0:
            raise ValueError(f"cube_mm must be > 0, got {cfg.cube_mm}")
        if not 0 <= cfg.min_depth_mm < cfg.max_depth_mm:
            raise ValueError(f"need 0 <= min_depth_mm < max_depth_mm, got "
                             f"{cfg.min_depth_mm}, {cfg.max_depth_mm}")
        resolve_device(cfg.device)

    def _apply(self, cfg: PipelineConfig, force: bool = False) -> None:
        """Validate cfg and build what it needs; commit only when everything succeeded."""
        self._validate(cfg)
        old = self.config
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
        if force or loc != (old.localiser, old.min_depth_mm, old.max_depth_mm, old.cube_mm,
                            old.track, old.detector_weights):
            localiser = make_localiser(*loc)  # ValueError names a bad weights file
        uniform_idx = (self._uniform_indices(cfg.num_views).to(device)
                       if cfg.selector == "uniform" else None)
        # commit
        if force or device != self.device:
            for net in (self.a2j, self.student, self.teacher):
                if net is not None:
                    net.to(device)
        for net in (self.a2j, self.student, self.teacher):
            if net is not None:
                net.eval()
        self.config, self.device, self.renderer = cfg, device, renderer
        self._localiser, self._uniform_idx = localiser, uniform_idx
        self._grid = view_grid(self.num_candidates).to(device)

    def _uniform_indices(self, n: int) -> torch.Tensor:
        """Indices (N,) of the uniform N-grid's views in the M-grid (ValueError if absent)."""
        sub, full = view_grid(n).double(), view_grid(self.num_candidates).double()
        dist = (sub[:, None] - full[None]).abs().amax(-1)  # (N, M)
        best = dist.min(dim=1)
        if (best.values > 1e-3).any():
            raise ValueError(f"the uniform {n}-view grid is not a subset of the "
                             f"{self.num_candidates}-view candidate grid")
        return best.indices

    def reset_tracking(self) -> None:
        """Forget the previous frame's hand centre."""
        if self._localiser is not None:
            self._localiser.reset()

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

    def _invalid(self, message: str, centre: np.ndarray | None = None) -> HandPoseResult:
        j, m = self.skeleton.num_joints, self.num_candidates
        return HandPoseResult(
            valid=False, message=message, joints_mm=np.zeros((j, 3), np.float32),
            centre_mm=np.zeros(3, np.float32) if centre is None else centre.astype(np.float32),
            cube_mm=float(self.config.cube_mm), num_candidates=m,
            selected_views=np.zeros(0, np.int64), weights=np.zeros(0, np.float32),
            logits=np.zeros(m, np.float32), score=0.0)

    def _run(self, depth: np.ndarray, intr: Intrinsics, centres_in: np.ndarray | None,
             timer: StageTimer) -> list[HandPoseResult]:
        cfg, dev = self.config, self.device
        b = depth.shape[0]
        floating = np.issubdtype(depth.dtype, np.floating)
        depth = depth.astype(np.float32, copy=False)
        if not (depth.flags.writeable and depth.flags.c_contiguous):
            depth = np.array(depth, dtype=np.float32, order="C")  # e.g. a read-only ROS buffer
        if floating and not np.isfinite(depth).all():
            depth = np.where(np.isfinite(depth), depth, np.float32(0))
        # -------- localise
        centres: list[np.ndarray | None] = []
        messages = [""] * b
        for i in range(b):
            if centres_in is None:
                c = self._localiser.locate(depth[i], intr)
                if c is None:
                    messages[i] = "no hand in range"
            else:
                c = np.asarray(centres_in[i], np.float64)
                if not (np.isfinite(c).all() and c[2] > 0):
                    c, messages[i] = None, f"invalid hand centre {centres_in[i]}"
            centres.append(None if c is None else np.asarray(c, np.float64))
        timer.lap("localise")
        live = [i for i in range(b) if centres[i] is not None]
        results: list[HandPoseResult] = [self._invalid(msg) for msg in messages]
        if not live:
            return results
        # -------- crop + normalise
        k1 = intr.as_tensor(device=dev)
        k = k1.expand(len(live), 4)
        centre_t = torch.from_numpy(np.stack([centres[i] for i in live])).to(dev, torch.float32)
        depth_t = torch.from_numpy(depth[live] if len(live) < b else depth).to(dev)
        crop, t = crop_depth(depth_t, centre_t, k, CropConfig(cfg.cube_mm, self.crop_size))
        zc = centre_t[:, 2]
        has_fg = (crop > 0).flatten(1).any(1).cpu()
        crop_in = normalise(crop, zc, cfg.cube_mm)[:, None]  # (L, 1, S, S)
        timer.lap("crop")
        # -------- choose views, render, A2J, fuse
        joints, views, idx, weights, logits, score = self._estimate(crop, crop_in, t, k,
                                                                    centre_t, timer)
        joints_np, views_np, idx_np = joints.cpu().numpy(), views.cpu().numpy(), idx.cpu().numpy()
        w_np, logits_np, score_np = (weights.float().cpu().numpy(), logits.float().cpu().numpy(),
                                     score.float().cpu().numpy())
        timer.lap("fusion")
        for n, i in enumerate(live):
            if not has_fg[n]:
                results[i] = self._invalid("empty crop: no depth inside the hand cube",
                                           centres[i])
                continue
            results[i] = HandPoseResult(
                valid=True, message="", joints_mm=joints_np[n].astype(np.float32),
                centre_mm=centres[i].astype(np.float32), cube_mm=float(cfg.cube_mm),
                num_candidates=self.num_candidates, selected_views=idx_np[n].astype(np.int64),
                weights=w_np[n], logits=logits_np[n], score=float(score_np[n]),
                joints_views_mm=views_np[n].astype(np.float32),
                joint_spread_mm=joint_spread_mm(views_np[n], joints_np[n], w_np[n]))
        return results

    def _a2j_views(self, views_mm: torch.Tensor, zc: torch.Tensor) -> tuple[torch.Tensor, object]:
        """Rendered views (L, V, S, S) mm -> uvd (L, V, J, 3) and the raw A2J output."""
        n, v, s, _ = views_mm.shape
        x = normalise(views_mm, zc, self.config.cube_mm).reshape(n * v, 1, s, s)
        out = self.a2j(x)
        uvd = self.a2j.decode(out)[0]
        return uvd.reshape(n, v, *uvd.shape[1:]), out

    def _estimate(self, crop: torch.Tensor, crop_in: torch.Tensor, t: torch.Tensor,
                  k: torch.Tensor, centre: torch.Tensor, timer: StageTimer):
        cfg, m, n_sel = self.config, self.num_candidates, self.config.num_views
        nl = crop.shape[0]
        zc = centre[:, 2]
        mats_all = view_matrices(self._grid, centre)  # (L, M, 4, 4)
        if cfg.selector == "student":
            logits = self.student(crop_in)  # (L, M)
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
            uvd_all, out = self._a2j_views(views, zc)
            timer.lap("a2j")
            logits = self.teacher(teacher_features(out.teacher_input(), m))
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
            uvd, out = self._a2j_views(views, zc)
            timer.lap("a2j")
            if cfg.fusion == "confidence":
                view_logits = self.teacher(teacher_features(out.teacher_input(), n_sel))
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
