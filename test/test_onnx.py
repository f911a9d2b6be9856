"""ONNX export and the onnxruntime backend: metadata, parity with torch, bad directories,
the ONNX runner without torch, and the node running the onnxruntime backend.

Tolerance: both backends run the same float32 networks on the same crops and renders
(localisation, crop, rendering and fusion are the same torch code); they differ only in
the order the float32 kernels sum in (onnxruntime fuses BatchNorm into the convolutions,
and A2J's softmax-weighted sum runs over 1,936 anchors). Measured on these frames: joints
differ by at most 2.4e-4 mm (a few float32 steps at 400 mm; 6.5e-4 mm with the shipped
trained model on 8 synthetic frames), logits by < 1e-6; TOL_MM = 0.01 mm leaves a >15x
margin for other CPUs' kernels and is still far below anything an error table shows (and
50x below the 0.5 mm the GPU/CPU parity test allows).
A network that differs (another model's A2J swapped in) must break it: checked below.

The test model is random with re-initialised A2J heads (:func:`random_model`): with the
library's initialisation (head outputs ~1e-3) an untrained A2J puts every joint at one
point and the untrained teacher scores the 25 views within 1e-5 of each other, ties that
rounding may order either way; with these heads the joints spread over ~5 mm and the
teacher's top-N margins are > 1e-3 (> 1000x the backends' logit difference), so equal
selected views and weights are a real check.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from no_torch import BLOCK_TORCH
from random_model import random_model

from vvhand_core import cli
from vvhand_core.checkpoint import load_checkpoint
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.localise import oracle_centre
from vvhand_core.onnx_model import METADATA_FILE, OnnxModelError, OnnxNetworks, file_sha256
from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline
from vvhand_core.skeletons import HANDS2019_21
from vvhand_core.views import view_grid

ort = pytest.importorskip("onnxruntime", reason="the onnxruntime backend needs onnxruntime "
                                                "(pinned in requirements/base.txt)")

TOL_MM = 0.01  # max |joints onnxruntime - joints torch| (see the module doc)
TOL_LOGIT = 1e-4
MODES = (("student", 3), ("teacher", 3), ("uniform", 9))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small random checkpoint and its export through `vvhand export-onnx`."""
    d = tmp_path_factory.mktemp("onnx")
    ckpt = random_model(d / "m.pt", seed=5)
    out = d / "export"
    assert cli.main(["export-onnx", str(ckpt), str(out)]) == 0
    return ckpt, out


@pytest.fixture(scope="module")
def frames():
    """Four synthetic frames of one camera and their (oracle) hand centres."""
    gen = SyntheticHandGenerator(SynthConfig(seed=21, background="wall"))
    fs = [gen.frame(i) for i in range(4)]
    depth = np.stack([f.depth_mm for f in fs])
    centres = np.stack([oracle_centre(f.joints_mm) for f in fs])
    return depth, fs[0].intrinsics, centres


def config(backend, selector="student", n=3):
    return PipelineConfig(device="cpu", renderer="torch", track=False, backend=backend,
                          selector=selector, num_views=n)


def test_export_writes_networks_and_metadata(model):
    ckpt, out = model
    meta = json.loads((out / METADATA_FILE).read_text())
    assert meta["format"] == "vvhand-onnx" and meta["version"] == 1
    assert meta["skeleton"]["joint_names"] == list(HANDS2019_21.joint_names)
    assert meta["skeleton"]["parents"] == list(HANDS2019_21.parents)
    assert meta["cube_mm"] == 250.0 and meta["crop_size"] == 176
    assert meta["num_candidates"] == 25
    assert np.allclose(meta["view_grid_deg"], view_grid(25).numpy())
    assert meta["source"]["sha256"] == file_sha256(ckpt)
    assert meta["source"]["meta"]["seed"] == 5
    nets = meta["networks"]
    assert nets["student"]["inputs"] == {"crop": ["batch", 1, 176, 176]}
    assert nets["student"]["outputs"] == {"logits": ["batch", 25]}
    assert nets["a2j"]["outputs"]["uvd"] == ["views", 21, 3]
    assert nets["teacher"]["inputs"]["features"] == ["batch", "views", 21, 64, 11, 11]
    for name, entry in nets.items():
        assert file_sha256(out / entry["file"]) == entry["sha256"]
        sess = ort.InferenceSession(str(out / entry["file"]), providers=["CPUExecutionProvider"])
        props = json.loads(sess.get_modelmeta().custom_metadata_map["vvhand"])
        assert props["network"] == name and props["cube_mm"] == 250.0
        assert props["skeleton"]["joint_names"] == list(HANDS2019_21.joint_names)
        assert props["source_sha256"] == file_sha256(ckpt)
        assert props["inputs"] == entry["inputs"]
    diffs = meta["verification"]["max_abs_diff_on_random_inputs"]
    assert set(diffs) == {"student_logits", "a2j_uvd", "a2j_uvd_only", "a2j_teacher_input",
                          "teacher_logits"}
    assert max(diffs.values()) < 1e-3
    assert nets["a2j_uvd"]["outputs"] == {"uvd": ["views", 21, 3]}


def test_uvd_only_graph_is_used_and_optional(model, frames, tmp_path):
    """Student mode runs A2J without the teacher's input; an export without it still loads."""
    _, out = model
    depth, intr, centres = frames
    nets = OnnxNetworks.load(out, num_threads=1)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 1, 176, 176)).astype(np.float32)
    full, feats = nets.a2j(x, features=True)
    only, none = nets.a2j(x)
    assert none is None and feats is not None and np.abs(full - only).max() <= 1e-4
    old = tmp_path / "old_export"
    shutil.copytree(out, old)
    (old / "a2j_uvd.onnx").unlink()
    meta = json.loads((old / METADATA_FILE).read_text())
    del meta["networks"]["a2j_uvd"]
    (old / METADATA_FILE).write_text(json.dumps(meta))
    assert "a2j_uvd" not in OnnxNetworks.load(old, num_threads=1).sessions
    a = VirtualViewPipeline.from_onnx(out, config("onnxruntime")).run_batch(depth, intr, centres)
    b = VirtualViewPipeline.from_onnx(old, config("onnxruntime")).run_batch(depth, intr, centres)
    assert _compare(a, b) <= 1e-4


def _compare(a, b):
    """Max joint difference [mm] of two result lists; views must be the same."""
    worst = 0.0
    for ra, rb in zip(a, b, strict=True):
        assert ra.valid and rb.valid, (ra.message, rb.message)
        assert ra.selected_views.tolist() == rb.selected_views.tolist()
        assert np.allclose(ra.logits, rb.logits, atol=TOL_LOGIT)
        assert np.allclose(ra.weights, rb.weights, atol=TOL_LOGIT)
        worst = max(worst, float(np.abs(ra.joints_mm - rb.joints_mm).max()))
    return worst


def test_onnxruntime_matches_torch(model, frames):
    ckpt, out = model
    depth, intr, centres = frames
    torch_pipe = VirtualViewPipeline.from_checkpoint(ckpt, config("torch"))
    ort_pipe = VirtualViewPipeline.from_checkpoint(out, config("onnxruntime"))
    assert ort_pipe.a2j is None and ort_pipe.config.backend == "onnxruntime"
    worst = {}
    for selector, n in MODES:
        torch_pipe.configure(selector=selector, num_views=n)
        ort_pipe.configure(selector=selector, num_views=n)
        ref = torch_pipe.run_batch(depth, intr, centres)
        got = ort_pipe.run_batch(depth, intr, centres)
        worst[f"{selector}-{n}"] = _compare(ref, got)
        assert worst[f"{selector}-{n}"] <= TOL_MM
        # one frame at a time (batch 1) gives the batch's answer
        single = ort_pipe.run(depth[1], intr, centres[1])
        assert np.allclose(single.joints_mm, got[1].joints_mm, atol=TOL_MM)
    print(f"max |joints onnxruntime - torch| [mm] over {len(depth)} frames: {worst}")

    # the same pipeline switches backend: ONNX exported in memory == the exported directory
    torch_pipe.configure(selector="student", num_views=3, backend="onnxruntime")
    ort_pipe.configure(selector="student", num_views=3)
    mem, disk = torch_pipe.run_batch(depth, intr, centres), ort_pipe.run_batch(depth, intr, centres)
    assert _compare(mem, disk) <= 1e-4
    torch_pipe.configure(backend="torch")
    assert _compare(torch_pipe.run_batch(depth, intr, centres), mem) <= TOL_MM


def test_a_different_network_breaks_the_tolerance(model, frames, tmp_path):
    """The comparison can fail: another model's A2J in the directory moves the joints."""
    ckpt, out = model
    depth, intr, centres = frames
    other = tmp_path / "other"
    assert cli.main(["export-onnx", str(random_model(tmp_path / "o.pt", seed=6)), str(other),
                     "--no-check"]) == 0
    swapped = tmp_path / "swapped"
    shutil.copytree(out, swapped)
    meta = json.loads((swapped / METADATA_FILE).read_text())
    for name in ("a2j", "a2j_uvd"):
        shutil.copy(other / f"{name}.onnx", swapped / f"{name}.onnx")
        meta["networks"][name]["sha256"] = file_sha256(swapped / f"{name}.onnx")
    (swapped / METADATA_FILE).write_text(json.dumps(meta))
    ref = VirtualViewPipeline.from_checkpoint(ckpt, config("torch")).run_batch(depth, intr,
                                                                                centres)
    got = VirtualViewPipeline.from_checkpoint(swapped, config("onnxruntime")).run_batch(
        depth, intr, centres)
    assert max(float(np.abs(a.joints_mm - b.joints_mm).max()) for a, b in zip(ref, got)) \
        > 100 * TOL_MM


def _set(*keys_value):
    *keys, value = keys_value

    def edit(meta):
        for k in keys[:-1]:
            meta = meta[k]
        meta[keys[-1]] = value
    return edit


MALFORMED = {  # description fields of the wrong type: one OnnxModelError, no TypeError
    "grid_number": _set("view_grid_deg", 25),
    "outputs_null": _set("networks", "a2j", "outputs", None),
    "file_path": _set("networks", "student", "file", "../../etc/passwd"),
    "cube_text": _set("cube_mm", "250"),
    "skeleton_names_number": _set("skeleton", "joint_names", 21),
}


def _break(tmp_path, out, how):
    d = tmp_path / how
    shutil.copytree(out, d)
    meta_file = d / METADATA_FILE
    if how == "no_json":
        meta_file.unlink()
    elif how == "corrupt_json":
        meta_file.write_text(meta_file.read_text()[:50])
    elif how == "other_format":
        meta_file.write_text(json.dumps({"format": "something-else"}))
    elif how == "missing_file":
        (d / "teacher.onnx").unlink()
    elif how == "truncated":
        data = (d / "a2j.onnx").read_bytes()
        (d / "a2j.onnx").write_bytes(data[: len(data) // 2])
    elif how == "truncated_same_sha":  # corrupt, and the description updated to match
        data = (d / "a2j.onnx").read_bytes()
        (d / "a2j.onnx").write_bytes(data[: len(data) // 2])
        meta = json.loads(meta_file.read_text())
        meta["networks"]["a2j"]["sha256"] = file_sha256(d / "a2j.onnx")
        meta_file.write_text(json.dumps(meta))
    elif how in MALFORMED:
        meta = json.loads(meta_file.read_text())
        MALFORMED[how](meta)
        meta_file.write_text(json.dumps(meta))
    elif how == "other_skeleton":
        meta = json.loads(meta_file.read_text())
        meta["skeleton"]["joint_names"] = meta["skeleton"]["joint_names"][::-1]
        meta_file.write_text(json.dumps(meta))
    return d


@pytest.mark.parametrize("how,message", [
    ("no_json", "no vvhand_onnx.json"),
    ("corrupt_json", "cannot be read"),
    ("other_format", "not a vvhand ONNX description"),
    ("missing_file", "teacher.onnx (teacher) is missing"),
    ("truncated", "sha256 mismatch"),
    ("truncated_same_sha", "a2j cannot be loaded by onnxruntime"),
    ("other_skeleton", "joint order differs"),
    ("grid_number", "malformed: view_grid_deg must be a list"),
    ("outputs_null", "malformed: networks.a2j.outputs must map names to shapes"),
    ("file_path", "malformed: networks.student.file must be a file name"),
    ("cube_text", "malformed: cube_mm must be a number > 0"),
    ("skeleton_names_number", "skeleton"),
])
def test_bad_directories_give_one_clear_error(model, tmp_path, how, message):
    _, out = model
    bad = _break(tmp_path, out, how)
    pattern = "ONNX model directory .*" + re.escape(message)
    with pytest.raises(OnnxModelError, match=pattern) as info:
        VirtualViewPipeline.from_checkpoint(bad, config("onnxruntime"))
    assert str(bad) in str(info.value)
    assert isinstance(info.value, ValueError)  # the node and replay report ValueErrors


def test_backend_errors(model, tmp_path):
    ckpt, out = model
    with pytest.raises(OnnxModelError, match="does not exist"):
        VirtualViewPipeline.from_onnx(tmp_path / "missing", config("onnxruntime"))
    with pytest.raises(OnnxModelError, match="is not a directory"):
        VirtualViewPipeline.from_onnx(ckpt, config("onnxruntime"))
    with pytest.raises(OnnxModelError, match="runs with backend 'onnxruntime', not 'torch'"):
        VirtualViewPipeline.from_checkpoint(out, config("torch"))
    with pytest.raises(ValueError, match=r"backend must be one of \('torch', 'onnxruntime'\)"):
        VirtualViewPipeline.from_checkpoint(ckpt, config("tensorrt"))
    pipe = VirtualViewPipeline.from_checkpoint(out)  # no config: onnxruntime, trained cube
    assert pipe.config.backend == "onnxruntime" and pipe.config.cube_mm == 250.0
    with pytest.raises(ValueError, match="backend 'torch' needs the torch networks"):
        pipe.configure(backend="torch")
    assert pipe.config.backend == "onnxruntime"  # a refused change leaves the pipeline as it was


def test_export_cli_reports_a_bad_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert cli.main(["export-onnx", str(bad), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "vvhand export-onnx: checkpoint" in err and str(bad) in err


def test_bench_pipeline_reports_both_backends(tmp_path, monkeypatch):
    import argparse

    from vvhand_core.benchmarks import pipeline as bench

    monkeypatch.setenv("VVHAND_RESULTS", str(tmp_path / "results.md"))
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--backbones", "resnet18", "--modes", "student-3", "--frames", "1",
                              "--warmup", "0", "--width", "0.125", "--device", "cpu",
                              "--renderer", "torch"])  # --onnx-modes: student-3 by default
    assert bench.run(args) == 0
    text = (tmp_path / "results.md").read_text()
    assert "| resnet18 | student-3 | torch |" in text
    assert "| resnet18 | student-3 | onnxruntime |" in text
    assert "| resnet18 | student-3 | lite |" in text
    assert "resnet18 student-3: onnxruntime " in text and "onnxruntime / torch = " in text
    assert "resnet18 student-3: lite " in text and "lite / torch = " in text


def test_sessions_do_not_spin():
    """Pool threads that busy-wait after a run take the 2 cores from the stages between the
    networks (docs/results.md, "Pipeline speed"): the sessions are made without spinning."""
    from vvhand_core.onnx_model import session_options

    so = session_options(2)
    assert so.intra_op_num_threads == 2
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert so.get_session_config_entry("session.inter_op.allow_spinning") == "0"


# The ONNX runner imports and runs in a process where torch cannot be imported.
NO_TORCH = BLOCK_TORCH + r"""
import json, sys
import numpy as np

from vvhand_core.onnx_model import OnnxNetworks
nets = OnnxNetworks.load(sys.argv[1], num_threads=1)
x = np.load(sys.argv[2])
uvd, feats = nets.a2j(x, features=True)
logits = nets.student(x)
teacher = nets.teacher(feats.reshape(1, len(x), *feats.shape[1:]))
assert "torch" not in sys.modules
print(json.dumps({"uvd": uvd.tolist(), "student": logits.tolist(), "teacher": teacher.tolist(),
                  "skeleton": nets.skeleton.name}))
"""


def test_onnx_runner_needs_no_torch(model, tmp_path):
    ckpt, out = model
    x = np.random.default_rng(0).uniform(-1, 1, (2, 1, 176, 176)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, str(out), str(tmp_path / "x.npy")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    nets = load_checkpoint(ckpt)
    with torch.no_grad():
        t = torch.from_numpy(x)
        o = nets.a2j(t)
        uvd, feats = nets.a2j.decode(o)[0], o.teacher_input()
        student = nets.student(t)
        teacher = nets.teacher(feats.reshape(1, 2, *feats.shape[1:]))
    assert got["skeleton"] == "hands2019_21"
    assert np.allclose(got["uvd"], uvd.numpy(), atol=1e-3)
    assert np.allclose(got["student"], student.numpy(), atol=TOL_LOGIT)
    assert np.allclose(got["teacher"], teacher.numpy(), atol=TOL_LOGIT)


@pytest.mark.ros
def test_node_runs_the_onnxruntime_backend(model, rclpy_context, ros_env):
    """hand_pose_node with backend:=onnxruntime and model_path:=<export dir> publishes the
    joints the in-process onnxruntime pipeline computes for the same frame."""
    pytest.importorskip("rclpy")
    from node_harness import Harness, header, start_node

    from ros_helpers import spin_until, stop

    _, out = model
    frame = SyntheticHandGenerator(SynthConfig(seed=11, background="none")).frame(0)
    ref = VirtualViewPipeline.from_checkpoint(
        out, PipelineConfig(device="cpu", backend="onnxruntime")).run(frame.depth_mm,
                                                                       frame.intrinsics)
    assert ref.valid
    proc = start_node(ros_env, out, "backend:=onnxruntime", "smoothing:=false")
    h = Harness(rclpy_context)
    try:
        h.wait_ready(proc)
        h.send(frame.depth_mm, header(1), frame.intrinsics)
        assert spin_until(h.node, lambda: len(h.poses) >= 1, 30.0), stop(proc)
        pose = h.poses[-1]
        assert pose.valid
        joints = np.array([[p.x, p.y, p.z] for p in pose.joints]) * 1000.0
        assert list(pose.selected_views) == ref.selected_views.tolist()
        assert np.abs(joints - ref.joints_mm).max() <= TOL_MM
    finally:
        log = stop(proc)
        h.node.destroy_node()
    assert f"loading model {out}" in log
