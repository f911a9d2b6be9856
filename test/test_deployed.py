"""One source of deployed defaults (issue 26): every place that writes a default down agrees.

vvhand_core.deployed.DEPLOYED is what the node runs; compared here by VALUE with the node's
parameter table, config/vvhand.yaml, docs/ros.md's parameter table, `vvhand replay`,
`make demo` and what the benches measure as "what the node runs". DEPLOYED holds
millimetres, the node's parameters metres (vvhand_ros.param_units converts).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from vvhand_core.deployed import DEPLOYED, DeployedDefaults
from vvhand_core.fit import FitConfig

pytest.importorskip("rclpy", reason="the node's parameter table imports rcl_interfaces")

from vvhand_ros.node_params import PARAMETERS  # noqa: E402
from vvhand_ros.param_units import in_core_units, ros_name  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NODE = {name: default for name, default, *_ in PARAMETERS}


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def test_node_parameters_take_the_deployed_values():
    in_mm = in_core_units(NODE.__getitem__)
    for field in dataclasses.fields(DeployedDefaults):
        assert ros_name(field.name) in NODE, f"{field.name}: no node parameter"
        assert _same(in_mm(field.name), getattr(DEPLOYED, field.name)), field.name
        assert type(NODE[ros_name(field.name)]) is type(getattr(DEPLOYED, field.name)), field.name
    assert NODE["cube_m"] == DEPLOYED.cube_mm / 1000  # metres, and beta per metre:
    assert NODE["smoothing_beta"] == DEPLOYED.smoothing_beta * 1000


def test_yaml_values_are_the_node_defaults():
    cfg = yaml.safe_load((REPO / "config" / "vvhand.yaml").read_text())
    values = cfg["/**"]["ros__parameters"]
    for name, default in NODE.items():
        assert _same(values[name], default), f"config/vvhand.yaml {name}: {values[name]!r}"


def _doc_value(text: str):
    text = text.strip().strip("`")
    if text in ("true", "false"):
        return text == "true"
    if text == '""':
        return ""
    try:
        return float(text)
    except ValueError:
        return text


def test_docs_parameter_table_values_are_the_node_defaults():
    docs = (REPO / "docs" / "ros.md").read_text()
    table = docs[docs.index("| name | default | unit |"):]
    seen = set()
    for line in table[:table.index("\n\n")].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([a-z_]+)`", cells[0])
        if not names or any(n not in NODE for n in names):
            continue
        values = [v for v in cells[1].split(", ")]
        assert len(values) == len(names), line
        for name, value in zip(names, values):
            assert _same(_doc_value(value), NODE[name]), f"docs/ros.md {name}: {value}"
            seen.add(name)
    assert seen == set(NODE)


def test_replay_and_demo_default_to_the_deployed_pipeline():
    from vvhand_ros import demo, replay_cli
    from vvhand_ros.replay import ReplayConfig, _pipeline_config

    cfg = ReplayConfig(bag=Path("x"))
    for name in ("selector", "num_views", "fusion", "fit", "fit_max_residual_mm", "mirror",
                 "max_hands", "backend"):
        assert _same(getattr(cfg, name), getattr(DEPLOYED, name)), name
    parser = argparse.ArgumentParser()
    replay_cli.add_arguments(parser)
    args = parser.parse_args(["bag"])
    for name in ("selector", "num_views", "fusion", "fit", "fit_max_residual_mm",
                 "max_hands", "backend"):
        assert _same(getattr(args, name), getattr(DEPLOYED, name)), name
    assert _pipeline_config(ReplayConfig(bag=Path("x"), backend="torch")).fit == \
        DEPLOYED.fit_config()
    src = (REPO / "vvhand_ros" / "demo.py").read_text()
    assert "DEPLOYED.num_views" in src and "DEPLOYED.selector" in src
    assert demo.main  # the module imports


def test_deployed_fit_config_is_what_the_node_builds():
    from vvhand_ros.node_params import fit_config

    assert fit_config(NODE.__getitem__) == DEPLOYED.fit_config()
    assert DEPLOYED.fit_config() != FitConfig()  # the residual limit: the library's is off
    assert DEPLOYED.fit_config().max_residual_mm == DEPLOYED.fit_max_residual_mm
    opts = DEPLOYED.pipeline_options()
    assert opts["fit"] == DEPLOYED.fit_config() and opts["num_views"] == DEPLOYED.num_views
    assert DEPLOYED.mode == "student-3"


def test_benches_measure_what_the_node_runs():
    from vvhand_core.benchmarks import pipeline as bench

    assert bench.fit_config_of(True) == DEPLOYED.fit_config()
