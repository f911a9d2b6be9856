"""Config of the phased CPU recipe (``vvhand train phased``; see ``train/phased.py``).

One run, one wall-clock budget, three phases that spend it where it pays on a small CPU:

1. ``a2j``: A2J alone on k views per frame (k of the M grid views, optionally jittered)
   and many distinct frames per step;
2. ``teacher``: the teacher on A2J's outputs for all M grid views (A2J frozen, or trained
   on at a reduced learning rate), the fusion loss of the paper;
3. ``student``: the student distilled from the teacher's M confidences, computed once per
   frame and cached for the phase.

Each phase gets ``share`` of ``optim.time_budget_min`` and its own warm-up + cosine
learning-rate curve over that slice of time. Training frames come from the frame cache
(``cache``): cropped once, augmented afresh every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vvhand_core.models import ModelConfig
from vvhand_core.train.config import BaseConfig, ConfigError
from vvhand_core.views import GRID_SHAPES

MAX_CHECKPOINT_MIN = 10.0


@dataclass
class BudgetConfig:
    """Adam over a wall-clock budget (``optim`` of the phased recipe).

    time_budget_min: minutes for the whole run (all phases, validations and checkpoints
    included; building the frame cache is not). lr: the peak learning rate (times each
    phase's lr_scale); weight_decay: Adam's. Per phase the rate rises linearly from
    final_lr_frac * peak to the peak over the first warmup_frac of the phase, then follows
    a cosine down to final_lr_frac * peak at the phase's end. grad_clip > 0 clips the
    global gradient norm (0 = off). validate_every_min: minutes between validations (the
    learning curve; every phase's end is validated too). checkpoint_every_min: minutes
    between checkpoints (at most 10, so a stopped run loses at most that much).
    """

    time_budget_min: float = 30.0
    lr: float = 2e-3
    weight_decay: float = 1e-6
    warmup_frac: float = 0.05
    final_lr_frac: float = 0.02
    grad_clip: float = 0.0
    validate_every_min: float = 3.0
    checkpoint_every_min: float = 5.0

    def __post_init__(self) -> None:
        """Validate ranges."""
        if not self.time_budget_min > 0 or not self.lr > 0:
            raise ConfigError("optim.time_budget_min and optim.lr must be > 0")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError("optim.weight_decay and optim.grad_clip must be >= 0")
        if not 0 <= self.warmup_frac < 1 or not 0 <= self.final_lr_frac <= 1:
            raise ConfigError("optim.warmup_frac must be in [0, 1), optim.final_lr_frac in "
                              "[0, 1]")
        if not self.validate_every_min > 0:
            raise ConfigError("optim.validate_every_min must be > 0")
        if not 0 < self.checkpoint_every_min <= MAX_CHECKPOINT_MIN:
            raise ConfigError(f"optim.checkpoint_every_min must be in (0, "
                              f"{MAX_CHECKPOINT_MIN:g}]")


def _check_phase(name: str, share: float, batch_size: int, lr_scale: float) -> None:
    if share < 0 or batch_size < 1 or not lr_scale > 0:
        raise ConfigError(f"phases.{name}: share must be >= 0, batch_size >= 1, "
                          "lr_scale > 0")


@dataclass
class A2JPhaseConfig:
    """Phase 1, A2J alone: L_A2J on ``views_per_frame`` views of every frame.

    share: fraction of the budget. batch_size: frames per step. views_per_frame: k, the
    views rendered per frame, drawn without replacement from the M-view candidate grid
    (augment.random_views: k random angles instead). view_jitter_deg: each drawn grid
    view's azimuth and elevation move by a uniform +-this (0 = exact grid angles).
    lr_scale: multiplies optim.lr.
    """

    share: float = 0.73
    batch_size: int = 16
    views_per_frame: int = 3
    view_jitter_deg: float = 0.0
    lr_scale: float = 1.0

    def __post_init__(self) -> None:
        """Validate ranges."""
        _check_phase("a2j", self.share, self.batch_size, self.lr_scale)
        if self.views_per_frame < 1 or self.view_jitter_deg < 0:
            raise ConfigError("phases.a2j.views_per_frame must be >= 1 and view_jitter_deg "
                              ">= 0")


@dataclass
class TeacherPhaseConfig:
    """Phase 2, the teacher: all M grid views per frame, L = gamma * L_J (+ L_A2J).

    share, batch_size, lr_scale: as for the A2J phase (lr_scale for the teacher).
    a2j_lr_scale: 0 = A2J frozen (eval mode, no gradient: its outputs are the teacher's
    fixed input, the cheapest step); > 0 = A2J keeps training on L_A2J + gamma * L_J at
    this fraction of the teacher's rate (the teacher's input is detached either way, so
    L_J reaches A2J only through the fused joints). top_n: N views fused in the training
    fusion loss (None = all M, as the paper trains).
    """

    share: float = 0.15
    batch_size: int = 4
    lr_scale: float = 0.5
    a2j_lr_scale: float = 0.0
    top_n: int | None = None

    def __post_init__(self) -> None:
        """Validate ranges."""
        _check_phase("teacher", self.share, self.batch_size, self.lr_scale)
        if self.a2j_lr_scale < 0:
            raise ConfigError("phases.teacher.a2j_lr_scale must be >= 0")


@dataclass
class StudentPhaseConfig:
    """Phase 3, the student: smoothL1(beta * c_student, beta * c_teacher) (Eq. 4).

    share, batch_size, lr_scale: as for the A2J phase. frames: the first this many
    training frames whose teacher confidences (M logits of the un-augmented crop) are
    computed once at the start of the phase and reused every epoch; the student sees
    their crops augmented afresh (never rolled: a roll changes which views are good).
    """

    share: float = 0.12
    batch_size: int = 32
    lr_scale: float = 1.0
    frames: int = 300

    def __post_init__(self) -> None:
        """Validate ranges."""
        _check_phase("student", self.share, self.batch_size, self.lr_scale)
        if self.frames < 1:
            raise ConfigError("phases.student.frames must be >= 1")


@dataclass
class PhasesConfig:
    """The three phases in order; their shares of the budget must add up to 1."""

    a2j: A2JPhaseConfig = field(default_factory=A2JPhaseConfig)
    teacher: TeacherPhaseConfig = field(default_factory=TeacherPhaseConfig)
    student: StudentPhaseConfig = field(default_factory=StudentPhaseConfig)

    def __post_init__(self) -> None:
        """Shares add up to 1."""
        total = self.a2j.share + self.teacher.share + self.student.share
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(f"phases: the shares add up to {total:g}, not 1")


@dataclass
class CacheConfig:
    """The frame cache (``train/cache.py``): every training frame cropped once, uint16 mm.

    dir: folder of caches (one sub-folder per key: cache format, the frame source (the
    whole SynthConfig with its seed, or the dataset folder), frame count, window_mm, px).
    window_mm: cube edge stored around each frame's hand centre; it must hold the
    augmented crop: >= 1.1 * (model.cube_mm * augment.cube_scale[1] + 2 *
    augment.centre_jitter_mm). px: edge of the stored crops in pixels; the final crop must
    not be finer: px >= crop_size * window_mm / (cube_mm * cube_scale[0]). The crop size
    is not part of the key, so one cache serves every crop size up to that bound.
    """

    dir: str = "out/cache"
    window_mm: float = 340.0
    px: int = 256

    def __post_init__(self) -> None:
        """Validate ranges."""
        if not self.dir:
            raise ConfigError("cache.dir must name a folder")
        if not self.window_mm > 0 or self.px < 16:
            raise ConfigError("cache.window_mm must be > 0 and cache.px >= 16")


@dataclass
class PhasedConfig(BaseConfig):
    """The phased CPU recipe: A2J, then the teacher, then the student, in one budget.

    model: the networks (``num_candidates`` M, the grid the teacher and student score).
    skeleton: the joint set of the labels. val_num_views: N of the teacher- and
    student-select-N validations (the A2J phase validates A2J alone on the crop).
    augment.random_views applies to the A2J and teacher phases. One process (no torchrun).
    init_from: a checkpoint (``last.pt`` / ``best.pt`` of an earlier run, fp32 or fp16)
    whose three networks start this run instead of random weights: a further leg with a
    schedule of its own (a warm restart), e.g. on new scenes; its model config must equal
    ``model``. Null: random initialisation from ``seed``.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    skeleton: str = "hands2019_21"
    optim: BudgetConfig = field(default_factory=BudgetConfig)
    phases: PhasesConfig = field(default_factory=PhasesConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    val_num_views: int = 3
    init_from: str | None = None

    def __post_init__(self) -> None:
        """Validate the recipe against the model and the augmentation."""
        super().__post_init__()
        self.check_skeleton(self.skeleton, self.model)
        m = self.model.num_candidates
        if m not in GRID_SHAPES:
            raise ConfigError(f"model.num_candidates must be a view grid size "
                              f"{sorted(GRID_SHAPES)}, got {m}")
        checks = (("phases.a2j.views_per_frame", self.phases.a2j.views_per_frame),
                  ("phases.teacher.top_n", self.phases.teacher.top_n),
                  ("val_num_views", self.val_num_views))
        for name, n in checks:
            if n is not None and not 1 <= n <= m:
                raise ConfigError(f"{name} must be in 1..{m} (model.num_candidates), got {n}")
        lo, hi = self.augment.cube_scale
        cube, jitter = self.model.cube_mm, self.augment.centre_jitter_mm
        need = 1.1 * (cube * hi + 2 * jitter)
        if self.cache.window_mm < need - 1e-6:
            raise ConfigError(f"cache.window_mm {self.cache.window_mm:g} does not hold the "
                              f"augmented crop: needs >= {need:.1f} mm")
        px = self.model.crop_size * self.cache.window_mm / (cube * lo)
        if self.cache.px < px - 1e-6:
            raise ConfigError(f"cache.px {self.cache.px} is coarser than the "
                              f"{self.model.crop_size}-px crop: needs >= {px:.0f}")
        if self.data.dataset == "synthetic" and self.phases.student.frames > \
                self.data.train_frames:
            raise ConfigError("phases.student.frames must be <= data.train_frames")
