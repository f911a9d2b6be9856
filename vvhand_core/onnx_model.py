"""ONNX model directories (written by ``vvhand export-onnx``) run with onnxruntime.

A directory holds the three networks of one checkpoint and one JSON file describing them::

    student.onnx   crop (B, C, S, S) normalised crop         -> logits (B, M)
    a2j.onnx       views (N, C, S, S) normalised views       -> uvd (N, J, 3) (u, v crop px,
                                                                d_n), teacher_input
                                                                (N, J, 64, H_c, W_c)
    teacher.onnx   features (B, V, J, 64, H_c, W_c)          -> logits (B, V)
    vvhand_onnx.json  format, skeleton (joint order, parents), model config, cube_mm,
                      crop size, candidate view grid, input/output shapes, each file's
                      sha256, the source checkpoint's sha256 and meta, exporter versions

(B, N, V are dynamic; S, C, J, M, H_c, W_c fixed by the model.) The same description is
stored in each ONNX file's ``metadata_props`` under the key ``vvhand``. Inputs are
normalised as :func:`vvhand_core.crop.normalise` does: d_n = (d - z_c) / (cube/2),
background +1. A2J's anchor decoding (softmax over anchors) is part of a2j.onnx.

This module needs only numpy and onnxruntime (imported when a directory is loaded), not
torch: everything the networks need at run time. Every way a directory can be wrong
(missing, no or corrupt JSON, wrong format, missing or changed files, a file onnxruntime
cannot load, inputs or outputs that differ from the description) raises one
:class:`OnnxModelError` naming the directory and the problem.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vvhand_core.skeletons import Skeleton, skeleton_from_entry

FORMAT = "vvhand-onnx"
VERSION = 1
METADATA_FILE = "vvhand_onnx.json"
METADATA_KEY = "vvhand"  # key of the description in each ONNX file's metadata_props
NETWORKS = ("student", "a2j", "teacher")
# used when described: A2J without the teacher's input (onnxruntime runs every node of a
# graph whatever outputs are asked for; the teacher's input is ~20 % of A2J's node time)
OPTIONAL_NETWORKS = ("a2j_uvd",)
# network -> (input names, output names); the order is the graph's
IO_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "student": (("crop",), ("logits",)),
    "a2j": (("views",), ("uvd", "teacher_input")),
    "teacher": (("features",), ("logits",)),
    "a2j_uvd": (("views",), ("uvd",)),
}
ORT_HINT = "pip install onnxruntime (the pinned version is in requirements/base.txt)"

__all__ = ["FORMAT", "METADATA_FILE", "NETWORKS", "OnnxModelError", "OnnxNetworks",
           "file_sha256", "import_onnxruntime", "onnxruntime_available"]


class OnnxModelError(ValueError):
    """An ONNX model directory that cannot be used; the message names it and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"ONNX model directory {self.path}: {reason}")


def onnxruntime_available() -> bool:
    """Whether onnxruntime can be imported."""
    try:
        import_onnxruntime()
    except ImportError:
        return False
    return True


def import_onnxruntime():
    """The onnxruntime module; ImportError saying how to install it when it is missing."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(f"backend 'onnxruntime' needs the onnxruntime package ({ORT_HINT}): "
                          f"{exc}") from None
    return onnxruntime


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def session_options(num_threads: int = 0):
    """Session options: ``num_threads`` intra-op threads (0 = onnxruntime's default).

    One inter-op thread, sequential execution, full graph optimisation, errors only, and
    no spinning: onnxruntime's pool threads busy-wait after each run by default, which on a
    small CPU takes the cores from the numpy and torch stages that run between the networks
    (rendering, fusion) and from the other networks' pools (measured in docs/results.md,
    "Pipeline speed", the 08:02 UTC run of 2026-12-02).
    """
    ort = import_onnxruntime()
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(0, int(num_threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return so


@dataclass
class OnnxNetworks:
    """onnxruntime sessions of student, A2J and teacher + their description (numpy I/O).

    Build with :meth:`load` (a directory) or :meth:`from_bytes` (models exported in
    memory). ``metadata`` is the JSON description (see the module doc).
    """

    sessions: dict[str, Any]
    metadata: dict[str, Any]
    skeleton: Skeleton
    source: str

    # ---------------------------------------------------------------- construction
    @classmethod
    def load(cls, directory: str | os.PathLike, num_threads: int = 0,
             providers: list[str] | None = None) -> OnnxNetworks:
        """Read and check a directory written by ``vvhand export-onnx`` (OnnxModelError)."""
        path = Path(directory)
        if not path.exists():
            raise OnnxModelError(path, "does not exist")
        if not path.is_dir():
            raise OnnxModelError(path, "is not a directory (expected the output folder of "
                                       "`vvhand export-onnx`)")
        meta_file = path / METADATA_FILE
        if not meta_file.is_file():
            raise OnnxModelError(path, f"no {METADATA_FILE} (not written by `vvhand "
                                       "export-onnx`, or the export did not finish)")
        try:
            metadata = json.loads(meta_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise OnnxModelError(path, f"{METADATA_FILE} cannot be read (corrupt?): "
                                       f"{type(exc).__name__}: {exc}") from None
        check_metadata(path, metadata)
        models: dict[str, bytes] = {}
        for name in _networks(metadata):
            entry = metadata["networks"][name]
            file = path / entry["file"]
            if not file.is_file():
                raise OnnxModelError(path, f"{entry['file']} ({name}) is missing")
            data = file.read_bytes()
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise OnnxModelError(path, f"{entry['file']} ({name}) differs from the "
                                           "exported file (sha256 mismatch: truncated, corrupt "
                                           "or replaced)")
            models[name] = data
        return cls.from_bytes(models, metadata, num_threads, providers, str(path))

    @classmethod
    def from_bytes(cls, models: dict[str, bytes], metadata: dict[str, Any],
                   num_threads: int = 0, providers: list[str] | None = None,
                   source: str = "<in memory>") -> OnnxNetworks:
        """Sessions for serialized ONNX models {network: bytes} described by ``metadata``."""
        ort = import_onnxruntime()
        check_metadata(source, metadata)
        options = session_options(num_threads)
        providers = providers or ["CPUExecutionProvider"]
        sessions = {}
        for name in _networks(metadata):
            try:
                sessions[name] = ort.InferenceSession(models[name], options, providers=providers)
            except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
                raise OnnxModelError(source, f"{name} cannot be loaded by onnxruntime: "
                                             f"{type(exc).__name__}: {exc}") from None
            _check_io(source, name, sessions[name], metadata["networks"][name])
        skeleton = _skeleton(source, metadata)
        return cls(sessions, metadata, skeleton, source)

    # ---------------------------------------------------------------- properties
    @property
    def num_joints(self) -> int:
        """J."""
        return self.skeleton.num_joints

    @property
    def crop_size(self) -> int:
        """S."""
        return int(self.metadata["crop_size"])

    @property
    def num_candidates(self) -> int:
        """M, the candidate views the student scores."""
        return int(self.metadata["num_candidates"])

    @property
    def cube_mm(self) -> float:
        """The cube edge the networks were trained with."""
        return float(self.metadata["cube_mm"])

    @property
    def providers(self) -> list[str]:
        """Execution providers of the sessions."""
        return list(self.sessions["a2j"].get_providers())

    # ---------------------------------------------------------------- running
    def student(self, crop: np.ndarray) -> np.ndarray:
        """Normalised crops (B, C, S, S) -> view logits (B, M)."""
        return self.sessions["student"].run(["logits"], {"crop": _f32(crop)})[0]

    def a2j(self, views: np.ndarray, features: bool = False
            ) -> tuple[np.ndarray, np.ndarray | None]:
        """Normalised views (N, C, S, S) -> uvd (N, J, 3) and the teacher's input.

        The teacher's input (N, J, 64, H_c, W_c) only when ``features``, else None.
        """
        if not features and "a2j_uvd" in self.sessions:
            return self.sessions["a2j_uvd"].run(["uvd"], {"views": _f32(views)})[0], None
        names = ["uvd", "teacher_input"] if features else ["uvd"]
        out = self.sessions["a2j"].run(names, {"views": _f32(views)})
        return out[0], (out[1] if features else None)

    def teacher(self, features: np.ndarray) -> np.ndarray:
        """Teacher input (B, V, J, 64, H_c, W_c) -> view logits (B, V)."""
        return self.sessions["teacher"].run(["logits"], {"features": _f32(features)})[0]


def _networks(metadata: dict[str, Any]) -> tuple[str, ...]:
    """The networks to load: the required ones and the optional ones the export has."""
    return NETWORKS + tuple(n for n in OPTIONAL_NETWORKS if n in metadata["networks"])


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def check_metadata(path: str | os.PathLike, metadata: Any) -> None:
    """Check the description's structure (OnnxModelError naming what is wrong)."""
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise OnnxModelError(path, f"{METADATA_FILE} is not a vvhand ONNX description (no "
                                   f"'format': {FORMAT!r} entry)")
    if metadata.get("version") != VERSION:
        raise OnnxModelError(path, f"format version {metadata.get('version')!r}, this code "
                                   f"reads version {VERSION}")
    required = ("skeleton", "cube_mm", "crop_size", "num_candidates", "view_grid_deg",
                "networks")
    missing = [k for k in required if k not in metadata]
    if missing:
        raise OnnxModelError(path, f"{METADATA_FILE} lacks entries {missing}")
    bad = _malformed(metadata)
    if bad:
        raise OnnxModelError(path, f"{METADATA_FILE} is malformed: {'; '.join(bad)}")


def _real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _shapes_ok(v: Any) -> bool:
    """{name: [dim, ...]} with each dim an int or a symbolic name."""
    return isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(dims, list)
        and all(isinstance(d, (int, str)) and not isinstance(d, bool) for d in dims)
        for k, dims in v.items())


def _malformed(metadata: dict[str, Any]) -> list[str]:
    """What in a description has the wrong type or value (empty when it is well formed)."""
    bad = []
    if not (_real(metadata["cube_mm"]) and metadata["cube_mm"] > 0):
        bad.append(f"cube_mm must be a number > 0, got {metadata['cube_mm']!r}")
    for key in ("crop_size", "num_candidates"):
        if not _count(metadata[key]):
            bad.append(f"{key} must be an integer > 0, got {metadata[key]!r}")
    grid = metadata["view_grid_deg"]
    if not (isinstance(grid, list) and all(
            isinstance(g, list) and len(g) == 2 and all(map(_real, g)) for g in grid)):
        bad.append(f"view_grid_deg must be a list of [azimuth, elevation] pairs, got "
                   f"{str(grid)[:40]}")
    elif _count(metadata["num_candidates"]) and len(grid) != metadata["num_candidates"]:
        bad.append(f"view grid has {len(grid)} views, num_candidates is "
                   f"{metadata['num_candidates']}")
    if not isinstance(metadata["skeleton"], dict):
        bad.append("skeleton must be an object with name and joint_names")
    nets = metadata["networks"]
    if not isinstance(nets, dict):
        return [*bad, f"networks must describe {NETWORKS}"]
    for name in (*NETWORKS, *(n for n in OPTIONAL_NETWORKS if n in nets)):
        entry = nets.get(name)
        if not isinstance(entry, dict) or not {"file", "sha256", "inputs", "outputs"} <= set(
                entry):
            bad.append(f"networks.{name} must have file, sha256, inputs, outputs")
            continue
        file = entry["file"]
        if not (isinstance(file, str) and file and Path(file).name == file
                and file not in (".", "..")):
            bad.append(f"networks.{name}.file must be a file name in the directory, got "
                       f"{file!r}")
        if not isinstance(entry["sha256"], str):
            bad.append(f"networks.{name}.sha256 must be a string")
        for key in ("inputs", "outputs"):
            if not _shapes_ok(entry[key]):
                bad.append(f"networks.{name}.{key} must map names to shapes, got "
                           f"{str(entry[key])[:40]}")
    return bad


def _check_io(path: str, name: str, session: Any, entry: dict[str, Any]) -> None:
    """The session's input/output names and fixed sizes match the description."""
    want_in, want_out = IO_NAMES[name]
    got_in = tuple(i.name for i in session.get_inputs())
    got_out = tuple(o.name for o in session.get_outputs())
    if got_in != want_in or got_out != want_out:
        raise OnnxModelError(path, f"{name} has inputs {got_in} and outputs {got_out}, "
                                   f"expected {want_in} and {want_out}")
    for arg in (*session.get_inputs(), *session.get_outputs()):
        described = (entry["inputs"] | entry["outputs"]).get(arg.name)
        if described is None or len(described) != len(arg.shape) or any(
                isinstance(d, int) and isinstance(g, int) and d != g
                for d, g in zip(described, arg.shape)):
            raise OnnxModelError(path, f"{name}.{arg.name} has shape {arg.shape}, the "
                                       f"description says {described}")


def _skeleton(path: str, metadata: dict[str, Any]) -> Skeleton:
    try:
        skeleton = skeleton_from_entry(metadata["skeleton"])
    except ValueError as exc:
        raise OnnxModelError(path, str(exc)) from None
    except TypeError as exc:  # a field of the wrong type inside the entry
        raise OnnxModelError(path, f"{METADATA_FILE} is malformed: skeleton entry: {exc}"
                             ) from None
    uvd = metadata["networks"]["a2j"]["outputs"].get("uvd")
    if not uvd or len(uvd) < 2 or uvd[1] != skeleton.num_joints:
        raise OnnxModelError(path, f"A2J's uvd output {uvd} does not have the skeleton's "
                                   f"{skeleton.num_joints} joints")
    return skeleton
