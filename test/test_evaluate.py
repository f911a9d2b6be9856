import json

import numpy as np
import pytest
import torch
from PIL import Image

from vvhand_core.camera import xyz_to_uvd
from vvhand_core.cli import main as cli_main
from vvhand_core.data.icvl import ICVL_EVAL_INTRINSICS
from vvhand_core.data.msra import MSRA_INTRINSICS
from vvhand_core.data.nyu import NYU_INTRINSICS
from vvhand_core.evaluate import (
    compute_metrics,
    dataset_convention,
    evaluate_uvd_files,
    joint_errors,
    mean_error,
    per_joint_error,
    plot_comparison,
    read_uvd_file,
    success_rate,
    write_uvd_file,
)
from vvhand_core.skeletons import ICVL_16, MSRA_21, NYU_14


def _hand_case():
    """3 frames, 2 joints; errors chosen by hand (3-4-5 triangles)."""
    gt = np.zeros((3, 2, 3))
    gt[..., 2] = 500.0
    pred = gt.copy()
    pred[0, 0] += (3.0, 4.0, 0.0)  # 5
    pred[0, 1] += (0.0, 0.0, 1.0)  # 1   -> worst 5
    pred[1, 0] += (6.0, 0.0, 8.0)  # 10
    pred[1, 1] += (0.0, 6.0, 8.0)  # 10  -> worst 10
    pred[2, 1] += (30.0, 40.0, 0.0)  # 50, joint 0 exact -> worst 50
    return pred, gt


def test_errors_by_hand():
    pred, gt = _hand_case()
    np.testing.assert_allclose(joint_errors(pred, gt), [[5, 1], [10, 10], [0, 50]])
    assert mean_error(pred, gt) == pytest.approx((5 + 1 + 10 + 10 + 0 + 50) / 6)
    np.testing.assert_allclose(per_joint_error(pred, gt), [5.0, 61.0 / 3])
    rates = success_rate(pred, gt)
    assert rates.shape == (81,)
    assert rates[0] == 0.0
    assert rates[4] == 0.0 and rates[5] == pytest.approx(1 / 3)
    assert rates[9] == pytest.approx(1 / 3) and rates[10] == pytest.approx(2 / 3)
    assert rates[49] == pytest.approx(2 / 3) and rates[50] == 1.0 and rates[80] == 1.0
    np.testing.assert_allclose(success_rate(pred, gt, [7.5]), [1 / 3])


def test_torch_inputs_match_numpy():
    pred, gt = _hand_case()
    m_np = compute_metrics(pred, gt)
    m_t = compute_metrics(torch.tensor(pred, dtype=torch.float32), torch.tensor(gt))
    assert m_t.mean_error_mm == pytest.approx(m_np.mean_error_mm, abs=1e-4)
    np.testing.assert_allclose(m_t.success_rate, m_np.success_rate)


def test_shape_errors():
    pred, gt = _hand_case()
    with pytest.raises(ValueError):
        mean_error(pred[:2], gt)
    with pytest.raises(ValueError):
        mean_error(pred[:, :1], gt)
    with pytest.raises(ValueError, match="14"):
        compute_metrics(pred, gt, skeleton=NYU_14)


def test_metrics_json():
    pred, gt = _hand_case()
    d = json.loads(compute_metrics(pred, gt, "p.txt").to_json())
    assert d["pred"] == "p.txt"
    assert d["mean_error_mm"] == pytest.approx(76 / 6, abs=1e-5)
    assert d["per_joint_mm"] == pytest.approx([5.0, 61 / 3])
    assert d["success_rate"][10] == [10.0, pytest.approx(2 / 3)]
    assert len(d["success_rate"]) == 81


def test_uvd_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    uvd = rng.uniform(0, 600, size=(5, 14, 3))
    path = tmp_path / "r.txt"
    write_uvd_file(path, uvd)
    back = read_uvd_file(path, 14)
    np.testing.assert_allclose(back, uvd, atol=1e-4)
    lines = path.read_text().splitlines()
    assert len(lines) == 5 and len(lines[0].split()) == 42


def test_read_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("1 2 3 4 5 6\n1 2 3\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2"):
        read_uvd_file(path, 2)
    path.write_text("1 2 3 4 5 nan\n")
    with pytest.raises(ValueError, match="non-finite"):
        read_uvd_file(path, 2)
    path.write_text("1 2 3 4 5 6\n\n")  # trailing blank line is fine
    assert read_uvd_file(path, 2).shape == (1, 2, 3)
    with pytest.raises(ValueError, match="missing.txt"):
        read_uvd_file(tmp_path / "missing.txt", 2)


def _write_case(tmp_path, dataset, offset_mm, frames=6):
    intr, skel = dataset_convention(dataset)
    rng = np.random.default_rng(1)
    gt = np.stack(
        [rng.uniform(-60, 60, (frames, skel.num_joints)),
         rng.uniform(-60, 60, (frames, skel.num_joints)),
         rng.uniform(350, 450, (frames, skel.num_joints))], axis=-1
    )  # fmt: skip
    pred = gt + np.asarray(offset_mm)
    write_uvd_file(tmp_path / "gt.txt", xyz_to_uvd(gt, intr))
    write_uvd_file(tmp_path / "pred.txt", xyz_to_uvd(pred, intr))
    return tmp_path / "gt.txt", tmp_path / "pred.txt"


@pytest.mark.parametrize("dataset,intr", [("nyu", NYU_INTRINSICS), ("icvl", ICVL_EVAL_INTRINSICS)])
def test_evaluate_files_uses_dataset_intrinsics(tmp_path, dataset, intr):
    assert dataset_convention(dataset)[0] == intr
    gt, pred = _write_case(tmp_path, dataset, (3.0, 0.0, 4.0))
    (m,) = evaluate_uvd_files(gt, [pred], dataset)
    assert m.mean_error_mm == pytest.approx(5.0, abs=2e-3)
    assert m.success_at(4) == 0.0 and m.success_at(6) == 1.0


def test_evaluate_files_frame_mismatch_names_files(tmp_path):
    gt, pred = _write_case(tmp_path, "icvl", (1.0, 0.0, 0.0))
    lines = pred.read_text().splitlines()
    pred.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match=r"pred\.txt.*gt\.txt"):
        evaluate_uvd_files(gt, [pred], "icvl")
    with pytest.raises(ValueError, match="known: nyu, icvl, msra$"):
        dataset_convention("bighand")
    with pytest.raises(ValueError, match="hands2019"):  # registered, no community format
        dataset_convention("hands2019")


def test_conventions_come_from_the_registry():
    assert dataset_convention("msra") == (MSRA_INTRINSICS, MSRA_21)
    assert dataset_convention("icvl") == (ICVL_EVAL_INTRINSICS, ICVL_16)
    assert dataset_convention("nyu") == (NYU_INTRINSICS, NYU_14)


def test_cli_text_json_and_plot(tmp_path, capsys):
    gt, pred = _write_case(tmp_path, "nyu", (0.0, 6.0, 8.0))
    pred2 = tmp_path / "other.txt"
    pred2.write_text(gt.read_text())
    plot = tmp_path / "cmp.png"
    rc = cli_main(["eval", "--dataset", "nyu", "--gt", str(gt), "--pred", str(pred),
                   "--pred", str(pred2), "--plot", str(plot)])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "mean error 10.000 mm" in out and "mean error 0.000 mm" in out
    assert "| prediction |" in out and "thumb_root" in out
    img = Image.open(plot)
    assert img.size[0] > img.size[1] > 200
    rc = cli_main(["eval", "--dataset", "nyu", "--gt", str(gt), "--pred", str(pred), "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and len(lines) == 1
    d = json.loads(lines[0])
    assert d["mean_error_mm"] == pytest.approx(10.0, abs=2e-3)
    assert len(d["per_joint_mm"]) == 14 and d["success_rate"][80][1] == 1.0
    # wrong joint count -> exit 2 with the file named
    rc = cli_main(["eval", "--dataset", "icvl", "--gt", str(gt), "--pred", str(pred)])
    assert rc == 2 and "gt.txt" in capsys.readouterr().err


def test_plot_rejects_wrong_skeleton(tmp_path):
    pred, gt = _hand_case()
    m = compute_metrics(pred, gt)
    with pytest.raises(ValueError):
        plot_comparison([m], ICVL_16, tmp_path / "x.png")
    with pytest.raises(ValueError, match="3 names"):
        plot_comparison([m], ("a", "b", "c"), tmp_path / "x.png")
    assert plot_comparison([m], ("a", "b"), tmp_path / "x.png", ["p"]).stat().st_size > 0


def test_metrics_name_a_subset_of_joints():
    pred, gt = _hand_case()
    m = compute_metrics(pred, gt, joint_names=("index_tip", "ring_tip"))
    assert m.joint_names == ("index_tip", "ring_tip")
    assert m.to_dict()["joint_names"] == ["index_tip", "ring_tip"]
    with pytest.raises(ValueError, match="2 joints given but 3 joint names"):
        compute_metrics(pred, gt, joint_names=("a", "b", "c"))


def test_cli_refuses_overflow_directories_and_missing_plot_folders(tmp_path, capsys):
    """Each exits 2 with one line naming the problem; nothing is created."""
    gt, pred = _write_case(tmp_path, "nyu", (0.0, 6.0, 8.0))
    huge = tmp_path / "huge.txt"
    huge.write_text(gt.read_text().splitlines()[0] + "\n" + " ".join(["1e308"] * 42) + "\n"
                    + "\n".join(gt.read_text().splitlines()[2:]) + "\n")

    def run(*extra, pred_file=pred):
        rc = cli_main(["eval", "--dataset", "nyu", "--gt", str(gt), "--pred", str(pred_file),
                       *extra])
        return rc, capsys.readouterr()

    rc, out = run(pred_file=huge)  # 1e308 u v d: coordinates overflow to inf
    assert rc == 2 and "huge.txt:2" in out.err and "too large" in out.err, out
    assert "inf" not in out.out
    rc, out = run(pred_file=tmp_path)  # a directory is not "not found"
    assert rc == 2 and "is a directory" in out.err and "not found" not in out.err, out
    missing = tmp_path / "missing" / "dir" / "x.png"
    rc, out = run("--plot", str(missing))
    assert rc == 2 and "does not exist" in out.err and str(missing.parent) in out.err, out
    assert not (tmp_path / "missing").exists()
