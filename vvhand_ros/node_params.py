"""hand_pose_node's parameters: one table, declared with descriptions and ranges.

config/vvhand.yaml and docs/ros.md document every entry (checked by test_node.py); the
pipeline's, fit's and outputs' defaults are :data:`vvhand_core.deployed.DEPLOYED`'s
(values compared by test_deployed.py). Lengths are in metres (REP-103) while vvhand_core
works in millimetres: vvhand_ros.param_units converts, and :func:`fit_config`,
:func:`pipeline_options` and vvhand_ros.frame_output's ``settings_from`` read the
parameters through it. The millimetre names (cube_mm ...) are declared as retired
parameters: a value given for one is logged as an error and ignored, setting one is refused
(both naming the parameter to set instead). The
subscriptions' QoS is not a parameter of ours: rclpy declares the standard
``qos_overrides.<topic>.subscription.<policy>`` parameters (QoSOverridingOptions).
"""

from __future__ import annotations

import re

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterException,
)

from vvhand_core.deployed import DEPLOYED
from vvhand_core.fit import FitConfig
from vvhand_core.lite.geometry import GRID_SHAPES
from vvhand_ros.param_units import (
    RETIRED,
    core_name,
    in_core_units,
    retired_message,
    to_ros,
    unit_warning,
)


def _si(name: str) -> float:
    """The deployed default of SI parameter ``name`` (DEPLOYED holds it in millimetres)."""
    return to_ros(name, getattr(DEPLOYED, core_name(name)))


# name, default, read only (needs a restart), description, (low, high) or None
PARAMETERS: tuple[tuple[str, object, bool, str, tuple | None], ...] = (
    ("model_path", "", True, "vvhand checkpoint (.pt); empty = the shipped default model", None),
    ("alternate_model", "", True,
     "a second pose model that also estimates every hand, the fit keeping whichever "
     "estimate it explains better (needs fit; about 2x the networks' and the fit's time): "
     "empty = none, grasp = the packaged model of hands holding things (a checkpoint: needs "
     "torch), or a checkpoint or export directory",
     None),
    ("device", "auto", True,
     "torch device: auto (cuda if available, else cpu), cpu, cuda, cuda:N", None),
    ("renderer", "auto", True, "virtual-view renderer: auto | torch | pycuda", None),
    ("backend", DEPLOYED.backend, True,
     "where the networks run: auto (onnxruntime on the CPU when it and onnx are installed, "
     "faster than torch there: docs/results.md; torch on a GPU) | torch | onnxruntime "
     "(model_path: a checkpoint, exported to ONNX in memory at start-up, or a directory "
     "written by `vvhand export-onnx`)", None),
    ("depth_transport", "raw", True,
     "raw (sensor_msgs/Image on depth/image) | compressedDepth (sensor_msgs/CompressedImage on "
     "depth/image/compressedDepth, png or rvl)", None),
    ("camera_model", "auto", True,
     "rectified (P) | raw (K and D; undistorted when D is not zero) | auto (rectified when "
     "the depth topic's last name contains 'rect')", None),
    ("sync_slop_s", 0.0, True,
     "camera_info pairing: 0 = same stamp as the depth image; > 0 = nearest stamp within this "
     "many seconds [s]", (0.0, 1.0)),
    ("sync_queue_size", 10, True,
     "depth images (and camera_infos) kept while waiting for their partner", (1, 1000)),
    ("num_views", DEPLOYED.num_views, False,
     "N views rendered and fused (select: 1..25; uniform: 1, 3, 9, 15 or 25)", (1, 25)),
    ("selector", DEPLOYED.selector, False,
     "view selection: student (renders N views) | teacher (renders and scores all 25) "
     "| uniform (fixed grid of N views)", None),
    ("fusion", DEPLOYED.fusion, False,
     "fusion of the N views: confidence (softmax of the logits) | average", None),
    ("cube_m", _si("cube_m"), False, "edge of the cube cropped around the hand centre [m]",
     (0.1, 0.6)),
    ("localiser", DEPLOYED.localiser, False,
     "hand localiser: detector (learned, finds the hand in front of the body or a table) | "
     "geometric (nearest sizeable object; crops the forearm when that is nearest)", None),
    ("detector_weights", "", True,
     "hand detector weights (.pt) for localiser=detector; empty = the shipped detector", None),
    ("fit", DEPLOYED.fit, False,
     "fit the articulated hand model to the depth after the network: refined joints, joint "
     "angles and a fit residual in ~/hands, phantom hands dropped (docs/ros.md, 'Hand-model "
     "fit'); costs ~6-15 ms per frame on one CPU core; false: the network's joints", None),
    ("fit_iterations", DEPLOYED.fit_iterations, False,
     "Levenberg-Marquardt iterations of the hand-model fit per frame (after 4 of inverse "
     "kinematics); more = closer fit, slower", (1, 50)),
    ("fit_max_residual_m", _si("fit_max_residual_m"), False,
     "with fit: a hand whose fit residual is larger is reported as no hand and not tracked "
     "(a phantom, or a bad estimate: docs/ros.md, 'Phantom hands'); 0 = off [m]", (0.0, 0.1)),
    ("mirror", DEPLOYED.mirror, False,
     "also run the networks on the depth image flipped left-right and average both answers "
     "(twice the networks' time, a lower error; with fit, a hand whose side the network "
     "cannot tell is fitted as both sides: docs/ros.md, 'Mirror pass')", None),
    ("max_hands", DEPLOYED.max_hands, False,
     "most hands estimated per frame, in one batch; ~/hands lists them nearest first, each "
     "with its own track (docs/ros.md, 'Several hands'); 1 = the nearest hand only", (1, 8)),
    ("min_depth_m", _si("min_depth_m"), False, "nearest depth searched for a hand [m]",
     (0.0, 10.0)),
    ("max_depth_m", _si("max_depth_m"), False, "farthest depth searched for a hand [m]",
     (0.0, 10.0)),
    ("publish_tf", True, False,
     "broadcast one TF frame per hand: its palm, <prefix>hand_<slot>_palm under the output "
     "frame (the slot stays with the hand: docs/ros.md, 'Frames')", None),
    ("publish_side_tf", False, False,
     "with publish_tf: also <prefix>hand_left_palm / hand_right_palm for the one hand of a "
     "frame known to be of that side (opt-in)", None),
    ("publish_joint_tf", False, False,
     "also broadcast one TF frame per joint, <prefix>hand_<slot>_<joint>, oriented along its "
     "bone (opt-in; docs/ros.md, 'Joint orientations')", None),
    ("publish_joint_states", True, False,
     "with fit: one sensor_msgs/JointState per hand on ~/joint_states, the fitted angles "
     "[rad] named <left|right|hand_<slot>>_<angle> (docs/ros.md, 'Joint states')", None),
    ("tf_prefix", "", False,
     "prefix of the TF frame names; empty = the node's namespace and name, e.g. "
     "cam1/hand_pose_node/, so that two cameras never clash", None),
    ("target_frame", "", True,
     "frame the outputs are expressed in (e.g. base_link), transformed with tf2; empty = "
     "the depth image's frame. Needs tf2_ros (a start-up error where it is missing)", None),
    ("tf_timeout_s", 0.1, True,
     "longest wait for the target_frame transform of a frame; then it is dropped [s]",
     (0.0, 10.0)),
    ("smoothing", DEPLOYED.smoothing, False,
     "One Euro filter on the published joints (reset when the hand is lost or jumps)", None),
    ("smoothing_min_cutoff_hz", DEPLOYED.smoothing_min_cutoff_hz, False,
     "One Euro minimum cutoff: lower = steadier when still, more lag [Hz]", (0.01, 100.0)),
    ("smoothing_beta", _si("smoothing_beta"), False,
     "One Euro speed coefficient: higher = less lag when moving [1/m]",
     (0.0, 10000.0)),
    ("smoothing_d_cutoff_hz", DEPLOYED.smoothing_d_cutoff_hz, False,
     "One Euro cutoff of the speed estimate [Hz]", (0.01, 100.0)),
    ("track_jump_m", _si("track_jump_m"), False,
     "a hand whose joints' mean moves more than this between frames starts a new track "
     "(new track_id, filter reset, the hand-model fit starts afresh) [m]", (0.001, 2.0)),
    ("track_max_gap_s", DEPLOYED.track_max_gap_s, False,
     "a hand seen again after more than this starts a new track [s]", (0.0, 3600.0)),
    ("confidence_scale_m", _si("confidence_scale_m"), False,
     "joint confidence = exp(-spread of the fused views / this) [m]", (0.0001, 1.0)),
    ("publish_markers", True, False, "publish RViz markers on ~/markers", None),
    ("num_threads", 0, True,
     "CPU threads for the networks (torch's; onnxruntime's sessions follow); 0 = the "
     "default (one per core). numpy's BLAS always runs one thread (its matrices are small; "
     "more threads made the fit 2-4x slower: docs/results.md)", (0, 256)),
    ("status_period_s", 10.0, True, "period of the status log line and /diagnostics [s]",
     (0.1, 3600.0)),
    ("diag_expected_rate_hz", 0.0, False,
     "output rate consumers need; /diagnostics WARN / ERROR below the fractions of it; "
     "0 = rate not checked [Hz]", (0.0, 1000.0)),
    ("diag_rate_warn_fraction", 0.8, False, "WARN below this fraction of the expected rate",
     (0.0, 1.0)),
    ("diag_rate_error_fraction", 0.5, False, "ERROR below this fraction of the expected rate",
     (0.0, 1.0)),
    ("diag_delay_warn_s", 0.5, False,
     "WARN when the median delay of outputs from their header.stamp exceeds this [s]",
     (0.0, 3600.0)),
    ("diag_delay_error_s", 2.0, False, "ERROR when that delay exceeds this [s]",
     (0.0, 3600.0)),
    ("diag_window_s", 5.0, True, "window of the measured rates and delays [s]",
     (0.1, 3600.0)),
)

# Parameters that a running node accepts; the others are read only.
RUNTIME_PARAMETERS = tuple(name for name, _, read_only, _, _ in PARAMETERS if not read_only)


FIT_PARAMETERS = ("fit", "fit_iterations", "fit_max_residual_m")
# Parameters a running node passes to VirtualViewPipeline.configure (besides the fit)
PIPELINE_PARAMETERS = ("num_views", "selector", "fusion", "cube_m", "localiser", "min_depth_m",
                       "max_depth_m", "mirror", "max_hands", "track_jump_m")


def fit_config(value):
    """The pipeline's ``fit`` (a FitConfig or None) from the :data:`FIT_PARAMETERS`.

    ``value(name)``: a parameter's value by ROS name, in its SI unit (the fit needs numpy
    and scipy only).
    """
    mm = in_core_units(value)
    if not mm("fit"):
        return None
    return FitConfig(iterations=int(mm("fit_iterations")),
                     max_residual_mm=float(mm("fit_max_residual_mm")))


def pipeline_options(value) -> dict:
    """The pipeline's configuration (PipelineConfig fields, millimetres) from the parameters.

    ``value(name)``: a parameter's value by ROS name, in its SI unit.
    """
    mm = in_core_units(value)
    return dict(
        selector=mm("selector"), num_views=int(mm("num_views")), fusion=mm("fusion"),
        device=mm("device"), renderer=mm("renderer"), backend=mm("backend"),
        cube_mm=float(mm("cube_mm")), min_depth_mm=float(mm("min_depth_mm")),
        max_depth_mm=float(mm("max_depth_mm")), localiser=mm("localiser"),
        detector_weights=mm("detector_weights"), fit=fit_config(value),
        mirror=bool(mm("mirror")), max_hands=int(mm("max_hands")),
        track_jump_mm=float(mm("track_jump_mm")))


def declare_parameters(node) -> None:
    """Declare every entry of PARAMETERS on ``node``, and the retired millimetre names.

    A start-up value of the wrong type or out of range raises ValueError with one line
    naming the parameter, the value given and what it must be (rclpy raises its own
    ParameterException types, which would end the process with a traceback). A value given
    for a retired name (param_units.RETIRED: cube_mm ...) is logged as one ERROR naming
    the parameter to set instead, and ignored; the node starts with the SI parameter's
    value. A smoothing_beta that looks like one in 1/mm is logged as a WARN.
    """
    for name, default, read_only, text, bounds in PARAMETERS:
        desc = ParameterDescriptor(description=text, read_only=read_only)
        if bounds is not None and isinstance(default, int):
            desc.integer_range = [IntegerRange(from_value=bounds[0], to_value=bounds[1], step=1)]
        elif bounds is not None:
            desc.floating_point_range = [
                FloatingPointRange(from_value=bounds[0], to_value=bounds[1], step=0.0)]
        try:
            node.declare_parameter(name, default, desc)
        except ParameterException as exc:
            raise ValueError(_bad_parameter(name, default, bounds, exc)) from None
    for old in RETIRED:  # declared untyped and unset, so that a value given for one is seen
        node.declare_parameter(old, None, ParameterDescriptor(
            description=f"retired: {retired_message(old)}", dynamic_typing=True))
        given = node.get_parameter(old).value
        if given is not None:
            node.get_logger().error(f"{retired_message(old, given)}; the value given for "
                                    f"{old} is ignored")
    warning = unit_warning("smoothing_beta", node.get_parameter("smoothing_beta").value)
    if warning:
        node.get_logger().warning(warning)


def refuse_retired(values: dict) -> str | None:
    """The reason to refuse setting ``values`` (name -> value) when one is a retired name."""
    return "; ".join(retired_message(n, v) for n, v in values.items() if n in RETIRED) or None


def _bad_parameter(name: str, default, bounds, exc: Exception) -> str:
    """One line: the parameter, what it must be (type like the default, range), the value."""
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}[
        type(default)]
    want = f"{kind} like {default!r}"
    if bounds is not None:
        want += f" in {bounds[0]:g}..{bounds[1]:g}"
    text = str(exc)
    if isinstance(exc, InvalidParameterTypeException):
        m = re.search(r" to '(.*)' of type '(\w+)'", text)
        return f"parameter {name} must be {want}, got " + (
            f"{m.group(1)!r} ({m.group(2).lower()})" if m else text.removesuffix(f": {name}"))
    if isinstance(exc, InvalidParameterValueException):
        m = re.search(r"value \((.*)\) for parameter", text)
        return f"parameter {name} must be {want}, got {m.group(1) if m else text}"
    return f"parameter {name}: {text}"


# N of the uniform grids that fit the num_views parameter's range (views.GRID_SHAPES holds
# larger grids too, for models with more candidate views)
_MAX_VIEWS = next(bounds[1] for name, _, _, _, bounds in PARAMETERS if name == "num_views")
UNIFORM_NUM_VIEWS = tuple(n for n in sorted(GRID_SHAPES) if n <= _MAX_VIEWS)


def check_num_views(selector: str, num_views: int) -> None:
    """ValueError when ``num_views`` is no uniform grid size while ``selector`` is uniform."""
    if selector == "uniform" and num_views not in UNIFORM_NUM_VIEWS:
        raise ValueError(f"uniform num_views must be one of {list(UNIFORM_NUM_VIEWS)}, "
                         f"got {num_views}")


def check_depth_range(min_depth_m: float, max_depth_m: float) -> None:
    """ValueError unless 0 < min_depth_m < max_depth_m [m] (what the localisers need)."""
    if not 0.0 < min_depth_m < max_depth_m:
        raise ValueError(f"need 0 < min_depth_m < max_depth_m, got {min_depth_m:g} m, "
                         f"{max_depth_m:g} m")
