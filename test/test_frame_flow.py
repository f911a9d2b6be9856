"""One definition of "the hand jumped" (vvhand_core.frame_flow.make_fit, FrameConfig.
track_jump_mm): the fit's sequence and the node's output track restart at the same
distance, DEPLOYED.track_jump_mm by default.

A frame and the same frame 70 mm farther (depth and centre shifted): the network's joints
move ~66 mm (their mean) and the fit's jump measure (mean joint distance to the last fit)
reads ~73 mm. Under 80 mm (the deployed value) both the fit and the output track carry
on; with 60 mm both restart.
"""

from __future__ import annotations

import numpy as np
import pytest

from vvhand_core.assets import default_model_path
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.deployed import DEPLOYED
from vvhand_core.fit import FitConfig
from vvhand_core.frame_config import FrameConfig
from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline
from vvhand_core.smoothing import HandTrack, SmoothingConfig

SHIFT_MM = 70.0


@pytest.fixture(scope="module")
def moved():
    """A frame, the same hand 70 mm farther, and their centres (camera mm)."""
    f = SyntheticHandGenerator(SynthConfig(seed=3)).frame(1)
    depth = f.depth_mm.astype(np.float32)
    far = np.where(depth > 0, depth + np.float32(SHIFT_MM), np.float32(0))
    centre = f.joints_mm.mean(0)
    return np.stack([depth, far]), f.intrinsics, np.stack([centre, centre + [0, 0, SHIFT_MM]])


@pytest.fixture(scope="module")
def pipe():
    return VirtualViewPipeline.from_checkpoint(default_model_path(), PipelineConfig(
        device="cpu", renderer="torch", track=True, fit=FitConfig(iterations=4)))


def _jumped(pipe, moved, jump_mm: float) -> tuple[bool, bool]:
    """(the fit restarted, the output track restarted) on the second frame."""
    depth, intr, centres = moved
    pipe.configure(track_jump_mm=jump_mm)
    pipe.reset_tracking()
    first, second = pipe.run_batch(depth, intr, centres)
    fit_measure = np.linalg.norm(first.fit.state.joints_mm - second.network_joints_mm,
                                 axis=1).mean()
    assert 60.0 < fit_measure < 80.0, fit_measure  # the case this test is about
    track = HandTrack(SmoothingConfig(jump_mm=jump_mm))
    ids = [track.update(t, r.joints_mm).track_id for t, r in ((0.0, first), (0.033, second))]
    return len(second.fit.state.scale_estimates) == 1, ids[0] != ids[1]


def test_one_jump_distance_for_the_fit_and_the_output_track(pipe, moved):
    assert FrameConfig().track_jump_mm == SmoothingConfig().jump_mm == DEPLOYED.track_jump_mm
    assert _jumped(pipe, moved, DEPLOYED.track_jump_mm) == (False, False)
    assert _jumped(pipe, moved, 60.0) == (True, True)


def test_track_jump_mm_is_checked(pipe):
    for bad in (0.0, -5.0, float("nan"), "80", True):
        with pytest.raises(ValueError, match="track_jump_mm"):
            pipe.configure(track_jump_mm=bad)
