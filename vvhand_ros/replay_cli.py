"""`vvhand replay BAG`: evaluate vvhand on a rosbag2 bag (offline or through a live node)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vvhand_core.checkpoint import CheckpointError
from vvhand_core.deployed import DEPLOYED
from vvhand_core.frame_config import SELECTORS
from vvhand_core.lite.fusion import FUSIONS
from vvhand_core.load import BACKEND_CHOICES
from vvhand_ros.bag import DEFAULT_DEPTH_TOPIC, DEFAULT_GT_TOPIC, DEFAULT_INFO_TOPIC, BagError
from vvhand_ros.camera_model import CAMERA_MODELS
from vvhand_ros.replay import ReplayConfig, format_report, run_replay


def _frame_count(text: str) -> int:
    """--max-frames: a whole number >= 0 (0 = all frames)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative (0 = all frames)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand replay`."""
    parser.add_argument("bag", type=Path, help="rosbag2 directory (sqlite3 or mcap)")
    parser.add_argument("--mode", choices=("offline", "live"), default="offline",
                        help="offline: pipeline on each frame; live: publish to a running node")
    parser.add_argument("--model", default="", help="checkpoint (default: the shipped model)")
    parser.add_argument("--selector", choices=SELECTORS, default=DEPLOYED.selector)
    parser.add_argument("--num-views", type=int, default=DEPLOYED.num_views)
    parser.add_argument("--fusion", choices=FUSIONS, default=DEPLOYED.fusion)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default=DEPLOYED.backend,
                        help="where the networks run (auto: onnxruntime on the CPU, as the node)")
    parser.add_argument("--fit", action=argparse.BooleanOptionalAction, default=DEPLOYED.fit,
                        help="fit the hand model to the depth after the network (issue 16; "
                             "the node's default); --no-fit: the network's joints")
    parser.add_argument("--fit-max-residual-mm", type=float,
                        default=DEPLOYED.fit_max_residual_mm,
                        help="with the fit: a hand whose fit residual is larger counts as no "
                             "hand, as in the node (its parameter fit_max_residual_m, in "
                             "metres; here in mm; 0 = off)")
    parser.add_argument("--max-hands", type=int, default=DEPLOYED.max_hands,
                        help="hands estimated per frame (the node's max_hands; 1 = the "
                             "nearest only); every hand is scored against every labelled one")
    parser.add_argument("--mirror", action="store_true",
                        help="also run the networks on the flipped image and average "
                             "(PipelineConfig.mirror; twice the networks' time)")
    parser.add_argument("--alternate-model", default="",
                        help="the node's alternate_model: a second pose model the fit may "
                             "pick per hand ('grasp': the packaged one; needs --fit)")
    parser.add_argument("--depth-topic", default=DEFAULT_DEPTH_TOPIC,
                        help="depth image topic; a CompressedImage on it or on "
                        "<topic>/compressedDepth is decoded as compressedDepth")
    parser.add_argument("--info-topic", default=DEFAULT_INFO_TOPIC)
    parser.add_argument("--camera-model", choices=CAMERA_MODELS, default="auto",
                        help="rectified: P; raw: K and D (undistorted); auto: by topic name")
    parser.add_argument("--sync-slop", type=float, default=0.0,
                        help="camera_info pairing [s]: 0 = same stamp as the depth image")
    parser.add_argument("--gt-topic", default=DEFAULT_GT_TOPIC,
                        help="vvhand_msgs/HandPose ground truth topic (else ground_truth.jsonl)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="live: 1.0 = original timing, 0 = as fast as the node answers")
    parser.add_argument("--external-node", action="store_true",
                        help="live: use a hand_pose_node that is already running")
    parser.add_argument("--namespace", default="", help="live: namespace of that node")
    parser.add_argument("--max-frames", type=_frame_count, default=0, help="0 = all frames")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for replay.json and replay.png (default: beside the bag)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    """Replay, print the summary and where the JSON and plot went."""
    cfg = ReplayConfig(
        bag=args.bag, mode=args.mode, model=args.model, selector=args.selector,
        num_views=args.num_views, fusion=args.fusion, device=args.device, fit=args.fit,
        fit_max_residual_mm=args.fit_max_residual_mm,
        mirror=args.mirror, backend=args.backend, max_hands=args.max_hands,
        alternate_model=args.alternate_model,
        depth_topic=args.depth_topic, info_topic=args.info_topic, gt_topic=args.gt_topic,
        camera_model=args.camera_model, sync_slop_s=args.sync_slop,
        rate=args.rate, out_dir=args.out, node_namespace=args.namespace,
        start_node=not args.external_node, max_frames=args.max_frames,
    )
    try:
        report, json_path, png_path = run_replay(cfg)
    except (BagError, CheckpointError, ValueError, RuntimeError) as exc:
        print(f"vvhand replay: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.to_dict(with_records=False)))
    else:
        print(format_report(report))
        print(f"report: {json_path}\nplot:   {png_path}")
        if report.contact_sheet:
            print(f"sheet:  {report.contact_sheet}")
    return 0
