"""The hand detector's shipped ONNX files (detector.shipped) and the detector without torch.

- The shipped files are what `vvhand detector export-onnx` writes for the shipped weights
  today (the same bytes with the torch version that exported them), so they cannot drift
  from hand_detector.pt; small; installed (pyproject.toml package-data).
- A missing, changed or stale file is one DetectorOnnxError naming it (no fallback).
- In a process where importing torch fails, DetectorLocaliser (onnxruntime, packaged
  weights) finds the same centres as this process's torch and onnxruntime runtimes on v2
  frames: within 0.01 mm of torch (test_detector_runtime's tolerance); vs onnxruntime
  here only numpy's float32 sigmoid differs from torch's (<= 2 ulps), so 1e-3 mm.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from no_torch import BLOCK_TORCH

from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.detector.localiser import (
    DetectorLocaliser,
    DetectorLocaliserConfig,
    default_weights_path,
)
from vvhand_core.detector.runtime import OrtRunner
from vvhand_core.detector.shipped import (
    NETWORKS,
    DetectorOnnxError,
    description_path,
    file_path,
    load_exported,
    write_exported,
)

pytest.importorskip("onnxruntime")
REPO = Path(__file__).resolve().parents[1]
WEIGHTS = default_weights_path()
V2 = {"scene_version": 2, "seed": 5}
FRAMES = 4


def _assert_same_network(a_path: Path, b_path: Path) -> None:
    """Same nodes and initialisers; values equal to float32 rounding (folding BatchNorm into
    the convolutions rounds differently on another CPU: 1-2 ulp, seen on two machines)."""
    import onnx
    from onnx import numpy_helper

    a, b = onnx.load(str(a_path)), onnx.load(str(b_path))
    assert [n.op_type for n in a.graph.node] == [n.op_type for n in b.graph.node], a_path.name
    ia = {i.name: numpy_helper.to_array(i) for i in a.graph.initializer}
    ib = {i.name: numpy_helper.to_array(i) for i in b.graph.initializer}
    assert ia.keys() == ib.keys(), a_path.name
    for key, value in ia.items():
        np.testing.assert_allclose(value, ib[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_shipped_files_equal_a_fresh_export(tmp_path):
    shipped = json.loads(description_path(WEIGHTS).read_text())
    copy = Path(shutil.copy(WEIGHTS, tmp_path / WEIGHTS.name))
    fresh = write_exported(copy, verify=False)
    assert fresh["weights"] == shipped["weights"]  # exported from the shipped weights
    assert fresh["config"] == shipped["config"]
    assert set(shipped["networks"]) == set(NETWORKS)
    same_torch = shipped["exporter"]["torch"] == torch.__version__
    for name in NETWORKS:
        data = file_path(WEIGHTS, name).read_bytes()
        assert len(data) < 16e6 and shipped["networks"][name]["bytes"] == len(data)
        if same_torch:  # the same graph; the same numbers up to the last bit of BatchNorm
            _assert_same_network(file_path(WEIGHTS, name), file_path(copy, name))  # folding
    if not same_torch:  # another torch may serialise differently: the same numbers then
        a = DetectorLocaliser(DetectorLocaliserConfig(runtime="onnxruntime"))
        b = DetectorLocaliser(DetectorLocaliserConfig(weights=str(copy), runtime="onnxruntime"))
        rng = np.random.default_rng(0)
        x = rng.random((1, 3, 121, 162), dtype=np.float32)
        p = rng.random((3, 3, 48, 48), dtype=np.float32)
        np.testing.assert_allclose(a.runner.heat(x), b.runner.heat(x), atol=1e-4)
        np.testing.assert_allclose(a.runner.refine(p), b.runner.refine(p), atol=1e-4)
    setup = (REPO / "pyproject.toml").read_text()
    assert '"assets/*.onnx"' in setup and '"assets/*.json"' in setup


def test_packaged_detector_loads_its_shipped_files():
    loc = DetectorLocaliser(DetectorLocaliserConfig(runtime="auto"))
    assert isinstance(loc.runner, OrtRunner) and loc.net is None and loc.has_refiner
    assert loc.config.focal_px == 120.0


@pytest.fixture
def exported(tmp_path):
    """A copy of the packaged weights and their export, to break."""
    for path in (WEIGHTS, description_path(WEIGHTS), *(file_path(WEIGHTS, n) for n in NETWORKS)):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / WEIGHTS.name


def _detector(weights, runtime="onnxruntime"):
    return DetectorLocaliser(DetectorLocaliserConfig(weights=str(weights), runtime=runtime))


def test_broken_files_give_one_clear_error(exported):
    assert _detector(exported).net is None  # intact: loaded from the export, not exported
    heat, refine = file_path(exported, "heat"), file_path(exported, "refine")
    data = refine.read_bytes()
    refine.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    for runtime in ("onnxruntime", "auto"):  # never a silent fallback
        with pytest.raises(DetectorOnnxError, match=f"{refine.name}.*sha256 mismatch"):
            _detector(exported, runtime)
    refine.write_bytes(data)
    heat.unlink()
    with pytest.raises(DetectorOnnxError, match=f"{heat.name}: missing.*export-onnx"):
        _detector(exported)
    exported.write_bytes(exported.read_bytes() + b"\0")  # weights changed since the export
    with pytest.raises(DetectorOnnxError, match="stale.*export-onnx"):
        _detector(exported)
    desc = description_path(exported)
    desc.write_text("{not json")
    with pytest.raises(DetectorOnnxError, match=f"{desc.name}: cannot be read"):
        _detector(exported)
    desc.unlink()
    with pytest.raises(DetectorOnnxError, match=f"{desc.name}: missing"):
        load_exported(exported)


NO_TORCH = BLOCK_TORCH + r"""
import json, sys

from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.detector.localiser import DetectorLocaliser, DetectorLocaliserConfig

loc = DetectorLocaliser(DetectorLocaliserConfig(use_tracking=False, num_threads=1))
gen = SyntheticHandGenerator(SynthConfig.from_dict(json.loads(sys.argv[1])))
out = {"runtime": loc.runtime, "frames": [], "errors": {}}
for i in range(int(sys.argv[2])):
    f = gen.frame(i)
    c = loc.locate(f.depth_mm, f.intrinsics)
    cands = loc.candidates(f.depth_mm, f.intrinsics, 0.05)
    out["frames"].append({"centre": None if c is None else c.tolist(),
                          "candidates": [[s, x.tolist()] for s, x in cands]})
for name, cfg in (("custom", {"weights": sys.argv[3]}), ("torch", {"runtime": "torch"})):
    try:
        DetectorLocaliser(DetectorLocaliserConfig(**cfg))
    except ValueError as exc:
        out["errors"][name] = str(exc)
assert "torch" not in sys.modules
print(json.dumps(out))
"""


def test_detector_without_torch_finds_the_same_centres(tmp_path):
    custom = Path(shutil.copy(WEIGHTS, tmp_path / "custom.pt"))  # no export next to it
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, json.dumps(V2), str(FRAMES),
                           str(custom)], capture_output=True, text=True, timeout=300,
                          cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["runtime"] == "onnxruntime"
    assert "needs torch" in got["errors"]["custom"] and "custom.pt" in got["errors"]["custom"]
    assert "needs torch" in got["errors"]["torch"]
    torch.set_num_threads(1)
    here = {rt: DetectorLocaliser(DetectorLocaliserConfig(use_tracking=False, runtime=rt))
            for rt in ("torch", "onnxruntime")}
    gen = SyntheticHandGenerator(SynthConfig.from_dict(V2))
    located, worst = 0, {"torch": 0.0, "onnxruntime": 0.0}
    for i, g in enumerate(got["frames"]):
        f = gen.frame(i)
        for rt, tol in (("torch", 0.01), ("onnxruntime", 1e-3)):
            c = here[rt].locate(f.depth_mm, f.intrinsics)
            assert (c is None) == (g["centre"] is None), (i, rt)
            cands = here[rt].candidates(f.depth_mm, f.intrinsics, 0.05)
            assert len(cands) == len(g["candidates"]), (i, rt)
            for (s, x), (gs, gx) in zip(cands, g["candidates"]):
                assert gs == pytest.approx(s, abs=1e-4)
                worst[rt] = max(worst[rt], float(np.abs(np.asarray(gx) - x).max()))
            if c is not None:
                worst[rt] = max(worst[rt], float(np.abs(np.asarray(g["centre"]) - c).max()))
            assert worst[rt] <= tol, (i, rt, worst)
        located += g["centre"] is not None
    print(f"max |no-torch - here| mm: {worst}")
    assert located >= FRAMES - 1
