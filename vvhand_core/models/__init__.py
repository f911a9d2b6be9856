"""The networks: A2J pose network, teacher and student view-confidence networks.

``build_models(model_config, skeleton)`` builds all three from a :class:`ModelConfig`
(or its dict form); the skeleton fixes the number of joints J.
"""

from __future__ import annotations

from typing import Any

from vvhand_core.models.a2j import A2J, A2JOutput, decode, make_anchors
from vvhand_core.models.configs import A2JConfig, ModelConfig, StudentConfig, TeacherConfig
from vvhand_core.models.resnet import ResNet
from vvhand_core.models.student import Student
from vvhand_core.models.teacher import Teacher, teacher_features

__all__ = [
    "A2J", "A2JConfig", "A2JOutput", "ModelConfig", "ResNet", "Student", "StudentConfig",
    "Teacher", "TeacherConfig", "build_models", "decode", "make_anchors", "teacher_features",
]


def build_models(model_config: ModelConfig | dict[str, Any],
                 skeleton: Any = None) -> tuple[A2J, Student, Teacher]:
    """(a2j, student, teacher) with freshly initialised weights.

    ``skeleton`` (a :class:`vvhand_core.skeletons.Skeleton`) must have as many joints as
    the config; ValueError otherwise.
    """
    cfg = model_config if isinstance(model_config, ModelConfig) else \
        ModelConfig.from_dict(model_config)
    if skeleton is not None and skeleton.num_joints != cfg.num_joints:
        raise ValueError(f"skeleton {skeleton.name!r} has {skeleton.num_joints} joints, "
                         f"the model config {cfg.num_joints}")
    return A2J(cfg.a2j), Student(cfg.student), Teacher(cfg.teacher)
