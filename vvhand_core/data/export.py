"""Write labelled frames in the NYU, ICVL, MSRA 2015 and HANDS 2019 on-disk formats.

For checking the loaders, the registry and ``vvhand eval-model`` end to end on frames whose
truth is known (synthetic frames rendered with the data set's camera), and for handing such
frames to tools that read these formats::

    python -m vvhand_core.data.export --dataset msra --out out/msra_like --frames 100 --seed 3

renders frames 0..N-1 of the synthetic v1 scenes (``SynthConfig(seed=S)``, a hand
300-700 mm away) with the data set's camera and writes them in its layout
(``vvhand_core.data.registry``), so that ``vvhand eval-model --dataset msra --root
out/msra_like`` reads them back.

Frames must be labelled in ``hands2019_21`` or ``msra_21`` and taken with the data set's
camera (ValueError otherwise). Joints a format has and those skeletons lack are derived,
not anatomical, and never scored through ``skeletons.correspondence``: NYU and ICVL
``palm`` = mean of the wrist and the four finger MCPs, NYU ``wrist_1`` / ``wrist_2`` = the
wrist -/+ half the index-to-pinky MCP vector, ICVL ``thumb_root`` = thumb_mcp; NYU's 22
joints outside its 14 evaluation joints are written as the palm. Depth is written as each
format stores it (uint16 PNG mm; MSRA float32 mm inside the box of valid pixels).
"""

from __future__ import annotations

import argparse
import math
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from vvhand_core.camera import Intrinsics, xyz_to_uvd
from vvhand_core.data.base import DepthFrame, write_depth_png
from vvhand_core.skeletons import Skeleton, anatomical_name

FORMATS = ("nyu", "icvl", "msra", "hands2019", "synthetic")


def labels_in(frame: DepthFrame, skeleton: Skeleton) -> np.ndarray:
    """The frame's joints as ``skeleton``'s (J, 3) mm, derived joints as in the module doc."""
    if frame.skeleton.name not in ("hands2019_21", "msra_21") or frame.joints_mm is None:
        raise ValueError(f"frames must carry hands2019_21 or msra_21 labels; frame "
                         f"{frame.meta.get('frame_id')} is {frame.skeleton.name}"
                         + ("" if frame.joints_mm is not None else " without labels"))
    by_name = {n: np.asarray(frame.joints_mm[j], np.float64)
               for j, n in enumerate(frame.skeleton.joint_names)}
    mcps = [by_name[f"{f}_mcp"] for f in ("index", "middle", "ring", "pinky")]
    half = 0.5 * (by_name["index_mcp"] - by_name["pinky_mcp"])
    derived = {"palm": np.mean([by_name["wrist"], *mcps], axis=0),
               "wrist_1": by_name["wrist"] - half, "wrist_2": by_name["wrist"] + half,
               "thumb_root": by_name["thumb_mcp"]}
    out = []
    for j, name in enumerate(skeleton.joint_names):
        anatomy = anatomical_name(skeleton, j)
        out.append(by_name[anatomy] if anatomy is not None else derived[name])
    return np.asarray(out)


def _check_camera(frames: Sequence[DepthFrame], intr: Intrinsics, what: str) -> None:
    for f in frames:
        if f.intrinsics != intr:
            raise ValueError(f"{what} frames must be taken with {intr}, frame "
                             f"{f.meta.get('frame_id')} has {f.intrinsics}")


def _valid_box(depth: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the pixels with depth, half-open; the image if none."""
    rows, cols = np.nonzero(depth > 0)
    if rows.size == 0:
        return 0, 0, depth.shape[1], depth.shape[0]
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def write_nyu(frames: Sequence[DepthFrame], root: str | Path, split: str = "test") -> Path:
    """``root/split/joint_data.mat`` (one kinect, y up) + RGB-packed ``depth_1_*.png``."""
    import scipy.io

    from vvhand_core.data.nyu import NYU_EVAL_JOINTS, NYU_INTRINSICS, nyu_depth_name
    from vvhand_core.skeletons import NYU_14

    _check_camera(frames, NYU_INTRINSICS, "NYU")
    folder = Path(root) / split
    folder.mkdir(parents=True, exist_ok=True)
    xyz = np.zeros((1, len(frames), 36, 3))
    for i, f in enumerate(frames):
        joints = labels_in(f, NYU_14)
        xyz[0, i] = joints[NYU_14.index("palm")]
        xyz[0, i, list(NYU_EVAL_JOINTS)] = joints
        d = np.clip(np.rint(np.asarray(f.depth_mm, np.float64)), 0, 65535).astype(np.uint16)
        rgb = np.stack([np.zeros_like(d), d >> 8, d & 0xFF], axis=-1).astype(np.uint8)
        Image.fromarray(rgb, "RGB").save(folder / nyu_depth_name(i))
    uvd = xyz_to_uvd(xyz, NYU_INTRINSICS)
    xyz[..., 1] *= -1.0  # NYU's joint_xyz has y up
    scipy.io.savemat(folder / "joint_data.mat", {"joint_xyz": xyz, "joint_uvd": uvd})
    return folder


def write_icvl(frames: Sequence[DepthFrame], root: str | Path, split: str = "test") -> Path:
    """ICVL label files ("path u v d" x 16) + 16-bit PNGs under Depth/.

    split "test": the first half of the frames in test_seq_1, the rest in test_seq_2 (the
    registry reads both, in that order); "train": Training/labels.txt.
    """
    from vvhand_core.data.icvl import ICVL_EVAL_INTRINSICS
    from vvhand_core.skeletons import ICVL_16

    _check_camera(frames, ICVL_EVAL_INTRINSICS, "ICVL")
    folder = Path(root) / ("Testing" if split == "test" else "Training")
    if split == "test":
        half = math.ceil(len(frames) / 2)
        groups = [("test_seq_1", frames[:half]), ("test_seq_2", frames[half:])]
    else:
        groups = [("labels", frames)]
    for name, group in groups:
        lines = []
        for i, f in enumerate(group):
            rel = f"{name}/image_{i:04d}.png"
            write_depth_png(folder / "Depth" / rel, f.depth_mm)
            uvd = xyz_to_uvd(labels_in(f, ICVL_16), ICVL_EVAL_INTRINSICS)
            lines.append(rel + " " + " ".join(f"{v:.4f}" for v in uvd.reshape(-1)))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.txt").write_text("".join(ln + "\n" for ln in lines),
                                             encoding="utf-8")
    return folder


def write_msra(frames: Sequence[DepthFrame], root: str | Path,
               subjects: Sequence[str] = ("P0",)) -> Path:
    """MSRA folders: every gesture of each subject, frames filled in the community order.

    Each (subject, gesture) folder takes the next ceil(F / (17 * subjects)) frames (some
    hold none: joint.txt "0"); joint.txt stores (x, -y, -z), the box the valid pixels'.
    """
    from vvhand_core.data.msra import MSRA_GESTURES, MSRA_INTRINSICS, msra_depth_name
    from vvhand_core.skeletons import MSRA_21

    _check_camera(frames, MSRA_INTRINSICS, "MSRA")
    folders = [Path(root) / s / g for s in subjects for g in MSRA_GESTURES]
    per = max(1, math.ceil(len(frames) / len(folders)))
    for k, folder in enumerate(folders):
        group = frames[k * per:(k + 1) * per]
        folder.mkdir(parents=True, exist_ok=True)
        lines = [str(len(group))]
        for i, f in enumerate(group):
            stored = labels_in(f, MSRA_21) * np.array([1.0, -1.0, -1.0])
            lines.append(" ".join(f"{v:.6f}" for v in stored.reshape(-1)))
            depth = np.asarray(f.depth_mm, np.float32)
            left, top, right, bottom = _valid_box(depth)
            header = struct.pack("<6I", depth.shape[1], depth.shape[0], left, top, right, bottom)
            body = depth[top:bottom, left:right].astype("<f4").tobytes()
            (folder / msra_depth_name(i)).write_bytes(header + body)
        (folder / "joint.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(root)


def write_hands2019(frames: Sequence[DepthFrame], root: str | Path,
                    split: str = "training") -> Path:
    """``<split>_images/image_D*.png``, the BigHand-order annotation file and bbox file."""
    from vvhand_core.data.hands2019 import BIGHAND_TO_SKELETON, HANDS2019_INTRINSICS
    from vvhand_core.skeletons import HANDS2019_21

    _check_camera(frames, HANDS2019_INTRINSICS, "HANDS 2019")
    root = Path(root)
    ann, bbs = [], []
    for i, f in enumerate(frames):
        name = f"image_D{i + 1:08d}.png"
        write_depth_png(root / f"{split}_images" / name, f.depth_mm)
        rows = np.zeros((21, 3))
        rows[list(BIGHAND_TO_SKELETON)] = labels_in(f, HANDS2019_21)
        ann.append(name + " " + " ".join(f"{v:.4f}" for v in rows.reshape(-1)))
        left, top, right, bottom = _valid_box(np.asarray(f.depth_mm))
        bbs.append(f"{name} {left} {top} {right - left} {bottom - top}")
    (root / f"{split}_joint_annotation.txt").write_text("\n".join(ann) + "\n", encoding="utf-8")
    (root / f"{split}_bbs.txt").write_text("\n".join(bbs) + "\n", encoding="utf-8")
    return root


def export(name: str, frames: Sequence[DepthFrame], root: str | Path) -> Path:
    """Write ``frames`` in data set ``name``'s layout (one of ``FORMATS``) under ``root``."""
    if not frames:
        raise ValueError("no frames to write")
    if name == "synthetic":
        from vvhand_core.data.synthetic.io import write_frames

        write_frames(root, frames)
        return Path(root)
    writers = {"nyu": write_nyu, "icvl": write_icvl, "msra": write_msra,
               "hands2019": write_hands2019}
    if name not in writers:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(FORMATS)}")
    return writers[name](frames, root)


def synthetic_frames(name: str, num_frames: int, seed: int = 3, **config) -> list[DepthFrame]:
    """Frames 0..N-1 of synthetic v1 scenes taken with data set ``name``'s camera.

    ``SynthConfig(seed=seed, **config)`` with the registry's intrinsics for ``name`` (the
    synthetic default camera for "synthetic").
    """
    from vvhand_core.data.registry import get_spec
    from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator

    intr = get_spec(name).intrinsics
    if intr is not None:
        config = {"fx": intr.fx, "fy": intr.fy, "cx": intr.cx, "cy": intr.cy,
                  "width": intr.width, "height": intr.height, **config}
    gen = SyntheticHandGenerator(SynthConfig(seed=seed, **config))
    return [gen.frame(i) for i in range(num_frames)]


def main(argv: list[str] | None = None) -> int:
    """``python -m vvhand_core.data.export``: synthetic frames in a data set's layout."""
    parser = argparse.ArgumentParser(prog="python -m vvhand_core.data.export",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, choices=FORMATS)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--seed", type=int, default=3, help="synthetic seed (3: test split)")
    parser.add_argument("--background", default="random", help="none | wall | table | random")
    args = parser.parse_args(argv)
    frames = synthetic_frames(args.dataset, args.frames, args.seed, background=args.background)
    path = export(args.dataset, frames, args.out)
    print(f"wrote {len(frames)} frames in the {args.dataset} layout to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
