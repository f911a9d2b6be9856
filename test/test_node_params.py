"""hand_pose_node's parameters in SI units (REP-103), converted once to vvhand_core's mm.

Real rclpy: the node in this process (start-up values, changes at run time) and as a child
process over DDS (a retired millimetre name given at start-up and set at run time: one
clear error, the value ignored, the node keeps publishing). The docs' parameter table
carries every parameter's unit, as the node's descriptions do.
"""

from __future__ import annotations

import re

import pytest

from ros_helpers import REPO, spin_until, stop

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy")
from node_harness import Harness, header, start_node  # noqa: E402
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter as RosParameter  # noqa: E402

from vvhand_core.deployed import DEPLOYED  # noqa: E402
from vvhand_ros.node_params import PARAMETERS  # noqa: E402
from vvhand_ros.param_units import RETIRED, SI_PARAMETERS, in_core_units, to_core, to_ros  # noqa: E402,E501

UNIT = re.compile(r"\[([^\]]+)\]$")


def _node(context, checkpoint, **overrides):
    from vvhand_ros.node import HandPoseNode

    params = {"model_path": str(checkpoint), "device": "cpu", **overrides}
    return HandPoseNode(context=context, parameter_overrides=[
        RosParameter(name, value=value) for name, value in params.items()])


def _set(node, **values):
    return node.set_parameters([RosParameter(n, value=v) for n, v in values.items()])


def test_conversion_table_round_trips_and_reads_by_core_name():
    for p in SI_PARAMETERS:
        core = getattr(DEPLOYED, p.core)
        assert to_core(p.name, to_ros(p.name, core)) == core, p.name
    assert to_core("cube_m", 0.3) == 300.0 and to_core("smoothing_beta", 20.0) == 0.02
    assert to_ros("min_depth_m", 200.0) == 0.2 and to_core("num_views", 3) == 3
    mm = in_core_units({"cube_m": 0.3, "track_jump_m": 0.12, "fit": True}.__getitem__)
    assert (mm("cube_mm"), mm("track_jump_mm"), mm("fit")) == (300.0, 120.0, True)
    with pytest.raises(TypeError, match=r"cube_m must be a number \[m\]"):
        to_core("cube_m", "0.3")


def test_si_values_reach_the_pipeline_in_mm_at_start_and_at_run_time(rclpy_context, checkpoint):
    node = _node(rclpy_context, checkpoint, cube_m=0.3, min_depth_m=0.25, max_depth_m=1.5,
                 fit=True, fit_max_residual_m=0.004, track_jump_m=0.12,
                 confidence_scale_m=0.03, smoothing_beta=40.0)
    try:
        cfg, out = node.pipeline.config, node._frame_out.settings
        assert (cfg.cube_mm, cfg.min_depth_mm, cfg.max_depth_mm) == (300.0, 250.0, 1500.0)
        assert cfg.fit.max_residual_mm == 4.0 and cfg.track_jump_mm == 120.0
        assert out.confidence_scale_mm == 30.0 and out.smoothing.jump_mm == 120.0
        assert out.smoothing.beta == pytest.approx(0.04)  # [1/mm]
        # at run time: the same conversion
        results = _set(node, min_depth_m=0.35, cube_m=0.2, smoothing_beta=10.0,
                       fit_max_residual_m=0.006, confidence_scale_m=0.01)
        assert all(r.successful for r in results), [r.reason for r in results]
        cfg, out = node.pipeline.config, node._frame_out.settings
        assert (cfg.min_depth_mm, cfg.cube_mm, cfg.fit.max_residual_mm) == (350.0, 200.0, 6.0)
        assert out.smoothing.beta == pytest.approx(0.01) and out.confidence_scale_mm == 10.0
        # refused, with the SI names in the reason; nothing changed
        (bad,) = _set(node, min_depth_m=1.6)
        assert not bad.successful and "min_depth_m < max_depth_m" in bad.reason
        (bad,) = _set(node, cube_m=300.0)  # a value in mm: out of the range in metres
        assert not bad.successful
        (old,) = _set(node, cube_mm=300.0)
        assert not old.successful and "cube_m [m]" in old.reason and "cube_m: 0.3" in old.reason
        assert (node.pipeline.config.min_depth_mm, node.pipeline.config.cube_mm) == (350.0, 200.0)
    finally:
        node.destroy_node()


def test_alternate_model_is_loaded_and_keeps_the_fit_on(rclpy_context, checkpoint):
    node = _node(rclpy_context, checkpoint, fit=True, alternate_model=str(checkpoint))
    try:
        other = node.pipeline.alternate
        assert other is not None and other is not node.pipeline
        assert other.config.fit is None and other.config.cube_mm == node.pipeline.config.cube_mm
        (ok,) = _set(node, num_views=2)  # the alternate follows the node's pipeline
        assert ok.successful and other.config.num_views == 2
        (bad,) = _set(node, fit=False)
        assert not bad.successful and "needs the hand-model fit" in bad.reason
        assert node.pipeline.config.fit is not None
    finally:
        node.destroy_node()
    with pytest.raises(ValueError, match="needs the hand-model fit"):
        _node(rclpy_context, checkpoint, fit=False, alternate_model=str(checkpoint))


def test_retired_name_is_refused_by_the_lifecycle_node_too(rclpy_context):
    from vvhand_ros.lifecycle_node import LifecycleHandPoseNode

    node = LifecycleHandPoseNode(context=rclpy_context, parameter_overrides=[
        RosParameter("track_jump_mm", value=90.0)])
    try:  # unconfigured: no model, the parameters are only stored, the old name refused
        assert node.get_parameter("track_jump_mm").value == 90.0  # seen (and logged)
        (old,) = _set(node, track_jump_mm=90.0)
        assert not old.successful and "track_jump_m [m]" in old.reason
        (new,) = _set(node, track_jump_m=0.09)
        assert new.successful
    finally:
        node.destroy_node()


def _set_over_dds(h, name, value):
    client = h.node.create_client(SetParameters, "/hand_pose_node/set_parameters")
    assert client.wait_for_service(timeout_sec=10.0)
    req = SetParameters.Request(parameters=[Parameter(name=name, value=ParameterValue(
        type=ParameterType.PARAMETER_DOUBLE, double_value=value))])
    fut = client.call_async(req)
    assert spin_until(h.node, fut.done, 10.0)
    (result,) = fut.result().results
    return result


def test_retired_name_is_one_clear_error_and_the_node_keeps_publishing(
        rclpy_context, ros_env, checkpoint, hand_frame):
    """cube_mm from an old params file: ignored with one ERROR, cube_m's 0.3 m is cropped."""
    proc = start_node(ros_env, checkpoint, "cube_m:=0.3", "cube_mm:=400.0",
                      "smoothing_beta:=0.02")
    h = Harness(rclpy_context)
    try:
        h.wait_ready(proc)
        h.send(hand_frame.depth_mm, header(1), hand_frame.intrinsics)
        assert spin_until(h.node, lambda: len(h.poses) >= 1, 30.0), stop(proc)
        first = h.poses[-1]
        result = _set_over_dds(h, "cube_mm", 300.0)  # `ros2 param set ... cube_mm 300`
        assert not result.successful
        assert "replaced by cube_m [m]" in result.reason and "cube_m: 0.3" in result.reason
        h.send(hand_frame.depth_mm, header(2), hand_frame.intrinsics)
        assert spin_until(h.node, lambda: len(h.poses) >= 2, 30.0), stop(proc)
        assert _set_over_dds(h, "cube_m", 0.2).successful
        h.send(hand_frame.depth_mm, header(3), hand_frame.intrinsics)
        assert spin_until(h.node, lambda: len(h.poses) >= 3, 30.0), stop(proc)
        assert proc.poll() is None
    finally:
        out = stop(proc)
        h.node.destroy_node()
    assert first.valid and first.cube_size == pytest.approx(0.3)  # not cube_mm's 400 mm
    assert h.poses[1].cube_size == pytest.approx(0.3)  # the refused set changed nothing
    assert h.poses[2].cube_size == pytest.approx(0.2)
    errors = [line for line in out.splitlines()
              if "ERROR" in line and "cube_mm [mm] was replaced by cube_m [m]" in line]
    startup = [line for line in errors if "ignored" in line]
    assert len(startup) == 1 and "here cube_m: 0.4" in startup[0], out  # once, at start-up
    assert len(errors) == 2 and "change refused" in errors[1]  # and the refused set
    assert "smoothing_beta 0.02 [1/m]" in out and "is 20 [1/m]" in out  # the unit warning
    assert "Traceback" not in out


def _docs_rows() -> dict[str, list[str]]:
    """docs/ros.md's parameter table: name -> its cells (name, default, unit, ...)."""
    docs = (REPO / "docs" / "ros.md").read_text()
    table = docs[docs.index("| name | default | unit |"):]
    rows = {}
    for line in table[:table.index("\n\n")].splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        for name in re.findall(r"`([a-z_]+)`", cells[0]):
            rows[name] = cells
    return rows


def test_docs_table_lists_every_parameter_with_its_si_unit():
    rows = _docs_rows()
    for name, _default, _ro, text, _bounds in PARAMETERS:
        assert name in rows, f"docs/ros.md's parameter table lacks {name}"
        m = UNIT.search(text)
        unit = m.group(1) if m else "-"
        assert rows[name][2] == unit, (name, rows[name][2], unit)
        assert not name.endswith("_mm") and unit not in ("mm", "1/mm"), name
        suffix = {"_m": "m", "_s": "s", "_hz": "Hz"}
        for end, want in suffix.items():
            if name.endswith(end):
                assert unit == want, name
    for p in SI_PARAMETERS:
        assert rows[p.name][2] == p.unit, p.name
    assert set(rows) == {name for name, *_ in PARAMETERS}
    docs = (REPO / "docs" / "ros.md").read_text()
    table = docs[docs.index("| old name [unit] | new name [unit] |"):]
    migration = {}  # the migration table: old name -> (its row's new names, new unit)
    for line in table[:table.index("\n\n")].splitlines()[2:]:
        old_cell, new_cell, _ = [c.strip() for c in line.strip().strip("|").split(" | ")]
        for old in re.findall(r"`([a-z_]+)`", old_cell):
            migration[old] = (re.findall(r"`([a-z_]+)`", new_cell),
                              re.search(r"\[([^\]]+)\]", new_cell).group(1))
    for old, p in RETIRED.items():
        assert p.name in migration[old][0] and migration[old][1] == p.unit, old
    assert migration["smoothing_beta"][1] == "1/m"
