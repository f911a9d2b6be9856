"""Time depth input: raw vs compressedDepth decoding, pairing and undistortion per frame.

`vvhand bench ros-input`: one 640x480 synthetic hand frame (the `vvhand synth-bag` camera)
through each input path, as the node's worker runs it. ``raw, before #13`` is the path as
it was (newest camera_info, K only: camera_info_to_intrinsics + image_to_depth_mm + size
check); ``raw`` is the path now (pair by stamp + DepthInput.prepare). ROS-free: messages
are stand-ins with the same fields. Appends a table to docs/results.md (or
$VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from types import SimpleNamespace

import numpy as np

# Azure-Kinect-like distortion for the undistortion case (rational_polynomial, 8 values)
RATIONAL = [-0.12, 0.05, 0.001, -0.0005, 0.0, 0.05, 0.0, 0.0]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench ros-input`."""
    parser.add_argument("--repeats", type=int, default=200, help="timed runs per case")
    parser.add_argument("--no-write", action="store_true", help="print only")


def _messages(depth_mm: np.ndarray, intr, stamp_ns: int):
    from vvhand_ros.compressed_depth import depth_mm_to_compressed
    from vvhand_ros.depth_encoding import encode_depth

    h, w = depth_mm.shape
    header = SimpleNamespace(stamp=SimpleNamespace(sec=stamp_ns // 10**9,
                                                   nanosec=stamp_ns % 10**9), frame_id="cam")

    def info(model="plumb_bob", d=(0.0,) * 5):
        return SimpleNamespace(
            header=header, width=w, height=h, distortion_model=model, d=list(d),
            k=[intr.fx, 0, intr.cx, 0, intr.fy, intr.cy, 0, 0, 1],
            p=[intr.fx, 0, intr.cx, 0, 0, intr.fy, intr.cy, 0, 0, 0, 1, 0])

    data = encode_depth(depth_mm, "16UC1")
    raw = SimpleNamespace(header=header, height=h, width=w, encoding="16UC1", is_bigendian=0,
                          step=2 * w, data=data.tobytes())
    cases = {"raw 16UC1": (raw, info())}
    for encoding in ("16UC1", "32FC1"):
        for codec in ("png", "rvl"):
            fmt, payload = depth_mm_to_compressed(depth_mm, encoding, codec)
            cases[f"compressedDepth {encoding} {codec}"] = (
                SimpleNamespace(header=header, format=fmt, data=payload), info())
    cases["raw 16UC1 + undistort (8 coeff.)"] = (raw, info("rational_polynomial", RATIONAL))
    return cases


def _time(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up (camera model cache, imports)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1000.0 * (time.perf_counter() - t0))
    return statistics.median(times), min(times)


def run(args: argparse.Namespace) -> int:
    """Time each case, print the table and append it to docs/results.md."""
    from vvhand_core.benchmarks.results import append_section, markdown_table
    from vvhand_core.data.synthetic.generator import sample_sequence
    from vvhand_ros.depth_encoding import (
        camera_info_to_intrinsics,
        check_image_matches_info,
        image_to_depth_mm,
    )
    from vvhand_ros.depth_input import DepthInput
    from vvhand_ros.pairing import StampPairer
    from vvhand_ros.synth_bag import live_camera_config

    frame = next(iter(sample_sequence(live_camera_config(0), 1)))
    stamp = 1_700_000_000_000_000_000
    cases = _messages(frame.depth_mm, frame.intrinsics, stamp)
    raw, raw_info = cases["raw 16UC1"]

    def before():
        intr = camera_info_to_intrinsics(raw_info)
        depth = image_to_depth_mm(raw)
        check_image_matches_info(depth.shape, intr)

    rows = []
    median, best = _time(before, args.repeats)
    rows.append(["raw 16UC1, before #13 (newest info, K)", len(raw.data), median, best])
    for name, (msg, info) in cases.items():
        depth_input = DepthInput("raw")
        pairer = StampPairer()
        stamps = itertools.count(stamp)

        def now(msg=msg, info=info, depth_input=depth_input, pairer=pairer, stamps=stamps):
            t = next(stamps)  # image first, its camera_info second: the pair forms on arrival
            pairer.add_image(t, msg)
            (pair,) = pairer.add_info(t, info)
            depth_input.prepare(pair.image, pair.info)

        median, best = _time(now, args.repeats)
        rows.append([f"{name} (paired)", len(msg.data), median, best])
    table = markdown_table(["input path (640x480 frame)", "bytes", "median ms", "min ms"], rows)
    print(table)
    if not args.no_write:
        body = ("One 640x480 synthetic hand frame (`vvhand synth-bag` camera) decoded as the "
                "node's worker does, after pairing with its camera_info; the first row is the "
                "raw path as it was before issue 13.\n\n" + table)
        path = append_section("Depth input decoding (ROS side)",
                              f"vvhand bench ros-input --repeats {args.repeats}", body)
        print(f"appended to {path}")
    return 0
