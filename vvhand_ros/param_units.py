"""hand_pose_node's parameters in SI units, vvhand_core's values in millimetres: the one conversion.

REP-103: ROS interfaces use metres and seconds. vvhand_core (``DEPLOYED``,
``PipelineConfig``, ``FitConfig``, ``SmoothingConfig``) works in millimetres. The node's
parameters that hold a length, or the inverse of one, are declared in SI units and turned
into the core's values here, and only here, at start-up and for every change at run time:

=====================  =====  =======================  ======  ================
ROS parameter          unit   vvhand_core value        unit    core = ROS x
=====================  =====  =======================  ======  ================
cube_m                 m      cube_mm                  mm      1000
fit_max_residual_m     m      fit_max_residual_mm      mm      1000
min_depth_m            m      min_depth_mm             mm      1000
max_depth_m            m      max_depth_mm             mm      1000
track_jump_m           m      track_jump_mm            mm      1000
confidence_scale_m     m      confidence_scale_mm      mm      1000
smoothing_beta         1/m    smoothing_beta           1/mm    0.001
=====================  =====  =======================  ======  ================

Every other parameter has the same name, value and unit in both (seconds, hertz, counts,
flags, text). The millimetre names (``cube_mm`` ...: :data:`RETIRED`) are no parameters:
vvhand_ros.node_params declares them unset so that a value given for one is seen, and
refuses them with :func:`retired_message`; ``smoothing_beta`` has one name for both units,
so a value that looks like one in 1/mm gets a warning (:func:`unit_warning`).
No ROS imports here: the benches and ``vvhand replay`` use it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

MM_PER_M = 1000.0


@dataclass(frozen=True)
class SIParameter:
    """A node parameter in an SI unit and the vvhand_core value it stands for."""

    name: str  # the ROS parameter
    unit: str  # its unit
    core: str  # the vvhand_core field (DeployedDefaults, PipelineConfig, ...)
    core_unit: str
    factor: float  # core value = ROS value x factor


SI_PARAMETERS: tuple[SIParameter, ...] = (
    SIParameter("cube_m", "m", "cube_mm", "mm", MM_PER_M),
    SIParameter("fit_max_residual_m", "m", "fit_max_residual_mm", "mm", MM_PER_M),
    SIParameter("min_depth_m", "m", "min_depth_mm", "mm", MM_PER_M),
    SIParameter("max_depth_m", "m", "max_depth_mm", "mm", MM_PER_M),
    SIParameter("track_jump_m", "m", "track_jump_mm", "mm", MM_PER_M),
    SIParameter("confidence_scale_m", "m", "confidence_scale_mm", "mm", MM_PER_M),
    SIParameter("smoothing_beta", "1/m", "smoothing_beta", "1/mm", 1.0 / MM_PER_M),
)
BY_NAME = {p.name: p for p in SI_PARAMETERS}
BY_CORE = {p.core: p for p in SI_PARAMETERS}
# a millimetre name (refused) -> the SI parameter to set instead
RETIRED = {p.core: p for p in SI_PARAMETERS if p.core != p.name}

# smoothing_beta below this [1/m] is most likely a value meant in 1/mm (the old unit)
BETA_OLD_UNIT_BELOW = 0.5


def _clean(x: float) -> float:
    """``x`` without the float noise of a unit change (12 significant digits)."""
    return float(f"{x:.12g}")


def core_name(name: str) -> str:
    """The vvhand_core name of ROS parameter ``name`` (the same name when it has no unit)."""
    return BY_NAME[name].core if name in BY_NAME else name


def ros_name(core: str) -> str:
    """The ROS parameter that sets vvhand_core value ``core``."""
    return BY_CORE[core].name if core in BY_CORE else core


def to_core(name: str, value):
    """ROS parameter ``name``'s ``value`` in the core's unit (others: unchanged).

    Raises TypeError / ValueError when a unit parameter's value is no number.
    """
    p = BY_NAME.get(name)
    if p is None:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"parameter {name} must be a number [{p.unit}], got {value!r}")
    return _clean(float(value) * p.factor)


def to_ros(name: str, core_value):
    """The value of ROS parameter ``name`` for the core's ``core_value`` (inverse of to_core)."""
    p = BY_NAME.get(name)
    return core_value if p is None else _clean(float(core_value) / p.factor)


def in_core_units(value: Callable[[str], object]) -> Callable[[str], object]:
    """``value(ros_name)`` (a parameter getter) -> a getter by core name, in the core's unit.

    E.g. ``in_core_units(get)("cube_mm")`` is ``get("cube_m") x 1000``.
    """
    def core(name: str):
        ros = ros_name(name)
        return to_core(ros, value(ros))

    return core


def core_changes(changes: dict[str, object]) -> dict[str, object]:
    """Parameter changes by ROS name -> the same changes by core name, in the core's unit."""
    return {core_name(name): to_core(name, v) for name, v in changes.items()}


def retired_message(old: str, value=None) -> str:
    """One line: ``old`` is no parameter any more; the one to set instead, its unit, factor.

    ``value``: the number given for ``old``, shown converted.
    """
    p = RETIRED[old]
    text = (f"parameter {old} [{p.core_unit}] was replaced by {p.name} [{p.unit}] (REP-103 "
            f"units): set {p.name} = {old} x {1.0 / p.factor:g}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text += f", here {p.name}: {to_ros(p.name, value):g}"
    return text


def unit_warning(name: str, value) -> str | None:
    """A warning when ``value`` of ``name`` looks like one in the old unit, else None."""
    if name != "smoothing_beta" or not isinstance(value, (int, float)):
        return None
    if 0.0 < value < BETA_OLD_UNIT_BELOW:
        return (f"smoothing_beta {value:g} [1/m] barely follows fast motion; it is in 1/m "
                f"now (was 1/mm): a value meant in 1/mm is {to_ros(name, value):g} [1/m]")
    return None


__all__ = ["BY_CORE", "BY_NAME", "MM_PER_M", "RETIRED", "SI_PARAMETERS", "SIParameter",
           "core_changes", "core_name", "in_core_units", "retired_message", "ros_name",
           "to_core", "to_ros", "unit_warning"]
