"""Ship a trained stage-2 checkpoint: fp16 weights + a Markdown training record beside it.

    python -m vvhand_core.train.export out/train/default_stage2/best.pt \
        [--out vvhand_core/assets/default_model.pt]

writes the checkpoint with float16 weights (loaded back as float32; half the size) and
``<out>.md``: the model, the data, both stages' steps / hardware / wall time / validation
error and their full configs, all read from the checkpoint's metadata.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from vvhand_core.assets import default_model_path
from vvhand_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def _show(p: Path) -> str:
    """A path relative to the working directory when it lies below it."""
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _meta_of(path: Path) -> dict[str, Any] | None:
    """The metadata of a checkpoint file, or None when it is absent or unreadable."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        return dict(blob["meta"])
    except Exception:  # noqa: BLE001 - a record without this part is still useful
        return None


def _stage_lines(name: str, kept: dict[str, Any], run: dict[str, Any] | None) -> list[str]:
    """Lines for one stage: the whole run (its last.pt) and the kept (best) epoch."""
    run = run or kept
    hw = run.get("hardware", {})
    val = kept.get("validation", {})
    machine = hw.get("gpu") or hw.get("cpu") or "?"
    stopped = " (stopped by its time limit)" if run.get("stopped_by_time_limit") else ""
    return [
        f"### {name}",
        "",
        f"- run: {run.get('epoch')} of {run.get('epochs')} epochs, {run.get('steps')} steps, "
        f"about {run.get('frames_seen')} training frames, wall time {run.get('wall_time_s')} s"
        f"{stopped}",
        f"- hardware: {hw.get('device')} ({machine}, {hw.get('cpu_count')} cores, "
        f"{hw.get('world_size', 1)} process(es), torch {hw.get('torch')}); shared machine, "
        "run under `nice`",
        f"- kept: epoch {kept.get('epoch')} (step {kept.get('steps')}), the lowest validation "
        f"error: {kept.get('val_mean_error_mm')} mm mean 3D error, "
        f"{kept.get('val_success_20mm')} of frames with every joint within 20 mm",
        f"- validation: {val.get('selector')} selects {val.get('num_views')} of "
        f"{val.get('num_candidates')} views, {val.get('centre')} centre, cube "
        f"{val.get('cube_mm')} mm, {kept.get('val_frames')} frames",
        "",
    ]


def training_record(meta: dict[str, Any], model_config: dict[str, Any], path: Path,
                    source: Path, note: str = "") -> str:
    """Markdown training record of an exported stage-2 checkpoint (from its metadata).

    The runs' last.pt files beside the stage-1 and stage-2 checkpoints, when present,
    give the whole runs' lengths; the checkpoints themselves give the kept epochs.
    """
    teacher_path = Path(meta.get("teacher_checkpoint", ""))
    s1 = (_meta_of(teacher_path) if meta.get("teacher_checkpoint") else None) or \
        meta.get("stage1", {})
    s1_run = _meta_of(teacher_path.parent / "last.pt") if meta.get("teacher_checkpoint") \
        else None
    s2_run = _meta_of(source.parent / "last.pt")
    cfg1, cfg2 = s1.get("train_config", {}), meta.get("train_config", {})
    data = cfg2.get("data", {})
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    a2j, student = model_config["a2j"], model_config["student"]
    total = sum(float((r or {}).get("wall_time_s") or 0) for r in (s1_run or s1, s2_run or meta))
    lines = [
        f"# {path.name}: training record",
        "",
        f"Exported from `{_show(source)}` with `python -m vvhand_core.train.export "
        f"{_show(source)} --out {_show(path)}` (float16 weights, "
        f"{path.stat().st_size / 1e6:.1f} MB, sha256 {digest}...).",
        "",
        "## Model",
        "",
        f"- A2J: {a2j['backbone']} at width {a2j['width']} (output stride 16), heads "
        f"{a2j['head_layers']} x conv {a2j['head_channels']} x width, crop "
        f"{a2j['crop_size']} px, {a2j['num_joints']} joints (hands2019_21)",
        f"- teacher: {model_config['teacher']}",
        f"- student: {student['backbone']} at width {student['width']} -> "
        f"{student['num_views']} view logits",
        f"- M = {model_config['num_candidates']} candidate views, cube {model_config['cube_mm']} "
        "mm",
        "",
        "## Data",
        "",
        f"- dataset `{data.get('dataset')}`: training frames drawn from seed "
        f"{data.get('train_seed')} (a pool of {data.get('train_frames')}), validation seed "
        f"{data.get('val_seed')} ({data.get('val_frames')} frames); the test split is never "
        "used in training",
        f"- augmentation: {cfg2.get('augment')}",
        "",
        f"## Training ({total / 60:.1f} minutes of wall time in all)",
        "",
        *_stage_lines("Stage 1: A2J + teacher (L = L_A2J + 0.1 L_J, all M views)", s1, s1_run),
        *_stage_lines("Stage 2: student distilled from the frozen stage 1", meta, s2_run),
        "Commands:",
        "",
        "```bash",
        "nice -n 10 vvhand train stage1 --config config/train_default_stage1.yaml "
        "--out out/train/default_stage1",
        "nice -n 10 vvhand train stage2 --config config/train_default_stage2.yaml "
        "--out out/train/default_stage2",
        f"python -m vvhand_core.train.export {_show(source)} --out {_show(path)}",
        "```",
        "",
        "## Stage-1 config (resolved)",
        "",
        "```yaml",
        yaml.safe_dump(cfg1, sort_keys=False).rstrip(),
        "```",
        "",
        "## Stage-2 config (resolved)",
        "",
        "```yaml",
        yaml.safe_dump(cfg2, sort_keys=False).rstrip(),
        "```",
        "",
    ]
    if note:
        lines[lines.index("## Model"):lines.index("## Model")] = ["## Notes", "", note, ""]
    return "\n".join(lines)


def export_checkpoint(source: str | Path, out: str | Path | None = None,
                      note: str = "") -> tuple[Path, Path]:
    """Write ``out`` (fp16 weights, default the shipped default model) and ``out``.md.

    ``note``: a paragraph for the record's Notes section (e.g. what the model is good for).
    """
    source = Path(source)
    out = Path(out) if out is not None else default_model_path()
    loaded = load_checkpoint(source, "cpu")
    meta = dict(loaded.meta)
    meta["exported_from"] = str(source)
    save_checkpoint(out, loaded.a2j, loaded.student, loaded.teacher, loaded.skeleton,
                    loaded.model_config, meta, fp16=True)
    record = out.with_suffix(".md")
    record.write_text(training_record(meta, loaded.model_config.to_dict(), out, source, note),
                      encoding="utf-8")
    return out, record


def main(argv: list[str] | None = None) -> int:
    """``python -m vvhand_core.train.export SRC [--out PT]``."""
    parser = argparse.ArgumentParser(prog="python -m vvhand_core.train.export",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="trained stage-2 checkpoint (best.pt)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"destination (default {default_model_path()})")
    parser.add_argument("--note", default="", help="a paragraph for the record's Notes")
    args = parser.parse_args(argv)
    try:
        out, record = export_checkpoint(args.source, args.out, args.note)
    except CheckpointError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} and {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
