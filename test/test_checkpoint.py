"""Checkpoints: one file, weights_only loading, one clear error for every bad file."""

import pytest
import torch

from vvhand_core.checkpoint import (
    CheckpointError,
    build_models,
    load_checkpoint,
    resolve_device,
    save_checkpoint,
    save_random_checkpoint,
)
from vvhand_core.models import ModelConfig
from vvhand_core.skeletons import HANDS2019_21, ICVL_16


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_random_checkpoint(path, backbone="resnet18", width=0.125, skeleton="icvl_16", seed=3)
    return path


def _rewrite(src, dst, edit):
    blob = torch.load(src, weights_only=True)
    edit(blob)
    torch.save(blob, dst)
    return dst


def test_round_trip_same_outputs(ckpt):
    loaded = load_checkpoint(ckpt)
    assert loaded.skeleton == ICVL_16 and loaded.model_config.num_joints == 16
    assert loaded.meta["trained"] is False and loaded.path == ckpt
    assert not loaded.a2j.training
    cfg = ModelConfig.small(16, "resnet18", 0.125, 25)
    torch.manual_seed(3)
    a2j, student, teacher = build_models(cfg, ICVL_16)
    x = torch.randn(1, 1, 176, 176)
    with torch.no_grad():
        assert torch.equal(loaded.student(x), student.eval()(x))
        assert torch.equal(loaded.a2j(x).offsets, a2j.eval()(x).offsets)
    # weights_only loading works on the raw file; only tensors and primitives inside
    blob = torch.load(ckpt, weights_only=True)
    assert blob["format"] == "vvhand-checkpoint" and blob["skeleton"]["name"] == "icvl_16"


def test_fp16_storage_is_smaller_and_loads(tmp_path, ckpt):
    p = save_random_checkpoint(tmp_path / "half.pt", width=0.125, skeleton="icvl_16", seed=3,
                               fp16=True)
    assert p.stat().st_size < 0.6 * ckpt.stat().st_size
    half, full = load_checkpoint(p), load_checkpoint(ckpt)
    w_half = half.a2j.backbone.conv1.weight
    assert w_half.dtype == torch.float32
    assert torch.allclose(w_half, full.a2j.backbone.conv1.weight, rtol=1e-3, atol=1e-4)


def test_save_checkpoint_validates(tmp_path):
    cfg = ModelConfig.small(21, width=0.125)
    a2j, student, teacher = build_models(cfg, HANDS2019_21)
    with pytest.raises(ValueError, match="joints"):
        save_checkpoint(tmp_path / "x.pt", a2j, student, teacher, ICVL_16, cfg, {})
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path / "x.pt", a2j, student, teacher, HANDS2019_21, cfg,
                        {"bad": object()})
    p = save_checkpoint(tmp_path / "sub" / "x.pt", a2j, student, teacher, HANDS2019_21,
                        cfg.to_dict(), {"epoch": 3, "dataset": "synthetic"})
    assert load_checkpoint(p).meta == {"epoch": 3, "dataset": "synthetic"}
    assert not (tmp_path / "sub" / "x.pt.tmp").exists()


def _expect(path, *fragments):
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert str(path) in msg
    for f in fragments:
        assert f in msg, msg
    return msg


def test_missing_file(tmp_path):
    _expect(tmp_path / "nope.pt", "does not exist")


def test_truncated_and_garbage_files(tmp_path, ckpt):
    data = ckpt.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    _expect(tmp_path / "trunc.pt", "truncated or corrupt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00hello" * 100)
    _expect(tmp_path / "garbage.pt", "truncated or corrupt")
    (tmp_path / "empty.pt").write_bytes(b"")
    _expect(tmp_path / "empty.pt", "empty")


def test_pickled_objects_give_one_line(tmp_path):
    """torch's weights_only refusal is six lines of advice; the error keeps its reason only."""
    import pathlib

    torch.save({"format": "vvhand", "path": pathlib.PurePosixPath("x")}, tmp_path / "obj.pt")
    msg = _expect(tmp_path / "obj.pt", "refused, nothing in it was run", "Unsupported global")
    assert "\n" not in msg and len(msg) < 400, msg
    assert "truncated" not in msg and "corrupt" not in msg, msg  # the file is intact


class _Command:
    def __reduce__(self):
        import os

        return (os.system, ("true",))


def test_a_pickled_command_is_refused_not_called_corrupt(tmp_path):
    torch.save({"format": "vvhand", "cmd": _Command()}, tmp_path / "cmd.pt")
    msg = _expect(tmp_path / "cmd.pt", "refused, nothing in it was run", "system")
    assert "truncated" not in msg and "corrupt" not in msg, msg


def test_not_a_checkpoint(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    _expect(tmp_path / "other.pt", "not a vvhand checkpoint")


def test_missing_entries_and_weights(tmp_path, ckpt):
    _expect(_rewrite(ckpt, tmp_path / "a.pt", lambda b: b.pop("meta")), "missing entries",
            "meta")
    _expect(_rewrite(ckpt, tmp_path / "b.pt", lambda b: b["state"].pop("teacher")),
            "teacher", "missing")

    def drop_key(b):
        b["state"]["a2j"].pop("backbone.conv1.weight")

    _expect(_rewrite(ckpt, tmp_path / "c.pt", drop_key), "a2j", "backbone.conv1.weight")


def test_shape_mismatch(tmp_path, ckpt):
    def wider(b):
        b["model_config"]["student"]["num_views"] = 9
        b["model_config"]["num_candidates"] = 9

    _expect(_rewrite(ckpt, tmp_path / "s.pt", wider), "student", "fc.weight", "shape")


def test_bad_config_skeleton_and_values(tmp_path, ckpt):
    def bad_cfg(b):
        b["model_config"]["a2j"]["backbone"] = "vgg"

    _expect(_rewrite(ckpt, tmp_path / "c.pt", bad_cfg), "bad model config", "vgg")

    def unknown_skel(b):
        b["skeleton"]["name"] = "octopus_8"

    _expect(_rewrite(ckpt, tmp_path / "k.pt", unknown_skel), "octopus_8", "hands2019_21")

    def other_skel(b):
        b["skeleton"]["name"] = "hands2019_21"

    _expect(_rewrite(ckpt, tmp_path / "o.pt", other_skel), "hands2019_21")

    def nan(b):
        b["state"]["teacher"]["out.weight"][0, 0] = float("nan")

    _expect(_rewrite(ckpt, tmp_path / "n.pt", nan), "teacher", "NaN")

    def version(b):
        b["version"] = 99

    _expect(_rewrite(ckpt, tmp_path / "v.pt", version), "version")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        resolve_device("banana")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda:1")
