"""Hand pose in a venv without torch (issue 15): the lite pipeline, packaged detector, v2 frames.

Usage (docs/architecture.md, "Without torch"): in a venv holding only numpy, scipy,
onnxruntime, pillow, pyyaml and tqdm,

    PYTHONPATH=<repo> python scripts/torch_free_check.py EXPORT_DIR FRAMES

with EXPORT_DIR written by `vvhand export-onnx` on a machine with torch. Prints the load
time, the joint error on the first FRAMES frames of the new-scenes split (localised by the
packaged detector, student-3) and whether torch was imported (it must not be).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.lite.pipeline import LiteConfig, LitePipeline


def main(export_dir: str, num_frames: int) -> int:
    """Run the check; exit status 1 when torch was imported."""
    t0 = time.perf_counter()
    pipe = LitePipeline.from_onnx(export_dir, LiteConfig(track=False, num_threads=1))
    print(f"loaded in {time.perf_counter() - t0:.2f} s; torch imported: {'torch' in sys.modules}")
    gen = SyntheticHandGenerator(SynthConfig(scene_version=2, seed=5))
    errors, ms = [], []
    for i in range(num_frames):
        f = gen.frame(i)
        r = pipe.run(f.depth_mm, f.intrinsics)
        ms.append(r.timings_ms["total"])
        if r.valid:
            errors.append(float(np.linalg.norm(r.joints_mm - f.joints_mm, axis=1).mean()))
    print(f"{len(errors)}/{num_frames} frames with a hand; joint error mean "
          f"{np.mean(errors):.2f} mm, median {np.median(errors):.2f} mm (localised, student-3); "
          f"median {np.median(ms):.1f} ms per frame (1 thread); torch imported: "
          f"{'torch' in sys.modules}")
    return 1 if "torch" in sys.modules else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
