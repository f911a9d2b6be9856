"""The shipped model's training in legs: publish each leg, ship the model with every leg's record.

    python -m vvhand_core.train.legs publish LEG RUN_DIR [--root training/default_model]
    python -m vvhand_core.train.legs ship RUN_DIR/best.pt [--root ...] [--out PT] [--note ...]

A leg is one phased run (``vvhand train phased``, scripts/train_default_model.sh) that
starts from the previous leg's networks (``init_from``). ``publish`` copies what the repo
keeps of it into ``<root>/leg<LEG>/``: the resolved config, the training log (the learning
curve), ``leg.json`` (summary) and ``last.pt``, the fp32 networks the next leg starts from
(refused above 16 MB: no file that large is committed). ``ship`` writes the fp16 model and
its Markdown record (every published leg: scenes, budget, steps, frames, validation at
each phase's end, hardware, command, config) and the curve over all legs as a PNG.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from vvhand_core.assets import default_model_path
from vvhand_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

DEFAULT_ROOT = Path("training/default_model")
MAX_FILE_BYTES = 16 * 1024 * 1024


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a train_log.jsonl."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def summarise(records: list[dict[str, Any]], config: dict[str, Any]) -> dict[str, Any]:
    """Steps, frames and the validation at each phase's end of one phased run's log."""
    phases = config.get("phases", {})
    steps: dict[str, int] = {}
    vals: dict[str, float] = {}
    for r in records:
        if r["type"] == "phase":
            steps[r["phase"]] = int(r["phase_steps"])
        if r["type"] == "val":
            vals[r["phase"]] = round(float(r["val_mean_error_mm"]), 2)
    frames = {p: n * int(phases.get(p, {}).get("batch_size", 0)) for p, n in steps.items()}
    return {"run_time_min": round(max((r["run_time_s"] for r in records), default=0) / 60, 1),
            "steps": sum(steps.values()), "phase_steps": steps, "frames_seen": frames,
            "val_at_phase_end_mm": vals}


def publish(leg: int, run_dir: str | Path, root: str | Path = DEFAULT_ROOT,
            command: str = "", weights: bool = True) -> Path:
    """Copy a leg's config, log and (``weights``) fp32 weights into ``<root>/leg<leg>/``.

    ``weights=False`` for a leg no later leg will start from (a superseded one).
    """
    run_dir, dest = Path(run_dir), Path(root) / f"leg{leg}"
    last = run_dir / "last.pt"
    if weights and last.stat().st_size > MAX_FILE_BYTES:
        raise CheckpointError(last, f"{last.stat().st_size / 1e6:.1f} MB, over the "
                              f"{MAX_FILE_BYTES / 2**20:.0f} MB a committed file may have")
    loaded = load_checkpoint(last, "cpu")
    if not loaded.meta.get("phase") == "student":
        print(f"legs: {last} ends in phase {loaded.meta.get('phase')}, not a finished leg",
              file=sys.stderr)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "train_log.jsonl") + (("last.pt",) if weights else ()):
        shutil.copyfile(run_dir / name, dest / name)
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    info = {"leg": leg, "run_dir": str(run_dir), "command": command, "weights_kept": weights,
            "init_from": loaded.meta.get("init_from"), "hardware": loaded.meta.get("hardware"),
            **summarise(read_log(run_dir / "train_log.jsonl"), config)}
    (dest / "leg.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return dest


def published_legs(root: str | Path) -> list[tuple[dict[str, Any], dict[str, Any], Path]]:
    """(leg.json, config, folder) of every published leg, in leg order."""
    out = []
    for folder in Path(root).glob("leg*"):
        if (folder / "leg.json").is_file():
            info = json.loads((folder / "leg.json").read_text(encoding="utf-8"))
            cfg = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
            out.append((info, cfg, folder))
    return sorted(out, key=lambda t: t[0]["leg"])


def plot_curve(legs: list[tuple[dict[str, Any], dict[str, Any], Path]], path: Path) -> None:
    """Validation error vs cumulative training minutes over all legs, one colour per phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    offset, colours = 0.0, {"a2j": "tab:blue", "teacher": "tab:orange", "student": "tab:green"}
    for info, cfg, folder in legs:
        vals = [r for r in read_log(folder / "train_log.jsonl") if r["type"] == "val"]
        for phase, colour in colours.items():
            pts = [(offset + r["run_time_s"] / 60, r["val_mean_error_mm"]) for r in vals
                   if r["phase"] == phase]
            if pts:
                ax.plot(*zip(*pts), "o-", ms=3, color=colour,
                        label=phase if info is legs[0][0] else None)
        ax.axvline(offset, color="grey", lw=0.5)
        ax.text(offset, ax.get_ylim()[1] if vals else 0,
                f" leg {info['leg']} ({scenes_text(cfg['data'], short=True)})",
                va="top", fontsize=8)
        offset += info["run_time_min"]
    ax.set_xlabel("training minutes on this CPU (all legs)")
    ax.set_ylabel("validation mean 3D error (mm, oracle centre)")
    ax.set_title("default model: validation of each leg (A2J alone / teacher-3 / student-3)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scenes_text(data: dict[str, Any], short: bool = False) -> str:
    """The scene versions of a leg's data config: "synthetic v2", or its mixture."""
    mix = data.get("synth_mix") or {}
    if mix:
        total = sum(mix.values())
        parts = [f"v{v}" if short else f"{100 * s / total:.0f} % v{v}"
                 for v, s in sorted(mix.items())]
        return ("+".join(parts) if short else "synthetic mixture " + " + ".join(parts))
    version = data.get("synth", {}).get("scene_version", 1)
    return f"v{version}" if short else f"synthetic v{version}"


def _leg_lines(info: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    hw = info.get("hardware") or {}
    init = info.get("init_from") or {}
    val = info["val_at_phase_end_mm"]
    return [
        f"### Leg {info['leg']}",
        "",
        f"- scenes: {scenes_text(cfg['data'])}, "
        f"training seed {cfg['data']['train_seed']} ({cfg['data']['train_frames']} frames), "
        f"validation seed {cfg['data']['val_seed']} ({cfg['data']['val_frames']} frames)",
        f"- started from: {init.get('path', 'random initialisation')}"
        + (f" (its run: {init.get('run_time_s')} s, {init.get('steps')} steps)" if init else ""),
        f"- budget {cfg['optim']['time_budget_min']} min, peak lr {cfg['optim']['lr']}; "
        f"ran {info['run_time_min']} min, {info['steps']} steps; frames seen per phase "
        f"{info['frames_seen']}",
        f"- validation at each phase's end (mm): A2J alone {val.get('a2j')}, teacher-3 "
        f"{val.get('teacher')}, student-3 {val.get('student')}",
        f"- hardware: {hw.get('device')} ({hw.get('cpu')}, {hw.get('cpu_count')} cores, "
        f"torch {hw.get('torch')})",
        f"- command: `{info.get('command') or '(not recorded)'}`",
        "",
    ]


def ship(source: str | Path, root: str | Path = DEFAULT_ROOT, out: str | Path | None = None,
         note: str = "", curve: str | Path = "docs/default_model_curve.png") -> Path:
    """Write the fp16 model ``out`` and ``out``.md with every published leg; return out."""
    source, out = Path(source), Path(out) if out is not None else default_model_path()
    legs = published_legs(root)
    if not legs:
        raise CheckpointError(Path(root), "no published leg here: run `legs publish` first")
    loaded = load_checkpoint(source, "cpu")
    meta = {**loaded.meta, "exported_from": str(source), "legs": [i for i, _, _ in legs]}
    save_checkpoint(out, loaded.a2j, loaded.student, loaded.teacher, loaded.skeleton,
                    loaded.model_config, meta, fp16=True)
    plot_curve(legs, Path(curve))
    mc = loaded.model_config.to_dict()
    a2j, student = mc["a2j"], mc["student"]
    digest = hashlib.sha256(out.read_bytes()).hexdigest()[:16]
    total = sum(i["run_time_min"] for i, _, _ in legs)
    lines = [f"# {out.name}: training record", "",
             f"Exported from `{source}` (student-phase best of leg {legs[-1][0]['leg']}, "
             f"validation {meta.get('val_mean_error_mm')} mm student-3) with `python -m "
             f"vvhand_core.train.legs ship {source} --root {root} --out {out}` (float16 "
             f"weights, {out.stat().st_size / 1e6:.1f} MB, sha256 {digest}...).", ""]
    if note:
        lines += ["## Notes", "", note, ""]
    lines += ["## Model", "",
              f"- A2J: {a2j['backbone']} at width {a2j['width']}, crop {a2j['crop_size']} px, "
              f"heads {a2j['head_layers']} x conv {a2j['head_channels']} x width, "
              f"{a2j['num_joints']} joints, depth in {a2j.get('depth_units')}",
              f"- teacher: {mc['teacher']}",
              f"- student: {student['backbone']} at width {student['width']} -> "
              f"{student['num_views']} view logits",
              f"- M = {mc['num_candidates']} candidate views, cube {mc['cube_mm']} mm", "",
              f"## Training: {len(legs)} leg(s), {total:.1f} minutes of run time in all", "",
              f"Curve: `{curve}` (each leg validates on its own config's validation split).",
              ""]
    for info, cfg, _ in legs:
        lines += _leg_lines(info, cfg)
    for info, cfg, folder in legs:
        lines += [f"### Leg {info['leg']} config (resolved; `{folder}/config.yaml`)", "",
                  "```yaml", yaml.safe_dump(cfg, sort_keys=False).rstrip(), "```", ""]
    out.with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m vvhand_core.train.legs publish|ship ...``; 2 on a checkpoint problem."""
    parser = argparse.ArgumentParser(prog="python -m vvhand_core.train.legs",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("publish", help="keep a finished leg's config, log and fp32 weights")
    p.add_argument("leg", type=int)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--command", default="", help="the command that ran the leg (recorded)")
    p.add_argument("--no-weights", action="store_true",
                   help="keep no weights (a leg that no later leg starts from)")
    s = sub.add_parser("ship", help="write the fp16 model and the record of every leg")
    s.add_argument("source", type=Path, help="the last leg's best.pt")
    s.add_argument("--out", type=Path, default=None)
    s.add_argument("--note", default="")
    for q in (p, s):
        q.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "publish":
            dest = publish(args.leg, args.run_dir, args.root, args.command, not args.no_weights)
            print(f"published {dest}")
        else:
            out = ship(args.source, args.root, args.out, args.note)
            print(f"wrote {out} and {out.with_suffix('.md')}")
    except (CheckpointError, FileNotFoundError) as exc:
        print(f"legs: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
