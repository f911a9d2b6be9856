"""`vvhand synth`: write a synthetic hand dataset (depth PNGs + hands2019_21 joints) to a folder.

    vvhand synth --out data/synth --frames 1000 --seed 0

Frame i depends only on (seed, i): two runs with the same seed write identical files. Read
the folder back with ``vvhand_core.data.synthetic.io.SyntheticDataset``.
"""

from __future__ import annotations

import argparse
import sys
import time

from vvhand_core.data.synthetic.generator import SynthConfig
from vvhand_core.data.synthetic.io import write_dataset
from vvhand_core.data.synthetic.sensor import BACKGROUNDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `vvhand synth`."""
    parser.add_argument("--out", required=True, help="output folder (created if needed)")
    parser.add_argument("--frames", type=int, required=True, help="number of frames")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument(
        "--background",
        choices=BACKGROUNDS,
        default="random",
        help="wall / table / none behind the hand, or random per frame",
    )
    parser.add_argument(
        "--clean",
        action="store_true",
        help="no sensor noise, dropouts or quantisation noise (exact depth, "
        "still stored as whole mm; versions 2 and 3: sensor 'ideal')",
    )
    parser.add_argument(
        "--scene-version",
        type=int,
        choices=(1, 2, 3),
        default=1,
        help="1: hand alone, fixed camera (the old splits); 2: person scenes, a camera and "
        "sensor per frame; 3: hands holding and touching things at a table, third-person, "
        "egocentric or overhead camera, every hand labelled",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Generate and write the dataset; exit status 0, or 2 on bad arguments."""
    if args.frames <= 0:
        print("vvhand synth: --frames must be > 0", file=sys.stderr)
        return 2
    config = SynthConfig(seed=args.seed, background=args.background,
                         scene_version=args.scene_version)  # fmt: skip
    if args.clean:
        config.noise_sigma_mm = 0.0
        config.edge_dropout = 0.0
        config.random_dropout = 0.0
        config.sensor = "ideal"
    t0 = time.perf_counter()
    count = write_dataset(args.out, config, args.frames, progress=not args.no_progress)
    dt = time.perf_counter() - t0
    print(f"wrote {count} frames to {args.out} ({1000 * dt / count:.0f} ms/frame)", file=sys.stderr)
    return 0
