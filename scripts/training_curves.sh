#!/usr/bin/env bash
# Learning curves of today's default and the phased CPU recipe (issue 11, item 6): runs
# the plan's trainings one after the other (30 min each by default, ~2.5 h in all, under
# nice), then writes docs/training_curve.png and a table into docs/results.md.
#   scripts/training_curves.sh [--budget-min 30] [--plan config/training_curves.yaml]
#                              [--out out/curves] [--only-collect] [--no-write]
#                              [--runs 0,2]  (train only these plan entries; plot all found)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec nice -n 10 "$PY" -m vvhand_core.train.curves "$@"
