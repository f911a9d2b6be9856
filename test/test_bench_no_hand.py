"""Scenes without a hand and `vvhand bench no-hand` (false positives, fit residual)."""

from __future__ import annotations

import argparse

import numpy as np

from vvhand_core.benchmarks import cli
from vvhand_core.benchmarks import no_hand as bench
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.data.synthetic.scene_v2 import LABELS


def test_a_scene_without_hands_is_the_same_scene_minus_hands_and_arm():
    gen = SyntheticHandGenerator(SynthConfig(scene_version=2, seed=5))
    for index in (0, 2):  # frame 2 has a second hand
        with_hands, free = gen.scene(index), gen.scene(index, hands=False)
        counts = np.bincount(with_hands.labels.ravel(), minlength=len(LABELS))
        counts_free = np.bincount(free.labels.ravel(), minlength=len(LABELS))
        assert counts[LABELS["hand"]] > 0 and counts[LABELS["arm"]] > 0
        for part in ("hand", "arm", "second_hand"):
            assert counts_free[LABELS[part]] == 0, part
        # what the hand and arm hid is seen now; nothing else was taken out
        for part in ("torso", "objects", "wall", "table"):
            assert counts_free[LABELS[part]] >= counts[LABELS[part]], part
        assert free.frame.intrinsics == with_hands.frame.intrinsics
        assert free.frame.meta["hand_free"] and not any(free.frame.meta["visible"])
        np.testing.assert_array_equal(free.frame.joints_mm, with_hands.frame.joints_mm)
    assert np.bincount(gen.scene(2).labels.ravel(), minlength=8)[LABELS["second_hand"]] > 0


def test_kept_and_thresholds():
    assert bench.kept(np.array([1.0, 2.0, 3.0]), 2.0) == "2 / 3 (67%)"
    assert bench.kept(np.array([]), 2.0) == "0 / 0"
    named = bench.thresholds(np.arange(101, dtype=float), (3.0, 5.0))
    assert named == [("p90 of true hands", 90.0), ("p95 of true hands", 95.0),
                     ("p99 of true hands", 99.0), ("3 mm", 3.0), ("5 mm", 5.0)]


def test_bench_no_hand_writes_tables_and_plot(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results.md"
    monkeypatch.setenv("VVHAND_RESULTS", str(results))
    assert cli.BENCHES["no-hand"] == "vvhand_core.benchmarks.no_hand"
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    plot = tmp_path / "residual.png"
    assert bench.run(parser.parse_args(["--frames", "3", "--plot", str(plot)])) == 0
    text = results.read_text()
    assert "vvhand bench no-hand --frames 3" in text
    assert "| without a hand (false positives) | 3 |" in text
    assert "| with a hand | 3 |" in text and text.count("false positives kept") == 2
    assert "drop frames with fit residual above" in text
    assert "drop frames with mean joint spread (views' disagreement) above" in text
    assert plot.stat().st_size > 10_000  # frames 0-2 hold true hands: a histogram
    assert "plot:" in capsys.readouterr().out
