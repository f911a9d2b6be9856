"""The hand detector's two networks as ONNX files next to its weights (no torch to load).

``vvhand detector export-onnx`` writes, next to detector weights ``NAME.pt`` (default:
the packaged ``assets/hand_detector.pt``)::

    NAME_heat.onnx     heat-map network   x (1, 3, H, W) float32     -> heat (1, 2, H/4, W/4)
    NAME_refine.onnx   refiner            patches (B, C, 48, 48)    -> offsets (B, 3)
    NAME_onnx.json     format, version, the detector config (canonical focal length,
                       surface window), the refiner's config (C = 3, or 4 with its
                       border channel), each file's sha256 and input/output shapes, the
                       weights' file name and sha256, exporter versions, and the max
                       |onnxruntime - torch| of each network on random inputs

(H, W and B dynamic; no refiner file when the weights have none). The files are the
BatchNorm-folded networks exported as ``detector.runtime`` exported them in memory at
every start-up before (opset 17, the same bytes for the same weights and torch version),
so onnxruntime computes the same numbers from them.

:func:`load_exported` reads them with numpy only (onnxruntime makes the sessions): the
packaged detector runs on an onnxruntime-only install. Every way they can be wrong (no
description, a corrupt one, a missing file, a changed file (sha256), weights changed
since the export) raises one :class:`DetectorOnnxError` naming the file and what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vvhand_core.detector.ops import PATCH, DetectorConfig, RefineConfig

FORMAT = "vvhand-hand-detector-onnx"
VERSION = 1
NETWORKS = ("heat", "refine")
# network -> (input name, output name, example input shape, dynamic axes {axis: label})
IO: dict[str, tuple[str, str, tuple[int, ...], dict[int, str]]] = {
    "heat": ("x", "heat", (1, 3, 64, 80), {2: "height", 3: "width"}),
    "refine": ("patches", "offsets", (2, 3, PATCH, PATCH), {0: "batch"}),
}


def _shapes(name: str, refine: RefineConfig) -> dict:
    """The description's input/output shapes of network ``name``."""
    if name == "heat":
        return {"inputs": {"x": [1, 3, "height", "width"]},
                "outputs": {"heat": [1, 2, "height / 4", "width / 4"]}}
    return {"inputs": {"patches": ["batch", refine.channels, PATCH, PATCH]},
            "outputs": {"offsets": ["batch", 3]}}


HINT = "regenerate with `vvhand detector export-onnx` on a machine with torch"

__all__ = ["DetectorOnnxError", "ExportedDetector", "FORMAT", "NETWORKS", "description_path",
           "file_path", "load_exported"]


class DetectorOnnxError(ValueError):
    """Exported detector files that cannot be used; the message names the file and why."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"hand detector ONNX file {self.path}: {reason}")


def description_path(weights: str | os.PathLike) -> Path:
    """``NAME_onnx.json`` next to weights ``NAME.pt``."""
    w = Path(weights)
    return w.with_name(f"{w.stem}_onnx.json")


def file_path(weights: str | os.PathLike, network: str) -> Path:
    """``NAME_<network>.onnx`` next to weights ``NAME.pt``."""
    w = Path(weights)
    return w.with_name(f"{w.stem}_{network}.onnx")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class ExportedDetector:
    """What :func:`load_exported` read: the config and the checked ONNX models' bytes."""

    config: DetectorConfig
    models: dict[str, bytes]  # "heat", and "refine" when the weights have a refiner
    metadata: dict[str, Any]
    source: str  # the description's path
    refine_config: RefineConfig = RefineConfig()  # descriptions without one: the defaults


def load_exported(weights: str | os.PathLike, check_weights: bool = True) -> ExportedDetector:
    """The exported networks of ``weights`` (module doc), checked (DetectorOnnxError).

    ``check_weights``: when the weights file exists, its sha256 must be the one exported
    (the ONNX files are stale otherwise).
    """
    desc = description_path(weights)
    if not desc.is_file():
        raise DetectorOnnxError(desc, f"missing (the detector's networks are not exported; "
                                      f"{HINT})")
    try:
        meta = json.loads(desc.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DetectorOnnxError(desc, f"cannot be read (corrupt?): {type(exc).__name__}: "
                                      f"{exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DetectorOnnxError(desc, f"not a {FORMAT} description")
    if meta.get("version") != VERSION:
        raise DetectorOnnxError(desc, f"format version {meta.get('version')!r}, this code "
                                      f"reads version {VERSION}")
    try:
        config = DetectorConfig(**meta["config"])
        refine_config = RefineConfig(**meta.get("refine_config", {}))
        nets = {n: meta["networks"][n] for n in NETWORKS if n in meta["networks"]}
        files = {n: (desc.with_name(e["file"]), e["sha256"]) for n, e in nets.items()}
        source_sha = meta["weights"]["sha256"]
    except (KeyError, TypeError, ValueError) as exc:
        raise DetectorOnnxError(desc, f"incomplete description ({type(exc).__name__}: {exc})"
                                ) from None
    if "heat" not in files:
        raise DetectorOnnxError(desc, "describes no heat-map network")
    w = Path(weights)
    if check_weights and w.is_file() and _sha256(w.read_bytes()) != source_sha:
        raise DetectorOnnxError(desc, f"exported from other weights than {w} (sha256 "
                                      f"differs: the ONNX files are stale; {HINT})")
    models = {}
    for name, (path, sha) in files.items():
        if not path.is_file():
            raise DetectorOnnxError(path, f"missing ({HINT})")
        data = path.read_bytes()
        if _sha256(data) != sha:
            raise DetectorOnnxError(path, f"differs from the exported file (sha256 mismatch: "
                                          f"truncated, corrupt or replaced; {HINT})")
        models[name] = data
    return ExportedDetector(config, models, meta, str(desc), refine_config)


def export_detector(net, refiner) -> dict[str, bytes]:
    """{network: serialized ONNX model} of the (BatchNorm-folded, eval) modules (torch)."""
    import torch

    from vvhand_core.onnx_export import export_module

    out = {}
    with torch.no_grad():
        for name, module in (("heat", net), ("refine", refiner)):
            if module is None:
                continue
            inp, outp, shape, dynamic = IO[name]
            if name == "refine":
                shape = (shape[0], module.config.channels, *shape[2:])
            out[name] = export_module(module.eval(), torch.zeros(*shape), [inp], [outp],
                                      {inp: dynamic, outp: dynamic})
    return out


def _verify(models: dict[str, bytes], net, refiner) -> dict[str, float]:
    """Max |onnxruntime - torch| of each network on random inputs."""
    import numpy as np
    import torch

    from vvhand_core.onnx_model import import_onnxruntime

    ort = import_onnxruntime()
    rng = np.random.default_rng(0)
    inputs = {"heat": rng.random((1, 3, 121, 162), dtype=np.float32)}
    if refiner is not None:
        inputs["refine"] = rng.random((4, refiner.config.channels, PATCH, PATCH),
                                      dtype=np.float32)
    diffs = {}
    for name, module in (("heat", net), ("refine", refiner)):
        if name not in models:
            continue
        sess = ort.InferenceSession(models[name], providers=["CPUExecutionProvider"])
        got = sess.run(None, {IO[name][0]: inputs[name]})[0]
        with torch.inference_mode():
            want = module(torch.from_numpy(inputs[name])).numpy()
        diffs[name] = float(np.abs(got - want).max())
    return diffs


def write_exported(weights: str | os.PathLike, verify: bool = True) -> dict[str, Any]:
    """Export the networks of detector ``weights`` next to them (module doc); torch needed.

    The description is written last (files without it are an unfinished export).
    Returns the description. ValueError for weights that cannot be loaded.
    """
    import torch

    from vvhand_core.detector.localiser import load_detector
    from vvhand_core.detector.net import fold_batchnorm
    from vvhand_core.onnx_export import OPSET

    w = Path(weights)
    net, refiner, _ = load_detector(w)
    net = fold_batchnorm(net)
    refiner = None if refiner is None else fold_batchnorm(refiner)
    models = export_detector(net, refiner)
    desc = description_path(w)
    if desc.exists():
        desc.unlink()
    meta: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "config": net.config.to_dict(),
        "refine_config": (refiner.config if refiner is not None else RefineConfig()).to_dict(),
        "weights": {"file": w.name, "sha256": _sha256(w.read_bytes())},
        "networks": {}, "exporter": {"torch": torch.__version__, "opset": OPSET,
                                     "exporter": "torch.onnx.export(dynamo=False)",
                                     "batchnorm": "folded (detector.net.fold_batchnorm)"}}
    for name, data in models.items():
        path = file_path(w, name)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        meta["networks"][name] = {"file": path.name, "sha256": _sha256(data),
                                  "bytes": len(data),
                                  **_shapes(name, RefineConfig() if refiner is None
                                            else refiner.config)}
    stale = file_path(w, "refine")
    if "refine" not in models and stale.exists():
        stale.unlink()
    if verify:
        meta["verification"] = {"max_abs_diff_on_random_inputs": _verify(models, net, refiner),
                                "onnxruntime": __import__("onnxruntime").__version__}
    tmp = desc.with_name(desc.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp, desc)
    return meta
