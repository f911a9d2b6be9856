"""`vvhand bench fit`: the table of the model fit after the network (tiny size)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import pytest

from vvhand_core.benchmarks import cli, fit_objects
from vvhand_core.benchmarks import fit as bench
from vvhand_core.fit import compiled


def test_bench_fit_writes_a_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VVHAND_RESULTS", str(tmp_path / "results.md"))
    assert cli.BENCHES["fit"] == "vvhand_core.benchmarks.fit"
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert parser.parse_args([]).sheet == "docs/fit_sheet.png"
    assert parser.parse_args([]).splits == ("v1", "v2", "v3")
    args = parser.parse_args(["--frames", "2", "--noise-mm", "20", "--sequences", "1",
                              "--sequence-frames", "3", "--sheet", str(tmp_path / "sheet.png"),
                              "--hand-free-scenes", "2"])
    assert args.model == "" and not args.no_write
    assert bench.run(args) == 0
    assert (tmp_path / "sheet.png").stat().st_size > 20_000  # 3 frames of the v2 split
    text = (tmp_path / "results.md").read_text()
    assert "Model fit after the network (issue 16)" in text and "sha256" in text
    for split, _ in bench.SPLITS:
        for start in ("network, oracle centre", "network, localised", "ground truth + 20 mm"):
            assert f"| {split} | {start}" in text
    assert ("vvhand bench fit --frames 2 --noise-mm 20 --sequences 1 --sequence-frames 3 "
            "--hand-free-scenes 2`") in text
    v3 = fit_objects.OBJECT_SPLIT[0]
    for start in ("network, oracle centre (student-3)", "network, localised (student-3)",
                  "ground truth + 20 mm"):
        assert f"| {v3} | {start} |" in text
    assert f"| {v3} | all | 2 |" in text and f"| {v3} | visible |" in text
    assert f"| {v3}, oracle centre | 2 | 2 |" in text  # the residual table
    for name, _ in fit_objects.HAND_FREE:
        assert f"| {name}: phantoms | 2 |" in text
    for name, _, _ in bench.SEQUENCE_MODES:
        row = (f"| sequences (v2, seed 5 + 100 k, 1 x 3 frames) | network, oracle centre "
               f"(student-3), {name} | 3 |")
        assert row in text
    assert "(student-3 + mirror), fit in sequence, shape calibrated | 3 |" in text
    for start in ("oracle centre", "localised"):  # v3: the node's defaults, no mirror
        assert text.count(f"network, {start} (student-3 + mirror) |") == len(bench.SPLITS)


def test_a_frame_without_a_hand_ends_its_sequence():
    r = object()
    keep, starts = bench.valid_runs([r, r, None, r, r, r, None], [0, 4])
    assert keep == [0, 1, 3, 4, 5] and starts == [0, 2, 3]
    assert bench.valid_runs([None, r], [0]) == ([1], [0])


def test_hand_found_is_the_localised_centre_near_the_labelled_hand(hand_frame):
    gt_centre = hand_frame.joints_mm.mean(0)
    near = SimpleNamespace(centre_mm=gt_centre + [bench.FOUND_MM - 1.0, 0.0, 0.0])
    far = SimpleNamespace(centre_mm=gt_centre + [0.0, 0.0, bench.FOUND_MM + 1.0])
    assert bench.hand_found(near, hand_frame) and not bench.hand_found(far, hand_frame)


def test_bench_fit_no_write_prints_only(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results.md"
    monkeypatch.setenv("VVHAND_RESULTS", str(results))
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert bench.run(parser.parse_args(["--frames", "1", "--noise-mm", "10,30",
                                        "--no-network", "--no-write", "--sheet",
                                        str(tmp_path / "none.png")])) == 0
    assert not (tmp_path / "none.png").exists()  # no network rows: nothing to draw
    assert not results.exists()
    out = capsys.readouterr().out
    assert "ground truth + 10 mm" in out and "ground truth + 30 mm" in out
    assert "fit kernels numba." in out or compiled.numba is None
    assert "(0 poses bit-equal)" in out and "us with joint axes" in out  # the two hand codes
    assert bench.noise_levels("") == [] and bench.noise_levels("5, 7.5") == [5.0, 7.5]


def test_bench_fit_measures_the_numpy_kernels_when_asked(tmp_path, monkeypatch, capsys):
    """--fit-kernels numpy: the numpy twins run (and are said to), the kernels are back after."""
    monkeypatch.setenv("VVHAND_RESULTS", str(tmp_path / "results.md"))
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    before = compiled.ENABLED
    seen = []
    monkeypatch.setattr(bench.fit_bench, "warm_up", lambda: seen.append(compiled.ENABLED))
    assert bench.run(parser.parse_args(["--frames", "1", "--noise-mm", "10", "--no-network",
                                        "--fit-kernels", "numpy", "--splits", "v1"])) == 0
    text = (tmp_path / "results.md").read_text()
    assert "fit kernels numpy." in text and "--fit-kernels numpy`" in text
    assert seen and not any(seen) and compiled.ENABLED == before


def test_bench_fit_tuning_splits_and_weights(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results.md"
    monkeypatch.setenv("VVHAND_RESULTS", str(results))
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--frames", "1", "--noise-mm", "30", "--no-network", "--tuning",
                              "--weights", "joint_mm=15, free=1", "--finger-lengths", "1,1",
                              "--sheet", str(tmp_path / "none.png")])
    assert args.weights == {"joint_mm": 15.0, "free": 1.0}
    assert bench.fit_config(args).finger_length_range == (1.0, 1.0)
    assert bench.run(args) == 0
    text = results.read_text()
    assert "tuning splits" in text
    assert "--tuning --weights joint_mm=15,free=1 --finger-lengths 1,1" in text
    assert "finger length factors within (1.0, 1.0)" in text
    for split, _ in bench.TUNING_SPLITS:
        assert f"| {split} | ground truth + 30 mm" in text
    assert f"| {fit_objects.OBJECT_TUNING_SPLIT[0]} | ground truth + 30 mm" in text
    test_splits = [*bench.SPLITS, fit_objects.OBJECT_SPLIT]
    assert not any(f"| {split} |" in text for split, _ in test_splits)  # test splits unseen
    for bad in ("joint_mm", "nonsense=1", "free=a"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--weights", bad])
    assert "--weights wants name=value" in capsys.readouterr().err
    for bad in ("1.1,1.2", "0.9", "a,b"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--finger-lengths", bad])
    for bad in ("v4", ""):
        with pytest.raises(SystemExit):
            parser.parse_args(["--splits", bad])
    before = bench.fit_config(parser.parse_args(["--fit", "gate_mm=40, explain_mm=0, "
                                                 "explain_after=3"]))
    assert (before.gate_mm, before.explain_mm, before.explain_after) == (40.0, 0.0, 3)
    assert isinstance(before.explain_after, int)
    for bad in ("guard=0", "gate_mm=x"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--fit", bad])


def test_splits_select_the_test_or_tuning_frames():
    assert [s for s, _ in bench.selected_splits(("v3",), False)] == [fit_objects.OBJECT_SPLIT[0]]
    assert [s for s, _ in bench.selected_splits(("v1", "v3"), True)] == [
        "tuning (v1, seed 8)", "tuning (v1, seed 9)", fit_objects.OBJECT_TUNING_SPLIT[0]]
    assert [s for s, _ in bench.selected_splits(("v2",), False)] == [bench.SPLITS[1][0]]


def test_tuning_sequences_are_other_sequences():
    pipe = bench.student_pipeline(str(bench.default_model_path()), 3)
    test_rows = bench.sequence_rows(pipe, bench.FitConfig(), 3, 1, 2)
    tuning_rows = bench.sequence_rows(pipe, bench.FitConfig(), 3, 1, 2, tuning=True)
    assert tuning_rows[0][0] == "tuning sequences (v2, seed 7 + 100 k, 1 x 2 frames)"
    assert test_rows[0][0] == "sequences (v2, seed 5 + 100 k, 1 x 2 frames)"
    assert tuning_rows[0][3] != test_rows[0][3]  # other frames: another mean error before


def test_the_fit_is_timed_on_one_core(monkeypatch):
    """numpy's BLAS and torch run one thread while the bench measures (CPU ms per frame)."""
    import torch
    from threadpoolctl import threadpool_info

    seen = {}

    def measure(args):
        seen["blas"] = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        seen["torch"] = torch.get_num_threads()
        return 0

    monkeypatch.setattr(bench, "_measure", measure)
    before = torch.get_num_threads()
    try:
        assert bench.run(argparse.Namespace()) == 0
    finally:
        torch.set_num_threads(before)
    assert seen["torch"] == 1
    assert seen["blas"] and set(seen["blas"]) == {1}
