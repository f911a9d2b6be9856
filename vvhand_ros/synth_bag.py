"""`vvhand synth-bag OUT --frames N`: a rosbag2 of a moving synthetic hand with ground truth.

Depth (16UC1 mm by default, or 32FC1 m; raw or compressedDepth png/rvl) and camera_info
on /camera/depth/..., ground truth as vvhand_msgs/msg/HandPose on /ground_truth/hand_pose, all
with the same header stamps. The hand moves smoothly between random keyframes
(vvhand_core.data.synthetic.sample_sequence), posed as by a person facing the camera: the
forearm points away from the camera (``FOREARM_MIN_Z``), unlike the all-directions
training distribution, where a forearm pointing at the camera is nearer than the hand and
misleads the nearest-object localiser. ``--scenes 2``: the person scenes (scene version
2: a person moving an arm and hand in a room, left or right hand, sensor model; see
vvhand_core.data.synthetic.sequence_v2), what `make demo` replays. ``--scenes 3``: stills of
the v3 scenes (hands holding things at a table; egocentric, third-person and overhead
cameras, each frame its own camera and scene: there is no v3 sequence), every hand
labelled: hand 0 on /ground_truth/hand_pose, the other on /ground_truth/other_hands
(vvhand_ros.bag); ``--two-hands``: only frames with two labelled hands.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vvhand_core.data.synthetic.generator import (
    SynthConfig,
    SyntheticHandGenerator,
    sample_sequence,
)
from vvhand_ros.bag import DEPTH_FORMATS, SyntheticBagFrame, write_bag

# camera-z of the wrist-to-elbow direction must be at least this (0 = sideways)
FOREARM_MIN_Z = 0.3


def live_camera_config(seed: int = 0, scene_version: int = 1) -> SynthConfig:
    """SynthConfig of the bags: v1 (forearm pointing away from the camera) or v2 scenes."""
    if scene_version == 2:
        return SynthConfig(seed=seed, scene_version=2)
    return SynthConfig(seed=seed, forearm_min_z=FOREARM_MIN_Z)


def synthetic_bag_frames(num_frames: int, seed: int = 0, fps: float = 15.0,
                         start_ns: int = 1_700_000_000_000_000_000,
                         config: SynthConfig | None = None) -> Iterator[SyntheticBagFrame]:
    """Frames of a moving hand at ``fps``, stamped from ``start_ns``."""
    cfg = config or live_camera_config(seed)
    period_ns = int(round(1e9 / fps))
    for i, frame in enumerate(sample_sequence(cfg, num_frames)):
        yield SyntheticBagFrame(start_ns + i * period_ns, frame.depth_mm, frame.intrinsics,
                                frame.joints_mm, frame.skeleton)


def v3_bag_frames(num_frames: int, seed: int = 9, fps: float = 15.0,
                  start_ns: int = 1_700_000_000_000_000_000, two_hands: bool = False
                  ) -> Iterator[SyntheticBagFrame]:
    """Stills of scene version 3 (frames 0, 1, ... of ``seed``) with every hand labelled.

    ``two_hands``: only the frames with two labelled hands (``meta["num_hands"] == 2``).
    """
    period_ns = int(round(1e9 / fps))
    for n, frame in enumerate(v3_stills(num_frames, seed, two_hands)):
        others = tuple(np.asarray(h["joints_mm"], np.float64) for h in frame.meta["hands"][1:])
        yield SyntheticBagFrame(start_ns + n * period_ns, frame.depth_mm, frame.intrinsics,
                                frame.joints_mm, frame.skeleton, other_hands_mm=others)


def v3_stills(num_frames: int, seed: int = 9, two_hands: bool = False) -> Iterator:
    """The DepthFrames :func:`v3_bag_frames` stamps (``two_hands``: two-hand frames only)."""
    gen = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=seed))
    n = i = 0
    while n < num_frames:
        frame = gen.frame(i)
        i += 1
        if two_hands and frame.meta["num_hands"] != 2:
            continue
        yield frame
        n += 1


def held_objects(frames) -> dict[str, int]:
    """Labelled hands per grasp drawn ("none": the hand holds nothing), over ``frames``."""
    counts: dict[str, int] = {}
    for frame in frames:
        for hand in frame.meta["hands"]:
            grasp = hand.get("grasp_drawn") or "none"
            counts[grasp] = counts.get(grasp, 0) + 1
    return dict(sorted(counts.items()))


def write_synthetic_bag(out: str | Path, num_frames: int, seed: int = 0, fps: float = 15.0,
                        storage: str = "sqlite3", encoding: str = "16UC1",
                        progress: bool = True, depth_format: str = "raw",
                        info_after_image: bool = False, scene_version: int = 1,
                        two_hands: bool = False) -> int:
    """Write the bag; returns the number of frames (depth_format: see bag.write_bag).

    ``scene_version`` 3: :func:`v3_bag_frames` (``two_hands``: only two-hand frames).
    """
    if scene_version == 3:
        frames = v3_bag_frames(num_frames, seed, fps, two_hands=two_hands)
    else:
        frames = synthetic_bag_frames(num_frames, seed, fps,
                                      config=live_camera_config(seed, scene_version))
    frames = tqdm(frames, total=num_frames, desc="synth-bag", unit="frame", disable=not progress)
    return write_bag(out, frames, storage=storage, encoding=encoding, depth_format=depth_format,
                     info_after_image=info_after_image)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand synth-bag`."""
    parser.add_argument("out", type=Path, help="bag directory to create (must not exist)")
    parser.add_argument("--frames", type=int, default=100, help="number of depth frames")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the motion")
    parser.add_argument("--fps", type=float, default=15.0, help="frame rate of the stamps")
    parser.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3")
    parser.add_argument("--encoding", choices=("16UC1", "32FC1"), default="16UC1")
    parser.add_argument("--depth-format", choices=sorted(DEPTH_FORMATS), default="raw",
                        help="raw Image, or CompressedImage on <depth topic>/compressedDepth")
    parser.add_argument("--scenes", type=int, choices=(1, 2, 3), default=1,
                        help="1: a hand (and forearm) before a wall or table; 2: a person "
                             "(arm, torso, room), left or right hand; 3: stills of hands "
                             "holding things at a table, every hand labelled")
    parser.add_argument("--two-hands", action="store_true",
                        help="with --scenes 3: only frames with two labelled hands")


def run(args: argparse.Namespace) -> int:
    """Write the bag and say where it is."""
    if args.out.exists():
        print(f"vvhand synth-bag: {args.out} exists already; choose a new path")
        return 2
    n = write_synthetic_bag(args.out, args.frames, args.seed, args.fps, args.storage,
                            args.encoding, depth_format=args.depth_format,
                            scene_version=args.scenes, two_hands=args.two_hands)
    print(f"wrote {n} frames to {args.out}")
    return 0
