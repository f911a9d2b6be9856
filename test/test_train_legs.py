"""Training in legs: a leg starts from the previous one, is published, and the model ships
with the record of every leg (tiny phased runs of seconds, real training steps)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vvhand_core.checkpoint import load_checkpoint
from vvhand_core.train import legs as legs_mod
from vvhand_core.train.configio import load_config
from vvhand_core.train.dist import DistEnv
from vvhand_core.train.phased import run_phased
from vvhand_core.train.phases import build_phased_job

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "config" / "train_tiny_phased.yaml"
CPU = DistEnv(device=torch.device("cpu"))


def leg(tmp_path: Path, name: str, *overrides: str) -> Path:
    cfg = load_config("phased", TINY, [f"cache.dir={tmp_path / 'cache'}",
                                       "optim.time_budget_min=0.03", *overrides])
    out = tmp_path / name
    assert run_phased(build_phased_job(cfg, CPU, progress=False), CPU, out,
                      progress=False).finished
    return out


def test_two_legs_publish_and_ship_with_the_record_of_both(tmp_path):
    root = tmp_path / "record"
    first = leg(tmp_path, "leg0")
    assert legs_mod.main(["publish", "0", str(first), "--root", str(root),
                          "--command", "first command"]) == 0
    second = leg(tmp_path, "leg1", f"init_from={root / 'leg0' / 'last.pt'}")
    legs_mod.publish(1, second, root, "second command")
    info = legs_mod.published_legs(root)
    assert [i["leg"] for i, _, _ in info] == [0, 1]
    assert info[1][0]["init_from"]["path"] == str(root / "leg0" / "last.pt")
    assert info[0][0]["init_from"] is None
    s = info[1][0]
    assert s["steps"] == sum(s["phase_steps"].values()) > 0
    assert set(s["val_at_phase_end_mm"]) == {"a2j", "teacher", "student"}
    out, curve = tmp_path / "model.pt", tmp_path / "curve.png"
    legs_mod.ship(second / "best.pt", root, out, note="tiny", curve=curve)
    record = out.with_suffix(".md").read_text()
    for text in ("### Leg 0", "### Leg 1", "first command", "second command", "## Notes",
                 "random initialisation", str(root / "leg0" / "last.pt")):
        assert text in record, text
    assert curve.stat().st_size > 5000
    shipped = load_checkpoint(out)
    assert shipped.meta["legs"][1]["leg"] == 1
    # fp16 on disk, the same networks as the leg's best (to fp16 precision)
    best = load_checkpoint(second / "best.pt")
    for a, b in zip(best.a2j.state_dict().values(), shipped.a2j.state_dict().values()):
        if a.is_floating_point():
            assert torch.allclose(a, b, rtol=1e-2, atol=1e-3)


def test_publish_refuses_a_file_too_large_to_commit(tmp_path, monkeypatch):
    run = leg(tmp_path, "big")
    monkeypatch.setattr(legs_mod, "MAX_FILE_BYTES", 1000)
    assert legs_mod.main(["publish", "3", str(run), "--root", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r" / "leg3").exists()
    assert legs_mod.main(["publish", "3", str(run), "--root", str(tmp_path / "r"),
                          "--no-weights"]) == 0
    assert not (tmp_path / "r" / "leg3" / "last.pt").exists()
    assert (tmp_path / "r" / "leg3" / "train_log.jsonl").is_file()
    assert legs_mod.main(["ship", str(run / "best.pt"), "--root", str(tmp_path / "none"),
                          "--out", str(tmp_path / "m.pt")]) == 2
    with pytest.raises(SystemExit):
        legs_mod.main(["publish"])


def test_record_names_the_scene_mixture():
    from vvhand_core.train.legs import scenes_text

    assert scenes_text({"synth": {"scene_version": 2}}) == "synthetic v2"
    assert scenes_text({}) == "synthetic v1"
    mix = {"synth": {}, "synth_mix": {2: 0.4, 3: 0.6}}
    assert scenes_text(mix) == "synthetic mixture 40 % v2 + 60 % v3"
    assert scenes_text(mix, short=True) == "v2+v3"
