"""Training configuration: the dataclasses shared by every stage, and stages 1 and 2.

A config file is YAML whose top-level keys are the fields of :class:`Stage1Config`,
:class:`Stage2Config` or ``phased_config.PhasedConfig``; nested sections (``data``,
``augment``, ``optim``, ``loss``, ``model``, ...) map to their own dataclasses. Unknown
keys and wrongly typed values raise :class:`ConfigError` naming the key, so a typo never
silently trains something else (YAML, overrides and the dict <-> dataclass mapping live
in ``configio``)::

    vvhand train stage1 --config config/train_stage1.yaml --set optim.lr=1e-3 \
        --set data.train_frames=200 --set model.a2j.width=0.25
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    ``synth_mix`` (synthetic only): scene version -> share, e.g. {2: 0.4, 3: 0.6}; frame i
    of a split is frame i of the version its own draw picks (``splits.MixedFrames``), so a
    mixture is as deterministic as one version. Empty: ``synth``'s scene version alone.
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
    synth_mix: dict[int, float] = field(default_factory=dict)
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
            self._check_mix()
        elif self.synth or self.synth_mix:
            raise ConfigError("data.synth / data.synth_mix only apply to dataset 'synthetic'")
        if self.val_root and self.dataset != "synthetic_dir":
            raise ConfigError("data.val_root only applies to dataset 'synthetic_dir'")
        if self.train_frames < 0 or self.val_frames < 0:
            raise ConfigError("data.train_frames / data.val_frames must be >= 0")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.num_workers < 0:
            raise ConfigError("data.num_workers must be >= 0")



    def _check_mix(self) -> None:
        """ConfigError unless synth_mix maps known scene versions to positive shares."""
        if not self.synth_mix:
            return
        from vvhand_core.data.synthetic.generator import SCENE_VERSIONS

        if "scene_version" in self.synth:
            raise ConfigError("data.synth_mix and data.synth.scene_version exclude each other")
        for v, share in self.synth_mix.items():
            if v not in SCENE_VERSIONS or not isinstance(share, (int, float)) or share <= 0:
                raise ConfigError(f"data.synth_mix: {v}: {share} (need a scene version in "
                                  f"{SCENE_VERSIONS} -> a share > 0)")
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
class BaseConfig:
    """Fields every stage shares.

    device: "auto" (CUDA when available, else CPU) or a torch device name; under torchrun
    with CUDA each process takes cuda:LOCAL_RANK. renderer: backend for
    ``make_renderer``. seed: initialisation and augmentation randomness.
    log_every: steps between progress-bar / log updates.
    """

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    device: str = "auto"
    renderer: str = "auto"
    seed: int = 0
    log_every: int = 10

    def __post_init__(self) -> None:
        """Validate shared fields."""
        if self.log_every < 1:
            raise ConfigError("log_every must be >= 1")

    def check_skeleton(self, skeleton: str, model: ModelConfig) -> None:
        """ConfigError unless ``skeleton`` names a joint set with the model's J joints."""
        try:
            skel = get_skeleton(skeleton)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if skel.num_joints != model.num_joints:
            raise ConfigError(f"skeleton {skeleton!r} has {skel.num_joints} joints, "
                              f"model.a2j.num_joints is {model.num_joints}")


@dataclass
class CommonConfig(BaseConfig):
    """Stages 1 and 2: the shared fields plus Adam with per-epoch decay (``optim``)."""

    optim: OptimConfig = field(default_factory=OptimConfig)


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
        self.check_skeleton(self.skeleton, self.model)
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
