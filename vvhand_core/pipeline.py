"""VirtualViewPipeline: one depth image (+ intrinsics) -> 3D hand joints in camera mm.

The frame flow (localise -> crop -> view scores -> render -> A2J -> fusion [-> fit]) is
:class:`vvhand_core.frame_flow.FrameFlow`'s, shared with the torch-free
:class:`~vvhand_core.lite.pipeline.LitePipeline`; this module holds its torch operations
(:class:`TorchOps`: tensors on the configured device, networks under
``torch.inference_mode``) and the set-up: loading, configuring, devices and backends.
``run`` / ``run_batch`` estimate one hand per frame (the localiser's nearest confident
hand); ``run_hands`` every hand of a frame, up to ``config.max_hands``, in one batch
(:mod:`vvhand_core.hands`). The node, rosbag replay, ``vvhand eval``, ``vvhand bench``
and the demo all call this object.

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

from vvhand_core import fusion, jointspace, views
from vvhand_core.backends import Networks, check_backend, load_onnx_dir, make_networks
from vvhand_core.camera import Intrinsics, with_mirror_t
from vvhand_core.checkpoint import load_checkpoint, resolve_device
from vvhand_core.crop import CropConfig, crop_depth, normalise
from vvhand_core.fit.stage import FitStage
from vvhand_core.frame_config import SELECTORS
from vvhand_core.frame_flow import FrameFlow, make_fit
from vvhand_core.frame_ops import Crops, FrameOps
from vvhand_core.hand_pose_result import STAGES, HandPoseResult, StageTimer
from vvhand_core.hands import HandsResult, LocatedHand
from vvhand_core.localise import make_localiser
from vvhand_core.models import A2J, Student, Teacher, teacher_features
from vvhand_core.onnx_model import OnnxNetworks
from vvhand_core.pipeline_config import PipelineConfig, check_config, check_networks
from vvhand_core.render import make_renderer
from vvhand_core.skeletons import Skeleton

__all__ = ["HandPoseResult", "HandsResult", "PipelineConfig", "SELECTORS", "STAGES",
           "TorchOps", "VirtualViewPipeline"]


class TorchOps(FrameOps):
    """The frame flow's operations on torch tensors of ``device`` (FrameOps' contracts).

    networks: the backend's student, A2J and teacher (:mod:`vvhand_core.backends`);
    renderer: a :mod:`vvhand_core.render` renderer; num_candidates: M; crop_size: S.
    """

    select_top_n = staticmethod(fusion.select_top_n)
    gather_views = staticmethod(fusion.gather_views)
    fusion_weights = staticmethod(fusion.fusion_weights)
    selection_score = staticmethod(fusion.selection_score)
    to_camera_frame = staticmethod(fusion.to_camera_frame)
    fuse_camera_joints = staticmethod(fusion.fuse_camera_joints)
    invert_rigid = staticmethod(views.invert_rigid)
    crop_uvd_to_camera_mm = staticmethod(jointspace.crop_uvd_to_camera_mm)

    def __init__(self, networks: Networks, renderer, device: torch.device,
                 num_candidates: int, crop_size: int) -> None:
        self.networks, self.renderer, self.device = networks, renderer, device
        self.num_candidates, self.crop_size = num_candidates, crop_size
        self._grid = views.view_grid(num_candidates).to(device)
        self._uniform: dict[int, torch.Tensor] = {}

    def inference(self):
        return torch.inference_mode()

    def timer(self) -> StageTimer:
        return StageTimer(self.device)

    def crop(self, depth_mm: np.ndarray, frames: list[int], centres_mm: list[np.ndarray],
             intrinsics: Intrinsics, cube_mm: float, mirror: bool) -> Crops:
        dev, n = self.device, len(frames)
        k = intrinsics.as_tensor(device=dev).expand(n, 4)
        centre = torch.from_numpy(np.stack(centres_mm)).to(dev, torch.float32)
        whole = frames == list(range(depth_mm.shape[0]))
        depth = torch.from_numpy(depth_mm if whole else depth_mm[frames]).to(dev)
        if mirror:  # the mirror pass: the same frames flipped left-right, second
            depth, k, centre = with_mirror_t(depth, centre, intrinsics)
        crop, t = crop_depth(depth, centre, k, CropConfig(cube_mm, self.crop_size))
        has_depth = (crop > 0).flatten(1).any(1).cpu().numpy()
        return Crops(crop, t, k, centre, has_depth)

    def normalise(self, depth_mm, centre_z_mm, cube_mm: float):
        return normalise(depth_mm, centre_z_mm, cube_mm)

    def view_matrices(self, centre_mm):
        return views.view_matrices(self._grid, centre_mm)

    def uniform_indices(self, n: int, num_crops: int):
        if n not in self._uniform:
            self._uniform[n] = views.grid_subset_indices(n, self.num_candidates).to(self.device)
        return self._uniform[n].expand(num_crops, n)

    def student(self, crop_in):
        return self.networks.student(crop_in)

    def render(self, crops: Crops, view_mats):
        return self.renderer.render(crops.depth_mm, crops.t, crops.k, view_mats)

    def a2j(self, views_in, features: bool):
        return self.networks.a2j(views_in, features)

    def teacher(self, features, num_views: int):
        return self.networks.teacher(teacher_features(features, num_views))

    def zeros(self, shape):
        return torch.zeros(shape, device=self.device)

    def ones(self, shape):
        return torch.ones(shape, device=self.device)

    def numpy(self, x) -> np.ndarray:
        return x.cpu().numpy()

    def merge_mirror(self, joints_mm, views_mm, idx, weights):
        return fusion.merge_mirror_pass(joints_mm, views_mm, idx, weights)


class VirtualViewPipeline(FrameFlow):
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
        self.config = PipelineConfig()
        self.device = torch.device("cpu")
        self.ops: TorchOps | None = None
        self._localiser = None
        self._located = LocatedHand()  # run_hands: the hand locate() follows
        self._fit: FitStage | None = None
        self._apply(config or PipelineConfig(), force=True)

    @property
    def renderer(self):
        """The renderer of the configured device and ``config.renderer``."""
        return self.ops.renderer

    @property
    def networks(self) -> Networks:
        """The networks of ``config.backend`` (:mod:`vvhand_core.backends`)."""
        return self.ops.networks

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

    def _configure(self, **changes: object) -> None:
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
        fit = (make_fit(cfg, self.skeleton)
               if force or (cfg.fit, cfg.track_jump_mm) != (old.fit, old.track_jump_mm)
               else self._fit)
        device = resolve_device(cfg.device)
        renderer = None if force else self.ops.renderer
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
        networks = None if force else self.ops.networks
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
        self.config, self.device = cfg, device
        if localiser is not self._localiser:
            self._located.reset()
        self._localiser, self._fit = localiser, fit
        self.ops = TorchOps(networks, renderer, device, self.num_candidates, self.crop_size)
