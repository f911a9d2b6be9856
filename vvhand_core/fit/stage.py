"""The hand-model fit as a pipeline stage: network joints in, fitted joints and angles out.

``FitStage.apply(result, depth_mm, intrinsics)`` runs :func:`~vvhand_core.fit.fit_hand`
on one valid :class:`~vvhand_core.pipeline_config.HandPoseResult` and rewrites it in place:

- ``joints_mm`` becomes the fitted model's joints (the network's when the safeguard
  refused the fit), the network's fused joints move to ``network_joints_mm``;
- ``fit`` holds the :class:`~vvhand_core.fit.FitResult` (angles in degrees,
  ``ANGLE_NAMES`` order; scale; residual mm; ``fallback``: why the network's joints were
  kept, "" when the fit was used).

The fit pulls toward the network's joints weighted by their confidence, which comes from
the fused views' agreement (``vvhand_core.confidence``; all 1 with one view). In
sequences (``sequence=True``, the pipeline's tracking) the previous frame's fit is carried:
the evidence of the hand's side (the network's chirality over the frames, ``fit.
side_evidence``), the shape once calibrated, and a pull toward the last fit's joints when
the same side is fitted; a frame without a hand, or network joints that moved more than
``jump_mm`` (mean) from the last fit (the nearer pass with the mirror pass), start a new
sequence.

With an alternate pose model (``FrameFlow.set_alternate``: ``result.alternate`` holds its
estimate of the same crop) its estimate is fitted too, by the same rules, and the fit with
the smaller residual wins; when that is the alternate's, the result takes its network
estimate first (``HandPoseResult.adopt``, ``alternate_chosen``) and ``alternate`` holds its
own.

With the mirror pass (``PipelineConfig.mirror``) the fit starts from the mean of both
passes, unless their joints have opposite chirality (the network could not tell the
hand's side): then each pass's joints are fitted as its own side (each with the
confidence of its own views) and the fit explaining the depth better (smaller residual)
wins; with a fixed ``FitConfig.side``, or in a sequence whose side evidence so far is
clear, only the pass of that side is fitted. The side evidence a frame adds is the fused
joints' chirality (near none when the passes disagree), never the side the depth chose.
When the fit is used, ``result.side`` becomes the fitted model's side
(``right_probability`` stays the network's). With ``FitConfig.max_residual_mm`` a fit
whose residual is larger ends the sequence and :meth:`FitStage.rejection` says why the
pipeline reports the frame as no hand.

One sequence per hand: the state is kept per key (``apply(..., key=...)``; the pipelines'
one-hand path uses the key None, :meth:`FitStage.apply_hands` the hands' track ids), so
two hands in one stream never share shape, side evidence or the pull toward the last fit.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vvhand_core.camera import Intrinsics
from vvhand_core.confidence import joint_spread_mm, spread_to_confidence
from vvhand_core.data.synthetic.hand_model import PARAM_NAMES
from vvhand_core.fit import compiled
from vvhand_core.fit.fit import (
    SIDE_DECAY,
    FitConfig,
    FitState,
    confident_side,
    fit_hand,
    side_evidence,
)
from vvhand_core.fit.fit import _shape as fit_shape
from vvhand_core.fit.hand_np import pose
from vvhand_core.side import side_score
from vvhand_core.skeletons import HANDS2019_21, Skeleton

ANGLE_NAMES: tuple[str, ...] = PARAM_NAMES  # the 23 fitted joint angles, in order
JUMP_MM = 60.0


def check_fit_skeleton(skeleton: Skeleton) -> None:
    """ValueError unless the model predicts the 21 joints the hand model has."""
    if skeleton.name != HANDS2019_21.name:
        raise ValueError(f"the hand-model fit needs skeleton {HANDS2019_21.name!r}, the "
                         f"model predicts {skeleton.name!r}")


def make_fit_stage(config: FitConfig | None, skeleton: Skeleton) -> FitStage | None:
    """A pipeline's fit stage: None without a fit; ValueError for another skeleton."""
    if config is None:
        return None
    check_fit_skeleton(skeleton)
    return FitStage(config)


class FitStage:
    """Fits the hand model after fusion, carrying the state of a sequence (module doc)."""

    def __init__(self, config: FitConfig, jump_mm: float = JUMP_MM) -> None:
        self.config = config
        self.jump_mm = jump_mm
        self._states: dict[object, FitState] = {}  # per hand: key -> the last fit's state
        warm_up()  # compile (or load) the fit's kernels now, not on the first frame

    def reset(self) -> None:
        """Forget every sequence (the next frames are fitted on their own)."""
        self._states = {}

    def keys(self) -> set:
        """The keys (hands) whose sequence is carried to the next frame."""
        return set(self._states)

    def apply(self, result, depth_mm: np.ndarray, intrinsics: Intrinsics,
              sequence: bool = False, key: object = None) -> None:
        """Fit one frame's result in place (module doc); an invalid result ends a sequence.

        ``key``: which hand's sequence (a track id; None for the one-hand path).
        """
        if not result.valid:
            self._states.pop(key, None)
            return
        previous = self._states.get(key) if sequence else None
        starts, owners = self._all_starts(result, previous)
        if previous is not None and min(np.linalg.norm(  # vs the nearer pass
                previous.joints_mm - s[0], axis=1).mean() for s in starts) > self.jump_mm:
            previous = None
            starts, owners = self._all_starts(result, None)
        fits = [fit_hand(depth_mm, intrinsics, joints, confidence, previous, config)
                for joints, confidence, config in starts]
        best = min(range(len(fits)), key=lambda k: fits[k].residual_mm)
        fit = fits[best]
        if owners[best] is not result:  # the alternate model's estimate explains it better
            own = dataclasses.replace(result, alternate=None)
            result.adopt(owners[best])
            result.alternate, result.alternate_chosen = own, True
        network = np.asarray(result.joints_mm, np.float64)
        fit.sides_fitted = tuple(dict.fromkeys(s for f in fits for s in f.sides_fitted))
        # the network's evidence of the side, not the winning pass's (which the depth chose);
        # a single fit of the fused joints has it already (fit_hand's, of the same joints)
        if len(starts) > 1 or not np.array_equal(starts[0][0], network):
            fit.state.side_evidence = side_evidence(network, previous)
        if sequence and not self._rejects(fit):
            self._states[key] = fit.state
        else:
            self._states.pop(key, None)
        result.network_joints_mm = network.astype(np.float32)
        result.joints_mm = np.asarray(fit.joints_mm, np.float32)
        result.fit = fit
        if not fit.fell_back:  # the published joints are the fitted model's, of its side
            result.side = fit.side

    def _rejects(self, fit) -> bool:
        limit = self.config.max_residual_mm
        return limit > 0 and fit.residual_mm > limit

    def apply_all(self, results: list, depth_mm: np.ndarray, intrinsics: Intrinsics,
                  sequence: bool, invalid, localiser) -> None:
        """Fit a batch of results in place (depth (B, H, W) mm), as both pipelines do.

        A result the fit rejects (:meth:`rejection`) becomes ``invalid(message, centre)``
        with its fit kept, and ``localiser`` (if any) forgets its track.
        """
        for i, r in enumerate(results):
            self.apply(r, depth_mm[i], intrinsics, sequence)
            why = self.rejection(r)
            if why:  # a phantom hand: reported as none, and not tracked
                fit, results[i] = r.fit, invalid(why, r.centre_mm)
                results[i].fit = fit
                if localiser is not None:
                    localiser.reset()

    def apply_hands(self, results: list, depth_mm: np.ndarray, intrinsics: Intrinsics,
                    sequence: bool, invalid) -> list[int]:
        """Fit the hands of ONE frame (depth (H, W) mm) in place, each in its own sequence.

        Each result's ``track_id`` is its key (None: fitted alone, nothing carried). The
        sequences of hands not in ``results`` end. A result the fit rejects becomes
        ``invalid(message, centre)`` with its fit kept; returns the indices of those.
        """
        keys = {r.track_id for r in results if r.track_id is not None}
        for key in self.keys() - keys:
            self._states.pop(key)
        rejected = []
        for i, r in enumerate(results):
            key = r.track_id
            self.apply(r, depth_mm, intrinsics, sequence and key is not None, key)
            why = self.rejection(r)
            if why:
                fit, results[i] = r.fit, invalid(why, r.centre_mm)
                results[i].fit, results[i].track_id = fit, key
                rejected.append(i)
        return rejected

    def rejection(self, result) -> str:
        """Why a fitted result is not taken for a hand ("" when it is)."""
        fit = result.fit
        if not result.valid or fit is None or not self._rejects(fit):
            return ""
        return (f"not taken for a hand: the fitted hand model explains the depth badly "
                f"(residual {fit.residual_mm:.1f} mm > max {self.config.max_residual_mm:g})")

    def _all_starts(self, result, previous: FitState | None) -> tuple[list, list]:
        """(starts, owners): the fits to try of the result and its alternate estimate.

        ``_starts`` of ``result`` and of ``result.alternate`` (when valid); ``owners[k]``
        is the estimate start k comes from.
        """
        starts, owners = [], []
        for estimate in (result, getattr(result, "alternate", None)):
            if estimate is not None and estimate.valid:
                own = self._starts(estimate, previous)
                starts += own
                owners += [estimate] * len(own)
        return starts, owners

    def _starts(self, result, previous: FitState | None
                ) -> list[tuple[np.ndarray, np.ndarray | None, FitConfig]]:
        """(joints, confidence, config) of each fit to try (module doc)."""
        fused = (np.asarray(result.joints_mm, np.float64), _confidence(result.joint_spread_mm))
        passes = result.passes_joints_mm
        if passes is None:
            return [(*fused, self.config)]
        sides = [_side(p) for p in passes]
        if None in sides or sides[0] == sides[1]:
            return [(*fused, self.config)]
        held = self.config.side
        if held == "auto" and previous is not None:  # the sequence's side, when clear
            held = confident_side(SIDE_DECAY * previous.side_evidence, self.config.side_margin)
        n = len(result.weights) // 2  # each pass's views: image first, mirror second
        starts = []
        for k, side in enumerate(sides):
            part = slice(k * n, (k + 1) * n)
            spread = joint_spread_mm(result.joints_views_mm[part], passes[k],
                                     result.weights[part])
            starts.append((np.asarray(passes[k], np.float64), _confidence(spread),
                           dataclasses.replace(self.config, side=side)))
        if held in ("left", "right"):  # a sequence's held side, or a fixed one
            starts = [s for s in starts if s[2].side == held]
        return starts


_WARM: list[bool] = []


def warm_up() -> None:
    """Fit a small made-up frame once per process, so the first real frame is not slowed.

    Compiles the fit's numba kernels (:mod:`.compiled`) for the argument types a fit
    passes them: seconds the first time on a machine, well under one once cached. Nothing
    to do where the kernels are off.
    """
    if _WARM or not compiled.ENABLED:
        return
    config = FitConfig(side="right")
    joints = pose(np.zeros(len(ANGLE_NAMES)), np.eye(3), np.array([0.0, 0.0, 400.0]), 1.0,
                  fit_shape(config)).joints
    v, u = np.mgrid[0:120, 0:160]
    depth = 395.0 + ((u - 80.0) ** 2 + (v - 60.0) ** 2) / 60.0  # a bowl the hand lies in
    fit_hand(depth, Intrinsics(150.0, 150.0, 80.0, 60.0, 160, 120), joints, config=config)
    _WARM.append(True)


def _confidence(spread_mm: np.ndarray | None) -> np.ndarray | None:
    """Per-joint confidence from the views' spread; None (all 1) without a finite spread."""
    if spread_mm is None or not np.isfinite(spread_mm).all():
        return None
    return spread_to_confidence(spread_mm)


def _side(joints_mm: np.ndarray) -> str | None:
    """"right" or "left" from the joints' chirality (None when it cannot be told)."""
    score = side_score(joints_mm, HANDS2019_21)
    return None if not np.isfinite(score) or score == 0 else ("right" if score > 0 else "left")
