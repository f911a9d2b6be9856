"""FrameConfig: what both pipelines honour, the selectors, and the checks they share (no torch).

``PipelineConfig`` (:mod:`vvhand_core.pipeline_config`, torch) and ``LiteConfig``
(:mod:`vvhand_core.lite.config`) extend :class:`FrameConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vvhand_core.deployed import DEPLOYED
from vvhand_core.fit.fit import FitConfig
from vvhand_core.hands import check_max_hands
from vvhand_core.lite.fusion import FUSIONS
from vvhand_core.lite.geometry import GRID_SHAPES, grid_subset_indices
from vvhand_core.localise import LOCALISERS
from vvhand_core.side import SideConfig

SELECTORS = ("student", "teacher", "uniform")


@dataclass
class FrameConfig:
    """What both pipelines honour; ``PipelineConfig`` and ``LiteConfig`` extend it.

    selector: "student" (student scores M views, render only the top N), "teacher"
    (render all M, A2J on all, teacher scores them, fuse the top N) or "uniform" (the N
    views of the N-grid, N in 1/3/9/15/25/81). fusion: "confidence" (softmax over the
    selected views' logits; for uniform the teacher scores the N views) or "average".
    cube_mm: the hand cube's edge; min/max_depth_mm: the depth range searched for a hand;
    track: localise from the previous frame's hand when there is one. localiser:
    "detector" (learned, default) or "geometric" (``localise.make_localiser``);
    detector_weights: "" = the packaged detector. side: how the fused joints' chirality
    becomes a side (``vvhand_core.side``). fit: None (off, default) or how the articulated
    hand model is fitted to the depth after fusion (``vvhand_core.fit.stage``; numpy and
    scipy only; skeleton hands2019_21 only; in sequences when ``track``). max_hands: the
    most hands ``run_hands`` estimates per frame (``vvhand_core.hands``; 1 = ``run``'s one
    hand); ``run`` and ``run_batch`` estimate one hand per frame whatever its value.
    track_jump_mm: the hand jumped when its joints moved more than this (mean) since the
    previous frame: the fit starts a new sequence (``fit.stage.FitStage.jump_mm``); the
    node's output track (``smoothing.SmoothingConfig.jump_mm``, parameter
    ``track_jump_mm``) starts a new track id at the same value, ``DEPLOYED.track_jump_mm``.
    """

    selector: str = DEPLOYED.selector
    num_views: int = DEPLOYED.num_views
    fusion: str = DEPLOYED.fusion
    cube_mm: float = DEPLOYED.cube_mm
    min_depth_mm: float = DEPLOYED.min_depth_mm
    max_depth_mm: float = DEPLOYED.max_depth_mm
    track: bool = True
    localiser: str = DEPLOYED.localiser
    detector_weights: str = ""
    side: SideConfig = field(default_factory=SideConfig)
    fit: FitConfig | None = None
    max_hands: int = 2
    track_jump_mm: float = DEPLOYED.track_jump_mm


def check_frame_config(cfg: FrameConfig, num_candidates: int) -> None:
    """ValueError naming the first problem of ``cfg`` for a model with M = num_candidates.

    The checks both pipelines share (``pipeline_config.check_config`` calls this first):
    selector, localiser, fusion, num_views for the selector and M, cube and depth range,
    the fit's type, max_hands, track_jump_mm.
    """
    m, n = num_candidates, cfg.num_views
    if cfg.selector not in SELECTORS:
        raise ValueError(f"selector must be one of {SELECTORS}, got {cfg.selector!r}")
    if cfg.localiser not in LOCALISERS:
        raise ValueError(f"localiser must be one of {LOCALISERS}, got {cfg.localiser!r}")
    if cfg.fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {cfg.fusion!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"num_views must be an integer, got {n!r}")
    if cfg.selector == "uniform":
        sizes = sorted(g for g in GRID_SHAPES if g <= m)
        if n not in sizes:
            raise ValueError(f"uniform num_views must be one of {sizes}, got {n}")
        grid_subset_indices(n, m)  # ValueError when the N-grid is not in the M-grid
    elif not 1 <= n <= m:
        raise ValueError(f"num_views must be in 1..{m} (the candidate views), got {n}")
    if not cfg.cube_mm > 0:
        raise ValueError(f"cube_mm must be > 0, got {cfg.cube_mm}")
    if not 0 <= cfg.min_depth_mm < cfg.max_depth_mm:
        raise ValueError(f"need 0 <= min_depth_mm < max_depth_mm, got "
                         f"{cfg.min_depth_mm}, {cfg.max_depth_mm}")
    check_max_hands(cfg.max_hands)
    jump = cfg.track_jump_mm
    if isinstance(jump, bool) or not isinstance(jump, (int, float, np.number)) or not jump > 0:
        raise ValueError(f"track_jump_mm must be a number > 0, got {jump!r}")
    if cfg.fit is not None and not isinstance(cfg.fit, FitConfig):
        raise ValueError(f"fit must be None or a FitConfig, got {type(cfg.fit).__name__}")


__all__ = ["FrameConfig", "SELECTORS", "check_frame_config"]
