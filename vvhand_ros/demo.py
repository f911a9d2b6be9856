"""`make demo`: write a sample bag, run hand_pose_node on it live, print accuracy and speed.

Steps: (1) a synthetic bag with ground truth (`vvhand synth-bag --scenes 2`: a person
moving a left or right hand in a room, arm and torso in view), written once to out/demo/;
(2) `vvhand replay --mode live`: a hand_pose_node child process with the shipped default
model, the bag published onto its topics as fast as the node answers
(every frame is processed, so the accuracy is over all frames); (3) the summary, the plot
and the contact sheet (worst / median / best frames); (4) the same with two hands: stills
of the v3 scenes with two labelled hands (`vvhand synth-bag --scenes 3 --two-hands`,
``--two-hand-frames``; 0 = skip), every hand the node publishes scored against every
labelled hand (hands reported, extra hands, per-hand error); most of these hands hold or
touch something (power, pinch, tripod, lateral, hook grasps, a flat or pressing hand on
the table), counted before the replay.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from vvhand_core.assets import default_model_path
from vvhand_core.deployed import DEPLOYED
from vvhand_core.frame_config import SELECTORS
from vvhand_core.load import BACKEND_CHOICES
from vvhand_ros.replay import ReplayConfig, format_report, run_replay
from vvhand_ros.synth_bag import held_objects, v3_stills, write_synthetic_bag

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Run the demo; exit status 1 with one message when something is missing."""
    parser = argparse.ArgumentParser(prog="python -m vvhand_ros.demo", description=__doc__)
    parser.add_argument("--frames", type=int, default=60, help="frames in the sample bag")
    parser.add_argument("--seed", type=int, default=7, help="seed of the sample motion")
    parser.add_argument("--scenes", type=int, choices=(1, 2), default=2,
                        help="synthetic scene version of the bag (2: person scenes)")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "demo")
    parser.add_argument("--model", default="", help="checkpoint (default: the shipped model)")
    parser.add_argument("--num-views", type=int, default=DEPLOYED.num_views)
    parser.add_argument("--selector", choices=SELECTORS, default=DEPLOYED.selector)
    parser.add_argument("--fit", action=argparse.BooleanOptionalAction, default=DEPLOYED.fit,
                        help="the node fits the hand model to the depth after the network "
                             "(its default); --no-fit: the network's joints")
    parser.add_argument("--mirror", action="store_true",
                        help="the node also runs the networks on the flipped image (mirror)")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default=DEPLOYED.backend,
                        help="the node's backend (auto: onnxruntime on the CPU)")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="1.0 = the bag's 15 frames/s; 0 = as fast as the node answers")
    parser.add_argument("--two-hand-frames", type=int, default=20,
                        help="frames of the two-hand bag (v3 stills, seed 9); 0 = skip it")
    args = parser.parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

    model = args.model or str(default_model_path())
    if not Path(model).is_file():
        print(f"vvhand demo: no model at {model}. Train one (docs/results.md) or pass --model.",
              file=sys.stderr)
        return 1
    steps = 4 if args.two_hand_frames > 0 else 3
    bag = args.out / f"sample_bag_v{args.scenes}_{args.frames}f_seed{args.seed}"
    _write_once(bag, f"[1/{steps}] writing a sample bag of a moving synthetic hand",
                args.out, lambda: write_synthetic_bag(bag, args.frames, seed=args.seed,
                                                      scene_version=args.scenes))
    print(f"[2/{steps}] starting hand_pose_node and replaying the bag live")
    suffix = "_fit" * args.fit + "_mirror" * args.mirror
    _replay(args, model, bag, args.out / f"replay{suffix}", f"[3/{steps}] result")
    if steps == 4:
        two = args.out / f"sample_bag_v3_two_hands_{args.two_hand_frames}f_seed9"
        _write_once(two, "[4/4] two hands: writing stills with two labelled hands", args.out,
                    lambda: write_synthetic_bag(two, args.two_hand_frames, seed=9,
                                                scene_version=3, two_hands=True))
        grasps = held_objects(v3_stills(args.two_hand_frames, seed=9, two_hands=True))
        print("two hands: labelled hands per grasp (hands that hold or touch something: "
              f"{sum(n for g, n in grasps.items() if g != 'none')} of {sum(grasps.values())}): "
              + ", ".join(f"{g} {n}" for g, n in grasps.items()))
        _replay(args, model, two, args.out / f"replay_two_hands{suffix}", "two hands: result")
    return 0


def _write_once(bag: Path, what: str, out: Path, write) -> None:
    """Write ``bag`` unless a complete one is there."""
    if (bag / "metadata.yaml").is_file():
        print(f"{what}: already there: {bag}")
        return
    shutil.rmtree(bag, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{what}: {bag}")
    write()


def _replay(args: argparse.Namespace, model: str, bag: Path, out_dir: Path, title: str
            ) -> None:
    """Replay ``bag`` live through hand_pose_node and print ``title`` and the report."""
    cfg = ReplayConfig(bag=bag, mode="live", model=model, selector=args.selector,
                       num_views=args.num_views, rate=args.rate, fit=args.fit,
                       mirror=args.mirror, backend=args.backend, out_dir=out_dir)
    report, json_path, png_path = run_replay(cfg)
    print(title)
    print(format_report(report))
    print(f"report: {json_path}")
    print(f"plot:   {png_path}")
    if report.contact_sheet:
        print(f"sheet:  {report.contact_sheet}")


if __name__ == "__main__":
    sys.exit(main())
