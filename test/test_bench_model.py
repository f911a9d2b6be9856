"""`vvhand bench model`: both splits, both centres, per side (the shipped model, 3 frames)."""

from __future__ import annotations

import argparse

import numpy as np

from vvhand_core.assets import default_model_path
from vvhand_core.benchmarks import model as bench
from vvhand_core.data.synthetic.generator import SynthConfig, SyntheticHandGenerator
from vvhand_core.pipeline import PipelineConfig, VirtualViewPipeline


def test_score_split_matches_a_direct_run():
    pipe = VirtualViewPipeline.from_checkpoint(default_model_path(), PipelineConfig(
        device="cpu", renderer="torch", track=False))
    gen = SyntheticHandGenerator(SynthConfig(scene_version=2, seed=5))
    frames = [gen.frame(i) for i in range(4)]
    s = bench.score_split(pipe, frames, oracle=True)
    f = frames[1]
    r = pipe.run(f.depth_mm, f.intrinsics, centre_mm=f.joints_mm.mean(axis=0))
    assert np.isclose(s.errors_mm[1], np.linalg.norm(r.joints_mm - f.joints_mm, axis=-1).mean(),
                      atol=0.1)  # float32 vs float64 centre
    assert s.sides == [fr.meta["side"] for fr in frames] and s.told[1] == r.side
    assert np.all(s.centre_errors_mm > 20) and s.span_mm.shape == (4, 2)
    row = bench.row("x", "oracle", s)
    assert row[2] == 4 and row[3] == "0.0%"
    groups = bench.joint_groups(list(pipe.skeleton.joint_names))
    assert list(groups) == ["wrist", "thumb", "index", "middle", "ring", "pinky", "tips"]
    assert sorted(sum((groups[g] for g in list(groups)[:6]), [])) == list(range(21))
    np.testing.assert_allclose(s.joint_errors_mm.mean(axis=1), s.errors_mm)
    g = bench.group_row("v", "oracle", s, groups)
    assert float(g[2]) == round(float(s.joint_errors_mm[:, groups["wrist"]].mean()), 1)


def test_bench_model_writes_both_splits(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VVHAND_RESULTS", str(tmp_path / "results.md"))
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    sheet = tmp_path / "sheet.png"
    assert bench.run(parser.parse_args(["--frames", "2", "--sheet", str(sheet)])) == 0
    assert sheet.stat().st_size > 5000
    text = (tmp_path / "results.md").read_text()
    assert "Model accuracy on both synthetic test splits" in text
    for split, _ in bench.SPLITS:
        for centre in ("oracle", "localised"):
            assert f"| {split} | {centre} |" in text
