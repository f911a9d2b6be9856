"""Learning curves: several trainings in turn, each in a time budget; error vs minutes.

The runs' validation errors against wall-clock minutes become a plot and a table.

    nice -n 10 python -m vvhand_core.train.curves --plan config/training_curves.yaml \
        --out out/curves [--budget-min 30] [--plot docs/training_curve.png] [--no-write]

The plan (YAML) lists ``runs``, each ``{name, stage, config, set: [KEY=VALUE, ...]}``
(stage "phased" or "stage1"), and a default ``budget_min``. Each run trains in
``<out>/<index>_<stage>`` by the ``vvhand train`` code with its budget:
``optim.time_budget_min`` for phased runs, ``optim.time_limit_min`` for stage-1 runs.
The curve points are the runs' own validations (train_log.jsonl): phased runs validate
every ``optim.validate_every_min`` (A2J alone, then teacher-, then student-select-N),
stage-1 runs after every epoch (teacher-select-N); x is the run's minutes of training.
The plot goes to ``--plot`` and a table (last validation at 1/3, 2/3 and the end of the
budget, the final selector) is appended to docs/results.md (or $VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from vvhand_core.benchmarks.results import append_section, markdown_table

REPO = Path(__file__).resolve().parents[2]
BUDGET_KEY = {"phased": "optim.time_budget_min", "stage1": "optim.time_limit_min"}
MARKERS = {"a2j": "o", "teacher": "s", "student": "^", "stage1": "D"}


def read_plan(path: str | Path) -> dict[str, Any]:
    """The plan: {"budget_min": float, "runs": [{name, stage, config, set}]}."""
    plan = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    runs = plan.get("runs") or []
    for run in runs:
        if run.get("stage") not in BUDGET_KEY or not run.get("name") or not run.get("config"):
            raise ValueError(f"{path}: each run needs a name, a config and a stage in "
                             f"{sorted(BUDGET_KEY)}: {run}")
    return {"budget_min": float(plan.get("budget_min", 30.0)), "runs": runs}


def train_run(run: dict[str, Any], out: Path, budget_min: float) -> int:
    """Train one run of the plan into ``out`` (the ``vvhand train`` code, in-process)."""
    from vvhand_core.train import cli

    config = Path(run["config"])
    if not config.is_absolute():
        config = REPO / config
    sets = [*run.get("set", []), f"{BUDGET_KEY[run['stage']]}={budget_min}"]
    args = [run["stage"], "--config", str(config), "--out", str(out)]
    for s in sets:
        args += ["--set", s]
    print(f"training curves: {run['name']}: vvhand train {' '.join(args)}", file=sys.stderr,
          flush=True)
    return cli.main(args)


def curve(out: Path) -> list[dict[str, Any]]:
    """Validation points of a run folder: [{minutes, error_mm, phase, selector}]."""
    points = []
    for line in (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r.get("type") == "val":
            points.append({"minutes": r["run_time_s"] / 60, "error_mm": r["val_mean_error_mm"],
                           "phase": r["phase"],
                           "selector": f"{r['selector']} {r['num_views']}"})
        elif r.get("type") == "epoch":
            points.append({"minutes": r["wall_time_s"] / 60, "error_mm": r["val_mean_error_mm"],
                           "phase": "stage1", "selector": "teacher (stage 1)"})
    return points


def at(points: list[dict[str, Any]], minutes: float) -> str:
    """The last validation at or before ``minutes`` ("-" when none)."""
    done = [p for p in points if p["minutes"] <= minutes + 1e-9]
    return f"{done[-1]['error_mm']:.1f}" if done else "-"


def plot(curves: list[tuple[str, list[dict[str, Any]]]], path: Path, budget_min: float) -> None:
    """Validation error vs minutes, one line per run, markers by phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for name, points in curves:
        if not points:
            continue
        xs, ys = [p["minutes"] for p in points], [p["error_mm"] for p in points]
        (line,) = ax.plot(xs, ys, "-", label=name, alpha=0.8)
        for p in points:
            ax.plot(p["minutes"], p["error_mm"], MARKERS.get(p["phase"], "."),
                    color=line.get_color())
    ax.set_xlabel("wall-clock minutes of training (2-core CPU, nice)")
    ax.set_ylabel("validation mean 3D error (mm), oracle centre")
    ax.set_title("Learning curves; markers: o A2J alone, s teacher-3, ^ student-3, "
                 "D stage-1 teacher-3", fontsize=9)
    ax.set_xlim(0, budget_min * 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(curves: list[tuple[str, list[dict[str, Any]]]], budget_min: float) -> str:
    """Markdown table: error at 1/3, 2/3 and the end of the budget, final selector."""
    marks = [budget_min / 3, 2 * budget_min / 3, budget_min]
    header = ["run", *[f"{m:.0f} min (mm)" for m in marks], "final validation",
              "best student (mm)"]
    rows = []
    for name, points in curves:
        students = [p["error_mm"] for p in points if p["phase"] == "student"]
        final = points[-1]["selector"] if points else "-"
        rows.append([name, *[at(points, m) for m in marks[:-1]], at(points, budget_min * 1.1),
                     final, f"{min(students):.1f}" if students else "-"])
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> int:
    """Run the plan, then write the plot and the results table."""
    parser = argparse.ArgumentParser(prog="python -m vvhand_core.train.curves",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, default=REPO / "config" / "training_curves.yaml")
    parser.add_argument("--out", type=Path, default=Path("out/curves"))
    parser.add_argument("--budget-min", type=float, default=None,
                        help="minutes per run (default: the plan's budget_min)")
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "training_curve.png")
    parser.add_argument("--only-collect", action="store_true",
                        help="do not train: plot and tabulate the runs already in --out")
    parser.add_argument("--no-write", action="store_true", help="no results.md section")
    parser.add_argument("--runs", default="",
                        help="comma-separated plan indices to train (default: all); the plot "
                             "and table still cover every run of the plan found in --out, so "
                             "a plan can be trained in legs")
    args = parser.parse_args(argv)
    plan = read_plan(args.plan)
    budget = args.budget_min if args.budget_min is not None else plan["budget_min"]
    chosen = ({int(x) for x in args.runs.split(",")} if args.runs
              else set(range(len(plan["runs"]))))
    if not chosen <= set(range(len(plan["runs"]))):
        parser.error(f"--runs must be indices in 0..{len(plan['runs']) - 1}, got {args.runs}")
    curves = []
    for i, run in enumerate(plan["runs"]):
        out = args.out / f"{i}_{run['stage']}"
        if not args.only_collect and i in chosen and train_run(run, out, budget) != 0:
            print(f"training curves: {run['name']} failed", file=sys.stderr)
            return 1
        curves.append((run["name"], curve(out) if (out / "train_log.jsonl").is_file() else []))
    plot(curves, args.plot, budget)
    body = table(curves, budget)
    print(body)
    if not args.no_write:
        runs = "--only-collect" if args.only_collect else (
            f"--runs {args.runs}" if args.runs else "")
        cmd = (f"scripts/training_curves.sh --plan {_rel(args.plan)} --out {_rel(args.out)} "
               f"--budget-min {budget:g} {runs}").strip()
        body += (f"\n\nPlot: `{_rel(args.plot)}`. Each point is the run's own validation (the "
                 "validation split of its config, oracle centre): A2J alone on the crop, "
                 "then teacher-select-N, then student-select-N for phased runs; "
                 "teacher-select-N after each epoch for stage-1 runs.")
        append_section(f"Learning curves ({budget:g} min per run)", cmd, body)
    return 0


def _rel(p: Path) -> str:
    """``p`` relative to the repository when inside it (the results name repo paths)."""
    try:
        return str(Path(p).resolve().relative_to(REPO))
    except ValueError:
        return str(p)


if __name__ == "__main__":
    sys.exit(main())
