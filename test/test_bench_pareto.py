"""`vvhand bench pareto`: candidates scored on both splits, timed interleaved, front marked."""

from __future__ import annotations

import argparse

import pytest

from vvhand_core.benchmarks import cli, pareto
from vvhand_core.checkpoint import save_random_checkpoint


def test_pareto_front():
    # (error, fps): b is better on both than a; c is faster but less accurate than b
    assert pareto.pareto_flags([20.0, 15.0, 30.0], [10.0, 12.0, 20.0]) == [False, True, True]
    assert pareto.pareto_flags([10.0, 10.0], [5.0, 5.0]) == [True, True]  # ties: both kept


def test_bad_model_lists_are_refused(tmp_path):
    with pytest.raises(ValueError, match="LABEL=CHECKPOINT"):
        pareto.parse_models("just_a_path.pt")
    with pytest.raises(ValueError, match="no file"):
        pareto.parse_models(f"a={tmp_path / 'missing.pt'}")


def test_pareto_bench_writes_a_row_per_candidate(tmp_path, monkeypatch):
    monkeypatch.setenv("VVHAND_RESULTS", str(tmp_path / "results.md"))
    a = save_random_checkpoint(tmp_path / "a.pt", width=0.125, seed=1)
    b = save_random_checkpoint(tmp_path / "b.pt", width=0.125, seed=2)
    assert cli.BENCHES["pareto"] == "vvhand_core.benchmarks.pareto"
    parser = argparse.ArgumentParser()
    pareto.add_arguments(parser)
    args = parser.parse_args(["--models", f"first={a},second={b}", "--frames", "2",
                              "--timed-frames", "2", "--threads", "1"])
    assert pareto.run(args) == 0
    text = (tmp_path / "results.md").read_text()
    rows = [ln for ln in text.splitlines() if ln.startswith(("| first", "| second"))]
    assert len(rows) == 2 and "Candidate models (Pareto)" in text
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert len(cells) == len(pareto.HEADER) and float(cells[-2]) > 0  # frames/s
    assert any(r.rstrip("| ").endswith("yes") for r in rows)  # a front always exists


def test_pareto_bench_can_time_only(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VVHAND_RESULTS", str(tmp_path / "results.md"))
    a = save_random_checkpoint(tmp_path / "a.pt", width=0.125, seed=1)
    parser = argparse.ArgumentParser()
    pareto.add_arguments(parser)
    assert pareto.run(parser.parse_args(["--models", f"only={a}", "--frames", "0",
                                         "--timed-frames", "2", "--threads", "1",
                                         "--no-write"])) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| only"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[5:9] == ["-"] * 4 and float(cells[9]) > 0
