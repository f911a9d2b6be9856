"""vvhand_core.load: which pipeline and backend a deployment runs."""

from __future__ import annotations

import pytest

from vvhand_core import onnx_model
from vvhand_core.load import load_pipeline, resolve_backend

needs_ort = pytest.mark.skipif(not onnx_model.onnxruntime_available(),
                               reason="onnxruntime is not installed")


def test_explicit_backends_are_kept(tmp_path):
    for backend in ("torch", "onnxruntime", "bogus"):  # bogus: refused later, by name
        assert resolve_backend(backend, "cpu", tmp_path / "m.pt") == backend


@needs_ort
def test_auto_is_onnxruntime_on_the_cpu_and_torch_on_a_gpu(tmp_path):
    pytest.importorskip("onnx")
    ckpt = tmp_path / "m.pt"
    assert resolve_backend("auto", "cpu", ckpt) == "onnxruntime"
    assert resolve_backend("auto", "cuda", ckpt) == "torch"
    assert resolve_backend("auto", "cuda:1", ckpt) == "torch"
    assert resolve_backend("auto", "cpu", tmp_path) == "onnxruntime"  # an export directory


def test_auto_without_onnxruntime_is_torch(tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_model, "onnxruntime_available", lambda: False)
    assert resolve_backend("auto", "cpu", tmp_path / "m.pt") == "torch"


@needs_ort
def test_load_pipeline_resolves_auto(checkpoint):
    pytest.importorskip("onnx")
    pipe = load_pipeline(checkpoint, {"backend": "auto", "device": "cpu"}, num_threads=1)
    assert pipe.config.backend == "onnxruntime"
    pipe = load_pipeline(checkpoint, {"backend": "torch", "device": "cpu"}, num_threads=1)
    assert pipe.config.backend == "torch"


@needs_ort
def test_auto_follows_the_device_resolution(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    import torch

    ckpt = tmp_path / "m.pt"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_backend("auto", "auto", ckpt) == "torch"  # auto device: CUDA here
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_backend("auto", "auto", ckpt) == "onnxruntime"
    assert resolve_backend("auto", "no-such-device", ckpt) == "torch"  # refused later


def test_auto_without_the_onnx_exporter_is_torch(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnx" else real(name, *a))
    assert resolve_backend("auto", "cpu", tmp_path / "m.pt") == "torch"
    assert resolve_backend("auto", "cpu", tmp_path) == "onnxruntime"  # an export: no exporter
