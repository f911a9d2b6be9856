"""The hand-model fit in the torch-free LitePipeline (LiteConfig.fit, vvhand_core.fit.stage)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
from no_torch import BLOCK_TORCH

from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.fit import FitConfig
from vvhand_core.fit.stage import FitStage
from vvhand_core.lite.pipeline import LiteConfig, LitePipeline
from vvhand_core.localise import oracle_centre

pytest.importorskip("onnxruntime")
FIT = FitConfig(iterations=4)

# in a process where torch cannot be imported: the lite pipeline with the fit, one frame
NO_TORCH = BLOCK_TORCH + r"""
import json, sys, types
import numpy as np

from vvhand_core.fit import FitConfig
from vvhand_core.lite.pipeline import LiteConfig, LitePipeline

data = np.load(sys.argv[2])
intr = types.SimpleNamespace(**{k: data[k].item() for k in
                                ("fx", "fy", "cx", "cy", "width", "height")})
pipe = LitePipeline.from_onnx(sys.argv[1], LiteConfig(track=False, localiser="geometric",
                                                       num_threads=1,
                                                       fit=FitConfig(iterations=4)))
r = pipe.run(data["depth"], intr, data["centre"])
assert "torch" not in sys.modules
print(json.dumps({"joints": r.joints_mm.tolist(), "residual": r.fit.residual_mm,
                  "angles": r.fit.angles_deg.tolist()}))
"""


@pytest.fixture(scope="module")
def frame():
    f = SyntheticHandGenerator(SynthConfig(seed=21, background="wall")).frame(0)
    return f.depth_mm, f.intrinsics, oracle_centre(f.joints_mm)


def test_the_lite_fit_is_the_fit_stage_on_its_own_network_joints(lite_export_dir, frame):
    depth, intr, centre = frame
    lite = LitePipeline.from_onnx(lite_export_dir, LiteConfig(track=False, localiser="geometric",
                                                         num_threads=1))
    plain = lite.run(depth, intr, centre)
    assert plain.valid and plain.fit is None and plain.timings_ms["fit"] == 0.0
    expected = copy.copy(plain)
    FitStage(FIT).apply(expected, depth, intr)
    lite.configure(fit=FIT)
    fitted = lite.run(depth, intr, centre)
    assert fitted.valid and fitted.fit is not None and fitted.timings_ms["fit"] > 0.0
    np.testing.assert_array_equal(fitted.network_joints_mm, plain.joints_mm)
    np.testing.assert_array_equal(fitted.joints_mm, expected.joints_mm)
    assert fitted.fit.residual_mm == expected.fit.residual_mm
    # the residual limit: reported as no hand, the fit kept for diagnosis
    lite.configure(fit=FitConfig(iterations=4, max_residual_mm=1e-3))
    dropped = lite.run(depth, intr, centre)
    assert not dropped.valid and "not taken for a hand" in dropped.message
    assert dropped.fit is not None
    with pytest.raises(ValueError, match="fit must be None or a FitConfig"):
        lite.configure(fit="on")
    lite.configure(fit=None)
    assert lite.run(depth, intr, centre).fit is None


def test_the_lite_fit_runs_without_torch(lite_export_dir, frame, tmp_path):
    depth, intr, centre = frame
    lite = LitePipeline.from_onnx(lite_export_dir, LiteConfig(track=False, localiser="geometric",
                                                         num_threads=1, fit=FIT))
    here = lite.run(depth, intr, centre)
    np.savez(tmp_path / "frame.npz", depth=depth, centre=centre, fx=intr.fx, fy=intr.fy,
             cx=intr.cx, cy=intr.cy, width=intr.width, height=intr.height)
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, str(lite_export_dir),
                           str(tmp_path / "frame.npz")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    np.testing.assert_allclose(got["joints"], here.joints_mm, atol=1e-4)
    np.testing.assert_allclose(got["angles"], here.fit.angles_deg, atol=1e-6)
    assert got["residual"] == pytest.approx(here.fit.residual_mm, abs=1e-9)


def test_the_lite_pipeline_takes_an_alternate_model(lite_export_dir, frame):
    """The torch-free pipeline runs the alternate's networks and the fit picks, as torch's."""
    depth, intr, centre = frame
    cfg = LiteConfig(track=False, localiser="geometric", num_threads=1, fit=FIT)
    lite = LitePipeline.from_onnx(lite_export_dir, cfg)
    other = LitePipeline.from_onnx(lite_export_dir, LiteConfig(track=False, num_threads=1))
    lite.set_alternate(other)
    assert other.config.fit is None and other.config.localiser == "geometric"
    r = lite.run(depth, intr, centre)
    assert r.valid and r.alternate is not None
    # the same networks: the same estimate, fitted twice with the same residual; the first wins
    np.testing.assert_array_equal(r.alternate.joints_mm, r.network_joints_mm)
    assert not r.alternate_chosen
    with pytest.raises(ValueError, match="needs the hand-model fit"):
        lite.configure(fit=None)


NO_TORCH_ALTERNATE = BLOCK_TORCH + r"""
import sys
from vvhand_core.fit import FitConfig
from vvhand_core.load import load_pipeline

opts = {"backend": "onnxruntime", "localiser": "geometric", "track": False,
        "fit": FitConfig(iterations=4)}
pipe = load_pipeline(sys.argv[1], opts, 1, sys.argv[1])
assert type(pipe.alternate).__name__ == "LitePipeline" and pipe.alternate.config.fit is None
try:
    load_pipeline(sys.argv[1], opts, 1, sys.argv[2])
except ValueError as exc:
    assert str(exc).startswith(f"alternate_model {sys.argv[2]}: "), exc
    assert "export-onnx" in str(exc), exc
else:
    raise AssertionError("a checkpoint as the alternate was taken without torch")
assert "torch" not in sys.modules
print("ok")
"""


def test_without_torch_the_alternate_is_an_export_directory(lite_export_dir, tmp_path):
    proc = subprocess.run([sys.executable, "-c", NO_TORCH_ALTERNATE, str(lite_export_dir),
                           str(tmp_path / "grasp_model.pt")], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
