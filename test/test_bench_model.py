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


def test_bench_model_writes_every_split(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VVHAND_RESULTS", str(tmp_path / "results.md"))
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    sheet, sheet3 = tmp_path / "sheet.png", tmp_path / "sheet3.png"
    assert bench.run(parser.parse_args(["--frames", "3", "--sheet", str(sheet),
                                        "--sheet-v3", str(sheet3)])) == 0
    assert sheet.stat().st_size > 5000 and sheet3.stat().st_size > 5000
    text = (tmp_path / "results.md").read_text()
    assert "Model accuracy on the synthetic test splits" in text
    for split, _ in (*bench.SPLITS, bench.V3_SPLIT):
        for centre in ("oracle", "localised"):
            assert f"| {split} | {centre} |" in text
    # v3 breakdowns: per placement, per grasp and per joint visibility, both centres
    for title in ("per camera placement", "per grasp type", "by what hides it"):
        assert title in text
    assert "| placement | frames | oracle | localised |" in text


def test_v3_localised_scores_the_estimate_nearest_to_hand_0():
    """The matching of estimates to the labelled hand (the pipeline is a stand-in here)."""
    from types import SimpleNamespace

    from vvhand_core.benchmarks.model_v3 import MATCH_MM, score_localised_hands
    from vvhand_core.skeletons import HANDS2019_21

    gen = SyntheticHandGenerator(SynthConfig(scene_version=3, seed=9))
    f = gen.frame(0)
    gt = f.joints_mm.astype(np.float64)

    def hand(offset_mm):
        return SimpleNamespace(joints_mm=gt + offset_mm, side="right", valid=True)

    for hands, expect in (([hand([0, 0, 300.0]), hand([5.0, 0, 0])], 5.0),
                          ([hand([0, 0, MATCH_MM + 1])], np.nan), ([], np.nan)):
        pipe = SimpleNamespace(skeleton=HANDS2019_21, run_hands=lambda d, k, h=hands:
                               SimpleNamespace(hands=h))
        s = score_localised_hands(pipe, [f])
        np.testing.assert_allclose(s.errors_mm, [expect], atol=1e-6)
