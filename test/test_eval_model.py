"""`vvhand eval-model` and the data set registry on synthetic frames written in each data set's
real on-disk format (``vvhand_core.data.export``): what the command scores through a format
must equal the pipeline run on the frames themselves, joint by joint."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from random_model import random_model

from vvhand_core.camera import xyz_to_uvd
from vvhand_core.cli import main as cli_main
from vvhand_core.data.export import export, labels_in, synthetic_frames
from vvhand_core.data.registry import DATASETS, DatasetRootError, open_dataset
from vvhand_core.evaluate import compute_metrics, evaluate_uvd_files, read_uvd_file
from vvhand_core.pipeline import VirtualViewPipeline
from vvhand_core.skeletons import HANDS2019_21, joint_map

FRAMES = 3
EXPECTED_FILES = {"nyu": "joint_data.mat", "icvl": "test_seq_1.txt",
                  "hands2019": "training_joint_annotation.txt", "msra": "joint.txt",
                  "synthetic": "meta.json"}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(random_model(tmp_path_factory.mktemp("m") / "r.pt", seed=4))


@pytest.fixture(scope="module")
def pipeline(model):
    pipe = VirtualViewPipeline.from_checkpoint(model)
    pipe.configure(device="cpu", track=False)  # as eval-model runs it
    return pipe


def _eval(name, root, out, model, *extra):
    return cli_main(["eval-model", "--dataset", name, "--root", str(root), "--model", model,
                     "--device", "cpu", "--out", str(out), "--no-progress", *extra])


def _direct(pipeline, frames, skeleton, joints):
    """The pipeline on the frames themselves, centred at the mean of ``skeleton``'s labels."""
    mapping = joint_map(HANDS2019_21, skeleton, joints)
    pred, gt = [], []
    for f in frames:
        labels = labels_in(f, skeleton)
        r = pipeline.run(f.depth_mm, f.intrinsics, labels.mean(axis=0))
        pred.append(mapping.predicted(r.joints_mm))
        gt.append(mapping.labelled(labels))
    return compute_metrics(np.array(pred), np.array(gt), joint_names=mapping.joint_names)


@pytest.mark.parametrize("name,joints", [("msra", "all"), ("hands2019", "all"),
                                         ("synthetic", "all"), ("nyu", "common"),
                                         ("icvl", "common")])
def test_scores_through_each_format_equal_the_frames_own(name, joints, tmp_path, model,
                                                         pipeline, capsys):
    frames = synthetic_frames(name, FRAMES)
    export(name, frames, tmp_path / "root")
    out = tmp_path / "out"
    assert _eval(name, tmp_path / "root", out, model, "--oracle-centre", "--joints", joints) == 0
    printed = capsys.readouterr().out
    rec = json.loads((out / "metrics.json").read_text())
    spec = DATASETS[name]
    direct = _direct(pipeline, frames, spec.skeleton, joints)
    assert rec["frames"] == rec["frames_scored"] == FRAMES and rec["frames_no_hand"] == 0
    assert rec["joint_names"] == list(direct.joint_names)  # the data set's order
    assert rec["metrics"]["mean_error_mm"] == pytest.approx(direct.mean_error_mm, abs=1e-3)
    np.testing.assert_allclose(rec["metrics"]["per_joint_mm"], direct.per_joint_mm, atol=1e-3)
    assert f"mean error {direct.mean_error_mm:.3f} mm" in printed
    assert rec["community_uvd"] == (spec.community_uvd and joints == "all")
    # the uvd files keep the frames' order (community files align line by line)
    gt_uvd = read_uvd_file(out / "groundtruth_uvd.txt", len(direct.joint_names))
    mapping = joint_map(HANDS2019_21, spec.skeleton, joints)
    expected = [xyz_to_uvd(mapping.labelled(labels_in(f, spec.skeleton)), f.intrinsics)
                for f in frames]
    np.testing.assert_allclose(gt_uvd, expected, atol=2e-3)
    assert (out / "success.png").stat().st_size > 0
    assert "| **mean** |" in (out / "per_joint.md").read_text()


def test_msra_files_are_community_files(tmp_path, model):
    """`vvhand eval --dataset msra` scores the written files as eval-model did."""
    export("msra", synthetic_frames("msra", FRAMES), tmp_path / "root")
    pred = tmp_path / "ours.txt"
    assert _eval("msra", tmp_path / "root", tmp_path / "out", model, "--oracle-centre",
                 "--write-uvd", str(pred)) == 0
    rec = json.loads((tmp_path / "out" / "metrics.json").read_text())
    (m,) = evaluate_uvd_files(tmp_path / "out" / "groundtruth_uvd.txt", [pred], "msra")
    assert m.mean_error_mm == pytest.approx(rec["metrics"]["mean_error_mm"], abs=2e-3)
    assert not (tmp_path / "out" / "predictions_uvd.txt").exists()


def test_a_frame_without_a_hand_is_counted_and_written_as_zeros(tmp_path, model):
    frames = synthetic_frames("msra", FRAMES)
    frames[1] = replace(frames[1], depth_mm=np.zeros_like(frames[1].depth_mm))
    export("msra", frames, tmp_path / "root")
    out = tmp_path / "out"
    assert _eval("msra", tmp_path / "root", out, model, "--oracle-centre") == 0
    rec = json.loads((out / "metrics.json").read_text())
    assert rec["frames_no_hand"] == 1 and rec["no_hand_frame_ids"] == ["P0/2/000000"]
    assert rec["metrics"]["num_frames"] == FRAMES - 1
    pred = read_uvd_file(out / "predictions_uvd.txt", 21)
    assert np.all(pred[1] == 0) and np.all(pred[[0, 2], :, 2] > 0)


def test_localised_centre_runs(tmp_path, model):
    export("hands2019", synthetic_frames("hands2019", 2), tmp_path / "root")
    assert _eval("hands2019", tmp_path / "root", tmp_path / "out", model, "--frames", "1") == 0
    rec = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert rec["frames"] == 1 and rec["centre"].startswith("localised")


def test_mismatched_skeletons_are_refused(tmp_path, model, capsys):
    export("nyu", synthetic_frames("nyu", 1), tmp_path / "root")
    assert _eval("nyu", tmp_path / "root", tmp_path / "out", model) == 2
    err = capsys.readouterr().err
    assert "wrist_1, wrist_2, palm" in err and "--joints common" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", list(DATASETS))
def test_a_wrong_root_names_the_expected_files(name, tmp_path, model, capsys):
    (tmp_path / "empty").mkdir()
    assert _eval(name, tmp_path / "empty", tmp_path / "out", model) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "empty") in err and EXPECTED_FILES[name] in err and "expected" in err
    with pytest.raises(DatasetRootError, match="not a directory"):
        open_dataset(name, tmp_path / "missing")


def test_registry_options():
    with pytest.raises(ValueError, match="msra has no splits"):
        open_dataset("msra", ".", split="test")
    with pytest.raises(ValueError, match="msra only"):
        open_dataset("nyu", ".", subjects=["P0"])
    with pytest.raises(ValueError, match="known: nyu, icvl, hands2019, msra, synthetic"):
        open_dataset("bighand", ".")
