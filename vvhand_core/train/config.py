"""Training configuration: dataclasses for stage 1 and stage 2, YAML loading, CLI overrides.

A config file is YAML whose top-level keys are the fields of :class:`Stage1Config` or
:class:`Stage2Config`; nested sections (``data``, ``augment``, ``optim``, ``loss``,
``model``) map to their own dataclasses. Unknown keys and wrongly typed values raise
:class:`ConfigError` naming the key, so a typo never silently trains something else.

Overrides from the command line use dotted keys and YAML values::

    vvhand train stage1 --config config/train_stage1.yaml --set optim.lr=1e-3 \
        --set data.train_frames=200 --set model.a2j.width=0.25
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vvhand_core.losses import LossConfig
from vvhand_core.models import ModelConfig
from vvhand_core.skeletons import get_skeleton

DATASETS = ("synthetic", "synthetic_dir", "nyu", "icvl", "hands2019")


class ConfigError(ValueError):
    """A training config that cannot be used (unknown key, bad value, unreadable file)."""


@dataclass
class DataConfig:
    """Which frames to train and validate on.

    dataset "synthetic": frames drawn in memory by SyntheticHandGenerator, the training
    split from ``train_seed`` (``train_frames`` frames), the validation split from
    ``val_seed`` (``val_frames``); ``synth`` overrides SynthConfig fields (camera,
    background, sensor noise; not the seed). The test split (another seed) is never
    used by training code.
    "synthetic_dir": a folder written by ``vvhand synth`` (``root``), with the
    validation frames from ``val_root`` when given.
    "nyu" | "icvl" | "hands2019": the dataset's labelled training split under ``root``.
    Without a ``val_root`` (synthetic_dir only), the last ``val_fraction`` of the
    training split (a contiguous block, so near-duplicate neighbouring frames do not
    leak across) is held out for validation.
    ``train_frames`` / ``val_frames`` > 0 also cap the frames used from a folder/dataset
    (0 = all). ``num_workers``: DataLoader worker processes.
    """

    dataset: str = "synthetic"
    root: str = ""
    val_root: str = ""
    train_frames: int = 1000
    val_frames: int = 100
    train_seed: int = 1
    val_seed: int = 2
    val_fraction: float = 0.05
    synth: dict[str, Any] = field(default_factory=dict)
    num_workers: int = 0

    def __post_init__(self) -> None:
        """Validate choices and ranges."""
        if self.dataset not in DATASETS:
            raise ConfigError(f"data.dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.dataset != "synthetic" and not self.root:
            raise ConfigError(f"data.root is required for dataset {self.dataset!r}")
        if self.dataset == "synthetic":
            if self.train_frames < 1 or self.val_frames < 1:
                raise ConfigError("data.train_frames and data.val_frames must be >= 1")
            if self.train_seed == self.val_seed:
                raise ConfigError("data.train_seed and data.val_seed must differ")
            if "seed" in self.synth:
                raise ConfigError("data.synth must not set 'seed': use data.train_seed / "
                                  "data.val_seed")
            from vvhand_core.data.synthetic.generator import SynthConfig

            try:
                SynthConfig.from_dict(dict(self.synth))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"data.synth: {exc}") from None
        elif self.synth:
            raise ConfigError("data.synth only applies to dataset 'synthetic'")
        if self.val_root and self.dataset != "synthetic_dir":
            raise ConfigError("data.val_root only applies to dataset 'synthetic_dir'")
        if self.train_frames < 0 or self.val_frames < 0:
            raise ConfigError("data.train_frames / data.val_frames must be >= 0")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.num_workers < 0:
            raise ConfigError("data.num_workers must be >= 0")


@dataclass
class AugmentConfig:
    """Training-time augmentation (validation never augments).

    cube_scale: the crop cube edge is multiplied by a factor uniform in this range.
    centre_jitter_mm: the crop centre moves by a vector uniform in +-this per axis.
    depth_noise_mm: Gaussian noise (sigma, mm) on every foreground crop pixel.
    roll_deg: the hand turns about the viewing ray through its centre by an angle
    uniform in +-roll_deg (0 = off), composed with every view.
    random_views: stage 1 only: the M views get random angles in +-60 degrees instead of
    the fixed candidate grid.
    """

    cube_scale: tuple[float, float] = (1.0, 1.0)
    centre_jitter_mm: float = 0.0
    depth_noise_mm: float = 0.0
    roll_deg: float = 0.0
    random_views: bool = False

    def __post_init__(self) -> None:
        """Validate ranges."""
        lo, hi = self.cube_scale
        if not 0 < lo <= hi:
            raise ConfigError(f"augment.cube_scale must satisfy 0 < lo <= hi, got "
                              f"{self.cube_scale}")
        for name in ("centre_jitter_mm", "depth_noise_mm", "roll_deg"):
            if getattr(self, name) < 0:
                raise ConfigError(f"augment.{name} must be >= 0")
        if self.roll_deg > 180:
            raise ConfigError("augment.roll_deg must be <= 180")


@dataclass
class OptimConfig:
    """Adam with exponential learning-rate decay per epoch.

    lr, weight_decay: Adam's; lr_decay: the factor applied after every epoch.
    batch_size: frames per step (per process under DDP). epochs: passes over the
    training split; steps_per_epoch > 0 caps the steps of an epoch (0 = the whole split).
    grad_clip > 0 clips the global gradient norm (0 = off). time_limit_min > 0 ends the
    run once this many wall-clock minutes of the invocation have passed: the current
    epoch stops early and is validated and saved as the last (0 = no limit; the
    checkpoint records the steps actually made).
    """

    lr: float = 5e-4
    weight_decay: float = 1e-6
    lr_decay: float = 0.95
    batch_size: int = 4
    epochs: int = 10
    steps_per_epoch: int = 0
    grad_clip: float = 0.0
    time_limit_min: float = 0.0

    def __post_init__(self) -> None:
        """Validate ranges."""
        if self.time_limit_min < 0:
            raise ConfigError("optim.time_limit_min must be >= 0")
        if not self.lr > 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ConfigError("optim.weight_decay must be >= 0")
        if not 0 < self.lr_decay <= 1:
            raise ConfigError(f"optim.lr_decay must be in (0, 1], got {self.lr_decay}")
        if self.batch_size < 1 or self.epochs < 1:
            raise ConfigError("optim.batch_size and optim.epochs must be >= 1")
        if self.steps_per_epoch < 0 or self.grad_clip < 0:
            raise ConfigError("optim.steps_per_epoch and optim.grad_clip must be >= 0")


@dataclass
class CommonConfig:
    """Fields both stages share.

    device: "auto" (CUDA when available, else CPU) or a torch device name; under torchrun
    with CUDA each process takes cuda:LOCAL_RANK. renderer: backend for
    ``make_renderer``. seed: initialisation and augmentation randomness.
    log_every: steps between progress-bar / log updates.
    """

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    device: str = "auto"
    renderer: str = "auto"
    seed: int = 0
    log_every: int = 10

    def __post_init__(self) -> None:
        """Validate shared fields."""
        if self.log_every < 1:
            raise ConfigError("log_every must be >= 1")


@dataclass
class Stage1Config(CommonConfig):
    """Stage 1: A2J and the teacher trained jointly, L = L_A2J + gamma * L_J.

    model: the networks (ModelConfig; ``num_candidates`` is M, the views rendered per
    frame; ``cube_mm`` the crop cube). skeleton: the joint set of the labels.
    top_n: N views fused in the training fusion loss (None = all M, as in the paper).
    val_num_views: N of teacher-select-N in validation (None = top_n).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    skeleton: str = "hands2019_21"
    top_n: int | None = None
    val_num_views: int | None = None

    def __post_init__(self) -> None:
        """Validate the stage-1 fields against the model."""
        super().__post_init__()
        try:
            skel = get_skeleton(self.skeleton)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if skel.num_joints != self.model.num_joints:
            raise ConfigError(f"skeleton {self.skeleton!r} has {skel.num_joints} joints, "
                              f"model.a2j.num_joints is {self.model.num_joints}")
        m = self.model.num_candidates
        for name in ("top_n", "val_num_views"):
            n = getattr(self, name)
            if n is not None and not 1 <= n <= m:
                raise ConfigError(f"{name} must be in 1..{m} (model.num_candidates), got {n}")

    @property
    def fused_views(self) -> int:
        """N used by the training fusion loss."""
        return self.top_n or self.model.num_candidates

    @property
    def validation_views(self) -> int:
        """N used by teacher-select-N validation."""
        return self.val_num_views or self.fused_views


@dataclass
class Stage2Config(CommonConfig):
    """Stage 2: the student distilled from a frozen stage-1 checkpoint.

    teacher_checkpoint: the stage-1 checkpoint (A2J + teacher; its model config,
    skeleton and cube are used). val_num_views: N of student-select-N in validation.
    """

    teacher_checkpoint: str = ""
    val_num_views: int = 3

    def __post_init__(self) -> None:
        """Validate the stage-2 fields."""
        super().__post_init__()
        if not self.teacher_checkpoint:
            raise ConfigError("teacher_checkpoint (the stage-1 checkpoint) is required")
        if self.augment.random_views:
            raise ConfigError("augment.random_views does not apply to stage 2: the student "
                              "scores the fixed candidate grid")
        if self.val_num_views < 1:
            raise ConfigError("val_num_views must be >= 1")


STAGES: dict[str, type] = {"stage1": Stage1Config, "stage2": Stage2Config}


# ---------------------------------------------------------------- dict <-> dataclass


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert a YAML value for a field annotated tp (raises ConfigError)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {_type_name(tp)}")


def from_dict(cls: type, d: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict; unknown keys / bad values -> ConfigError."""
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {d!r}")
    if hasattr(cls, "from_dict") and cls is not Stage1Config and cls is not Stage2Config:
        try:
            return cls.from_dict(d)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(d) - set(names))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown config key(s) {[prefix + k for k in unknown]}; known: "
                          f"{', '.join(prefix + n for n in names)}")
    kwargs = {}
    for name in names:
        if name in d:
            kwargs[name] = _coerce(d[name], hints[name], f"{where}.{name}" if where else name)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (tuples as lists) of a config dataclass, for YAML/JSON."""

    def plain(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x

    return plain(dataclasses.asdict(cfg))


# ---------------------------------------------------------------- YAML + overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """"a.b.c=value" -> (["a", "b", "c"], YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {text!r}: empty key component")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: bad value ({exc})") from None
    return parts, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (a copy); intermediate mappings are created."""
    out = yaml.safe_load(yaml.safe_dump(raw)) if raw else {}
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for i, p in enumerate(parts[:-1]):
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {text!r}: {'.'.join(parts[:i + 1])} is not a "
                                  "mapping")
            node = nxt
        node[parts[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file (ConfigError naming the file if missing or malformed)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: malformed YAML ({exc})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a YAML mapping")
    return raw


def load_config(stage: str, path: str | Path | None = None,
                overrides: list[str] | None = None) -> Stage1Config | Stage2Config:
    """The config of ``stage`` ("stage1" | "stage2") from a YAML file plus overrides."""
    if stage not in STAGES:
        raise ConfigError(f"stage must be one of {sorted(STAGES)}, got {stage!r}")
    raw = read_yaml(path) if path else {}
    raw = apply_overrides(raw, list(overrides or []))
    try:
        return from_dict(STAGES[stage], raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path else str(exc)) from None


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write a config as YAML (the resolved values, overrides included)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")
    return path
