"""One-file checkpoints: weights of A2J, student and teacher + model config + skeleton + meta.

The file is a plain dict of tensors and JSON-able primitives, so it loads with
``torch.load(weights_only=True)`` (no pickled code)::

    {"format": "vvhand-checkpoint", "version": 1,
     "model_config": ModelConfig.to_dict(), "skeleton": {"name", "joint_names", ...},
     "meta": {...training metadata...}, "weights_dtype": "float32" | "float16",
     "state": {"a2j": state_dict, "student": state_dict, "teacher": state_dict}}

Every way a file can be wrong (missing, truncated/corrupt, not a vvhand checkpoint,
missing keys, bad config, unknown skeleton, weights that do not fit the config) raises
one :class:`CheckpointError` whose message names the file and the problem.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vvhand_core.errors import CheckpointError
from vvhand_core.models import A2J, ModelConfig, Student, Teacher, build_models
from vvhand_core.models.configs import with_legacy_defaults
from vvhand_core.skeletons import Skeleton, get_skeleton, skeleton_from_entry

FORMAT = "vvhand-checkpoint"
VERSION = 1
NETWORKS = ("a2j", "student", "teacher")
_REQUIRED = ("format", "version", "model_config", "skeleton", "meta", "weights_dtype", "state")

__all__ = [
    "CheckpointError", "LoadedModels", "build_models", "load_checkpoint", "resolve_device",
    "save_checkpoint", "save_random_checkpoint",
]


@dataclass
class LoadedModels:
    """The networks of a checkpoint (in eval mode, on the requested device) and its metadata."""

    a2j: A2J
    student: Student
    teacher: Teacher
    skeleton: Skeleton
    model_config: ModelConfig
    meta: dict[str, Any]
    path: Path


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Device for "auto" (cuda when available else cpu) or a name; ValueError if unusable."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"bad device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return dev


def skeleton_to_dict(skeleton: Skeleton) -> dict[str, Any]:
    """JSON-able description of a skeleton."""
    return {
        "name": skeleton.name,
        "joint_names": list(skeleton.joint_names),
        "parents": list(skeleton.parents),
        "colors": [list(c) for c in skeleton.colors],
    }


def save_checkpoint(path: str | os.PathLike, a2j: nn.Module, student: nn.Module,
                    teacher: nn.Module, skeleton: Skeleton,
                    model_config: ModelConfig | dict[str, Any], meta: dict[str, Any] | None = None,
                    fp16: bool = False) -> Path:
    """Write the three networks + config + skeleton + meta to ONE file (atomically).

    ``fp16`` stores floating-point weights as float16 (half the size; loaded back as
    float32). ``meta`` must be JSON-serialisable (epochs, dataset, metrics, ...).
    """
    path = Path(path)
    cfg = model_config if isinstance(model_config, ModelConfig) else \
        ModelConfig.from_dict(model_config)
    if skeleton.num_joints != cfg.num_joints:
        raise ValueError(f"skeleton {skeleton.name!r} has {skeleton.num_joints} joints, "
                         f"the model config {cfg.num_joints}")
    meta = dict(meta or {})
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint meta must be JSON-serialisable: {exc}") from None

    def state(module: nn.Module) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in module.state_dict().items():
            v = v.detach().to("cpu")
            if fp16 and v.is_floating_point():
                v = v.to(torch.float16)
            out[k] = v.contiguous().clone()
        return out

    blob = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": cfg.to_dict(),
        "skeleton": skeleton_to_dict(skeleton),
        "meta": meta,
        "weights_dtype": "float16" if fp16 else "float32",
        "state": {"a2j": state(a2j), "student": state(student), "teacher": state(teacher)},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return path


def _one_line(exc: Exception, limit: int = 200) -> str:
    """The line of a (multi-line) torch error that says what is wrong, at most ``limit`` chars.

    torch's weights_only refusal is six lines of advice ending with the actual reason
    ("WeightsUnpickler error: Unsupported global: ... was not an allowed global by default.
    Please use ..."); that reason's first sentence is kept.
    """
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return "(no message)"
    line = next((ln for ln in lines if ln.startswith("WeightsUnpickler error")), lines[0])
    if line.startswith("WeightsUnpickler error"):
        line = "the file holds Python objects that a weights-only load refuses: " + line.split(
            ". ")[0].removeprefix("WeightsUnpickler error: ")
    return line if len(line) <= limit else line[: limit - 3] + "..."


_GLOBAL = re.compile(r"unsupported global:? (?:GLOBAL )?([\w.]+)", re.IGNORECASE)


def _refused_global(exc: Exception) -> str | None:
    """The Python object (module.name) a weights-only load refused, or None if another error."""
    match = _GLOBAL.search(str(exc))
    return match.group(1) if match else None


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise CheckpointError(path, "file does not exist")
    if not path.is_file():
        raise CheckpointError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "file is empty")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for bad files
        refused = _refused_global(exc)
        if refused:  # read fine; what it holds is refused, not damaged
            raise CheckpointError(path, f"refused, nothing in it was run: it holds a pickled "
                                        f"Python object (Unsupported global {refused}) that a "
                                        "weights-only load never executes") from None
        raise CheckpointError(path, f"cannot be read (truncated or corrupt file?): "
                                    f"{type(exc).__name__}: {_one_line(exc)}") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(path, f"not a vvhand checkpoint (no 'format': {FORMAT!r} entry)")
    missing = [k for k in _REQUIRED if k not in blob]
    if missing:
        raise CheckpointError(path, f"missing entries {missing}")
    if blob["version"] != VERSION:
        raise CheckpointError(path, f"format version {blob['version']!r}, this code reads "
                                    f"version {VERSION}")
    return blob


def _skeleton(path: Path, d: Any, num_joints: int) -> Skeleton:
    try:
        skeleton = skeleton_from_entry(d)
    except ValueError as exc:
        raise CheckpointError(path, str(exc)) from None
    if skeleton.num_joints != num_joints:
        raise CheckpointError(path, f"skeleton {skeleton.name!r} has {skeleton.num_joints} "
                                    f"joints, the model config {num_joints}")
    return skeleton


def _load_state(path: Path, name: str, module: nn.Module, state: Any) -> None:
    if not isinstance(state, dict):
        raise CheckpointError(path, f"weights of {name!r} are missing")
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            path, f"weights of {name!r} do not fit the model config: missing keys "
                  f"{missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected keys "
                  f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    for k, v in own.items():
        w = state[k]
        if not isinstance(w, torch.Tensor) or w.shape != v.shape:
            shape = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
            raise CheckpointError(path, f"weights of {name!r}: {k} has shape {shape}, the "
                                        f"model config needs {tuple(v.shape)}")
        if w.is_floating_point() and not torch.isfinite(w).all():
            raise CheckpointError(path, f"weights of {name!r}: {k} holds NaN or inf")
    module.load_state_dict({k: state[k].to(own[k].dtype) for k in own})


def load_checkpoint(path: str | os.PathLike,
                    device: str | torch.device = "cpu") -> LoadedModels:
    """Read a checkpoint written by :func:`save_checkpoint`; models in eval mode on ``device``.

    Raises :class:`CheckpointError` for any problem with the file.
    """
    path = Path(path)
    blob = _read(path)
    try:
        cfg = ModelConfig.from_dict(with_legacy_defaults(blob["model_config"]))
    except ValueError as exc:
        raise CheckpointError(path, f"bad model config: {exc}") from None
    skeleton = _skeleton(path, blob["skeleton"], cfg.num_joints)
    if not isinstance(blob["meta"], dict):
        raise CheckpointError(path, "meta entry is not a dict")
    state = blob["state"]
    if not isinstance(state, dict):
        raise CheckpointError(path, "state entry is not a dict")
    a2j, student, teacher = build_models(cfg, skeleton)
    for name, module in zip(NETWORKS, (a2j, student, teacher)):
        _load_state(path, name, module, state.get(name))
    dev = resolve_device(device)
    for m in (a2j, student, teacher):
        m.to(dev).eval()
    return LoadedModels(a2j, student, teacher, skeleton, cfg, dict(blob["meta"]), path)


def save_random_checkpoint(path: str | os.PathLike, backbone: str = "resnet18",
                           width: float = 0.25, skeleton: str = "hands2019_21", seed: int = 0,
                           num_candidates: int = 25, fp16: bool = False) -> Path:
    """Write a randomly initialised (untrained) checkpoint, e.g. for robustness tests.

    Deterministic by ``seed``; meta records ``{"trained": False, "seed": seed}``.
    """
    skel = get_skeleton(skeleton)
    cfg = ModelConfig.small(skel.num_joints, backbone, width, num_candidates)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        a2j, student, teacher = build_models(cfg, skel)
    meta = {"trained": False, "seed": seed, "note": "random weights (save_random_checkpoint)"}
    return save_checkpoint(path, a2j, student, teacher, skel, cfg, meta, fp16=fp16)
