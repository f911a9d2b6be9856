"""Export a checkpoint's student, A2J and teacher to ONNX (``vvhand export-onnx``).

Exporter: torch's TorchScript-based ``torch.onnx.export(..., dynamo=False)`` at opset
:data:`OPSET`. It needs no package beyond torch (the torch.export-based exporter, torch's
default since 2.9, needs onnxscript), runs offline, takes about a second per network and
writes the same bytes for the same weights. ``onnx`` (pinned) is used only to add the
description to each file's ``metadata_props`` and to check the files. The layout of the
written directory and its description: :mod:`vvhand_core.onnx_model`.
"""

from __future__ import annotations

import io
import json
import os
import platform
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vvhand_core.checkpoint import LoadedModels, load_checkpoint, skeleton_to_dict
from vvhand_core.models import A2J, Student, Teacher
from vvhand_core.models.a2j import ANCHOR_STRIDE, ANCHORS_PER_CELL
from vvhand_core.onnx_model import (
    FORMAT,
    IO_NAMES,
    METADATA_FILE,
    METADATA_KEY,
    NETWORKS,
    OPTIONAL_NETWORKS,
    VERSION,
    OnnxNetworks,
    file_sha256,
)
from vvhand_core.skeletons import Skeleton
from vvhand_core.views import view_grid

OPSET = 17
FILES = {name: f"{name}.onnx" for name in (*NETWORKS, *OPTIONAL_NETWORKS)}

__all__ = ["OPSET", "describe", "export_module", "export_networks", "export_onnx",
           "onnx_networks_from_torch"]


class _A2JGraph(nn.Module):
    """A2J + its anchor decoding: views -> (uvd (N, J, 3), teacher input (N, J, 64, H, W))."""

    def __init__(self, a2j: A2J) -> None:
        super().__init__()
        self.a2j = a2j

    def forward(self, views: Tensor) -> tuple[Tensor, Tensor]:
        """See the class doc."""
        out = self.a2j(views)
        return self.a2j.decode(out)[0], out.teacher_input()


class _A2JUvdGraph(nn.Module):
    """A2J + its anchor decoding without the teacher's input: views -> uvd (N, J, 3)."""

    def __init__(self, a2j: A2J) -> None:
        super().__init__()
        self.a2j = a2j

    def forward(self, views: Tensor) -> Tensor:
        """See the class doc."""
        return self.a2j.decode(self.a2j(views))[0]


def _shapes(a2j: A2J, student: Student) -> dict[str, dict[str, dict[str, list]]]:
    """Input/output shapes per network; strings name the dynamic axes."""
    s, c, j = a2j.config.crop_size, a2j.config.in_channels, a2j.num_joints
    cells = s // ANCHOR_STRIDE  # A2J's output stride (crop_size is a multiple of it)
    feat = [j, 4 * ANCHORS_PER_CELL, cells, cells]
    return {
        "student": {"inputs": {"crop": ["batch", student.config.in_channels, s, s]},
                    "outputs": {"logits": ["batch", student.config.num_views]}},
        "a2j": {"inputs": {"views": ["views", c, s, s]},
                "outputs": {"uvd": ["views", j, 3], "teacher_input": ["views", *feat]}},
        "a2j_uvd": {"inputs": {"views": ["views", c, s, s]},
                    "outputs": {"uvd": ["views", j, 3]}},
        "teacher": {"inputs": {"features": ["batch", "views", *feat]},
                    "outputs": {"logits": ["batch", "views"]}},
    }


def describe(a2j: A2J, student: Student, skeleton: Skeleton, model_config: dict[str, Any],
             cube_mm: float, num_candidates: int,
             source: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON description of an export (files' sha256 are added when written)."""
    grid = view_grid(num_candidates)
    shapes = _shapes(a2j, student)
    return {
        "format": FORMAT,
        "version": VERSION,
        "skeleton": skeleton_to_dict(skeleton),
        "model_config": model_config,
        "cube_mm": float(cube_mm),
        "crop_size": int(a2j.config.crop_size),
        "num_candidates": int(num_candidates),
        "view_grid_deg": [[float(a), float(e)] for a, e in grid.tolist()],
        "view_grid_order": "(azimuth_deg, elevation_deg), elevation-major; index M // 2 is "
                           "the identity view (vvhand_core.views)",
        "input_normalisation": "d_n = (depth_mm - z_centre_mm) / (cube_mm / 2); background "
                               "(0) -> +1 (vvhand_core.crop.normalise)",
        "uvd": "u, v crop pixels, d_n normalised depth (vvhand_core.jointspace)",
        "networks": {name: {"file": FILES[name], "sha256": "", **shapes[name]}
                     for name in (*NETWORKS, *OPTIONAL_NETWORKS)},
        "source": dict(source or {}),
        "exporter": {"torch": torch.__version__, "opset": OPSET, "python":
                     platform.python_version(), "exporter": "torch.onnx.export(dynamo=False)"},
    }


def export_module(module: nn.Module, example: Tensor, inputs: list[str], outputs: list[str],
                  dynamic: dict[str, dict[int, str]]) -> bytes:
    """Serialized ONNX model of a one-input module (the exporter of the module doc).

    ``example``: an input (its shape, except the ``dynamic`` axes, is fixed in the graph);
    ``inputs``/``outputs``: the graph's names; ``dynamic``: {name: {axis: label}}.
    """
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(module, (example,), buf, dynamo=False, opset_version=OPSET,
                          input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes=dynamic, do_constant_folding=True)
    return buf.getvalue()


def _export_one(module: nn.Module, example: Tensor, name: str,
                dynamic: dict[str, dict[int, str]]) -> bytes:
    inputs, outputs = IO_NAMES[name]
    return export_module(module, example, list(inputs), list(outputs), dynamic)


def export_networks(a2j: A2J, student: Student, teacher: Teacher) -> dict[str, bytes]:
    """{network: serialized ONNX model} of the three networks (on CPU, in eval mode).

    The modules are copied to the CPU; the originals keep their device and mode.
    """
    import copy

    a2j, student, teacher = (copy.deepcopy(m).cpu().eval() for m in (a2j, student, teacher))
    s, c = a2j.config.crop_size, a2j.config.in_channels
    gen = torch.Generator().manual_seed(0)
    views = torch.rand(2, c, s, s, generator=gen) * 2 - 1
    crop = torch.rand(2, student.config.in_channels, s, s, generator=gen) * 2 - 1
    with torch.no_grad():
        feats = _A2JGraph(a2j)(views)[1]
    features = feats.reshape(1, 2, *feats.shape[1:])
    return {
        "student": _export_one(student, crop, "student",
                               {"crop": {0: "batch"}, "logits": {0: "batch"}}),
        "a2j": _export_one(_A2JGraph(a2j), views, "a2j",
                           {"views": {0: "views"}, "uvd": {0: "views"},
                            "teacher_input": {0: "views"}}),
        "teacher": _export_one(teacher, features, "teacher",
                               {"features": {0: "batch", 1: "views"},
                                "logits": {0: "batch", 1: "views"}}),
        "a2j_uvd": _export_one(_A2JUvdGraph(a2j), views, "a2j_uvd",
                               {"views": {0: "views"}, "uvd": {0: "views"}}),
    }


def onnx_networks_from_torch(a2j: A2J, student: Student, teacher: Teacher, skeleton: Skeleton,
                             cube_mm: float, num_candidates: int, num_threads: int = 0,
                             providers: list[str] | None = None) -> OnnxNetworks:
    """Sessions (onnxruntime) of torch networks exported in memory (no files written)."""
    models = export_networks(a2j, student, teacher)
    meta = describe(a2j, student, skeleton, {}, cube_mm, num_candidates,
                    {"checkpoint": "<torch modules in memory>"})
    for name, data in models.items():
        meta["networks"][name]["sha256"] = _sha256(data)
    return OnnxNetworks.from_bytes(models, meta, num_threads, providers,
                                   "<exported in memory>")


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _with_metadata(data: bytes, name: str, meta: dict[str, Any]) -> bytes:
    """The model with the description in metadata_props (checked by onnx.checker)."""
    import onnx

    model = onnx.load_from_string(data)
    props = {k: v for k, v in meta.items() if k not in ("networks", "source")}
    props["network"] = name
    props["inputs"] = meta["networks"][name]["inputs"]
    props["outputs"] = meta["networks"][name]["outputs"]
    props["source_sha256"] = meta["source"].get("sha256", "")
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(props, sort_keys=True)
    model.producer_name = "vvhand export-onnx"
    model.doc_string = f"vvhand {name} network ({meta['skeleton']['name']}, see vvhand_onnx.json)"
    onnx.checker.check_model(model)
    return model.SerializeToString()


def verify(models: OnnxNetworks, loaded: LoadedModels, seed: int = 0) -> dict[str, float]:
    """Max |onnxruntime - torch| of each network's outputs on random inputs."""
    a2j, student, teacher = (m.cpu().eval() for m in (loaded.a2j, loaded.student,
                                                       loaded.teacher))
    s, c = a2j.config.crop_size, a2j.config.in_channels
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(3, c, s, s, generator=gen) * 2 - 1
    with torch.no_grad():
        out = a2j(x)
        uvd, feats = a2j.decode(out)[0], out.teacher_input()
        logits_s = student(x)
        f = feats.reshape(1, 3, *feats.shape[1:])
        logits_t = teacher(f)
    ort_uvd, ort_feats = models.a2j(x.numpy(), features=True)
    uvd_only = models.a2j(x.numpy())[0]
    return {
        "a2j_uvd_only": float(np.abs(uvd_only - uvd.numpy()).max()),
        "student_logits": float(np.abs(models.student(x.numpy()) - logits_s.numpy()).max()),
        "a2j_uvd": float(np.abs(ort_uvd - uvd.numpy()).max()),
        "a2j_teacher_input": float(np.abs(ort_feats - feats.numpy()).max()),
        "teacher_logits": float(np.abs(models.teacher(f.numpy()) - logits_t.numpy()).max()),
    }


def export_onnx(checkpoint: str | os.PathLike, out_dir: str | os.PathLike,
                check: bool = True) -> dict[str, Any]:
    """Write student.onnx, a2j.onnx (+ a2j_uvd.onnx), teacher.onnx, vvhand_onnx.json.

    ``check``: load the written directory with onnxruntime and record each network's max
    |onnxruntime - torch| on random inputs under "verification". Returns the description.
    Raises CheckpointError for a bad checkpoint. The description is written last (a
    directory without it is an unfinished export).
    """
    path = Path(checkpoint)
    loaded = load_checkpoint(path, "cpu")
    cfg = loaded.model_config
    source = {"checkpoint": str(path.resolve()), "sha256": file_sha256(path),
              "meta": loaded.meta}
    meta = describe(loaded.a2j, loaded.student, loaded.skeleton, cfg.to_dict(),
                    cfg.cube_mm, cfg.num_candidates, source)
    try:
        import onnx

        meta["exporter"]["onnx"] = onnx.__version__
    except ImportError:
        pass
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stale = out / METADATA_FILE
    if stale.exists():
        stale.unlink()  # the directory is unfinished until the new description is written
    for name, data in export_networks(loaded.a2j, loaded.student, loaded.teacher).items():
        data = _with_metadata(data, name, meta)
        meta["networks"][name]["sha256"] = _sha256(data)
        tmp = out / (FILES[name] + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, out / FILES[name])
    if check:
        from vvhand_core.onnx_model import import_onnxruntime

        import_onnxruntime()
        models = {n: (out / FILES[n]).read_bytes() for n in meta["networks"]}
        nets = OnnxNetworks.from_bytes(models, meta, num_threads=1, source=str(out))
        meta["verification"] = {
            "max_abs_diff_on_random_inputs": verify(nets, loaded),
            "onnxruntime": __import__("onnxruntime").__version__,
        }
    tmp = out / (METADATA_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, out / METADATA_FILE)
    return meta
