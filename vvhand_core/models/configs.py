"""Configuration dataclasses of the three networks, serialisable to plain dicts.

A checkpoint stores ``ModelConfig.to_dict()``; ``ModelConfig.from_dict`` rebuilds it and
rejects unknown keys, so a config written by a newer version fails loudly instead of
being half-read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from vvhand_core.jointspace import DEPTH_UNITS

BACKBONES = ("resnet18", "resnet34", "resnet50")


def _check_backbone(name: str) -> None:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")


def _check_width(width: float) -> None:
    if not width > 0:
        raise ValueError(f"width multiplier must be > 0, got {width}")


@dataclass
class A2JConfig:
    """Anchor-to-joint pose network (A2J) on a normalised S x S crop.

    ``head_channels`` is the width of the 4 hidden head convolutions before the width
    multiplier (256 in A2J); ``crop_size`` must be a multiple of the output stride 16.
    ``depth_units``: the units of the depth head and of its loss (see
    ``jointspace.depth_scale``): "pixels" (d_n * S/2, weighted like u, v) or "normalised"
    (d_n; what checkpoints without this key were trained with). ``decode`` returns d_n
    either way.
    """

    num_joints: int = 21
    backbone: str = "resnet50"
    width: float = 1.0
    in_channels: int = 1
    crop_size: int = 176
    head_channels: int = 256
    head_layers: int = 4
    depth_units: str = "pixels"

    def __post_init__(self) -> None:
        _check_backbone(self.backbone)
        if self.depth_units not in DEPTH_UNITS:
            raise ValueError(f"depth_units must be one of {DEPTH_UNITS}, got "
                             f"{self.depth_units!r}")
        _check_width(self.width)
        if self.num_joints < 1:
            raise ValueError(f"num_joints must be >= 1, got {self.num_joints}")
        if self.crop_size <= 0 or self.crop_size % 16:
            raise ValueError(f"crop_size must be a positive multiple of 16, got {self.crop_size}")


@dataclass
class TeacherConfig:
    """Teacher confidence network: per-view encoder + one attention layer across views.

    ``num_heads`` heads of size ``head_dim`` (d_k = d_v = 64 per the release); the
    release uses one head, the paper says multi-head.
    """

    num_joints: int = 21
    num_heads: int = 4
    head_dim: int = 64
    d_model: int = 256
    ff_dim: int = 256
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.num_heads < 1 or self.head_dim < 1:
            raise ValueError("num_heads and head_dim must be >= 1")


@dataclass
class StudentConfig:
    """Student confidence network: ResNet on the normalised original crop -> M logits."""

    num_views: int = 25
    backbone: str = "resnet18"
    width: float = 1.0
    in_channels: int = 1

    def __post_init__(self) -> None:
        _check_backbone(self.backbone)
        _check_width(self.width)
        if self.num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {self.num_views}")


@dataclass
class ModelConfig:
    """Everything needed to rebuild the networks of one checkpoint.

    ``num_candidates`` is M, the size of the candidate view grid the student scores.
    ``cube_mm`` is the cube edge the networks were trained with (a hint for inference).
    """

    a2j: A2JConfig = field(default_factory=A2JConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    num_candidates: int = 25
    cube_mm: float = 250.0

    def __post_init__(self) -> None:
        if self.student.num_views != self.num_candidates:
            raise ValueError(
                f"student.num_views ({self.student.num_views}) must equal num_candidates "
                f"({self.num_candidates})"
            )
        if self.teacher.num_joints != self.a2j.num_joints:
            raise ValueError("teacher.num_joints must equal a2j.num_joints")

    @property
    def num_joints(self) -> int:
        """J, the number of joints the networks predict."""
        return self.a2j.num_joints

    @property
    def crop_size(self) -> int:
        """S, the crop edge in pixels."""
        return self.a2j.crop_size

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of JSON-able primitives."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown or wrongly typed keys raise ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"model config must be a dict, got {type(d).__name__}")
        top = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - top
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        for name, sub_cls in (("a2j", A2JConfig), ("teacher", TeacherConfig),
                              ("student", StudentConfig)):
            if name in d:
                kwargs[name] = _sub_from_dict(sub_cls, d[name], name)
        for name in ("num_candidates", "cube_mm"):
            if name in d:
                kwargs[name] = d[name]
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ValueError(f"bad model config: {exc}") from exc

    @classmethod
    def small(cls, num_joints: int = 21, backbone: str = "resnet18", width: float = 0.25,
              num_candidates: int = 25) -> ModelConfig:
        """A narrow configuration for tests and smoke runs."""
        return cls(
            a2j=A2JConfig(num_joints=num_joints, backbone=backbone, width=width),
            teacher=TeacherConfig(num_joints=num_joints, num_heads=2, head_dim=16,
                                  d_model=64, ff_dim=64),
            student=StudentConfig(num_views=num_candidates, backbone="resnet18", width=width),
            num_candidates=num_candidates,
        )


# keys added after checkpoints were first written -> the value those older files mean
_LEGACY_DEFAULTS: dict[str, dict[str, Any]] = {"a2j": {"depth_units": "normalised"}}


def with_legacy_defaults(d: Any) -> Any:
    """A checkpoint's stored model config with keys it predates filled by their old meaning.

    E.g. ``a2j.depth_units`` absent -> "normalised" (the depth units of every checkpoint
    written before the key existed), so old models decode with the scale they learned.
    Training configs do not go through this: their missing keys take today's defaults.
    """
    if not isinstance(d, dict):
        return d
    out = dict(d)
    for section, keys in _LEGACY_DEFAULTS.items():
        if isinstance(out.get(section), dict):
            out[section] = {**keys, **out[section]}
    return out


def _sub_from_dict(sub_cls: type, d: Any, name: str) -> Any:
    if not isinstance(d, dict):
        raise ValueError(f"model config {name!r} must be a dict, got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(sub_cls)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown keys in model config {name!r}: {sorted(unknown)}")
    try:
        return sub_cls(**d)
    except TypeError as exc:
        raise ValueError(f"bad model config {name!r}: {exc}") from exc
