#!/usr/bin/env bash
# One leg of the shipped default model's training (issue 12; record and every leg's command:
# vvhand_core/assets/default_model.md). A leg is a whole phased run (A2J, teacher, student)
# of config/train_default_model.yaml that starts from the previous leg's networks:
#   scripts/train_default_model.sh LEG INIT_CHECKPOINT [--set key=value ...] [--resume]
#   e.g. nohup scripts/train_default_model.sh 2 training/default_model/leg1/last.pt \
#            > out/train/leg2.log 2>&1 &
# writes out/train/default_leg<LEG>/ (last.pt, best.pt, train_log.jsonl, config.yaml);
# a leg that was stopped continues with the same command plus --resume. Then:
#   python -m vvhand_core.train.legs publish <LEG>   (record, fp32 weights for the next leg)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  sed -n 2,10p "$0" >&2
  exit 2
fi
leg=$1
init=$2
shift 2
PY=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
exec nice -n 5 "$PY" -m vvhand_core.train.cli phased --config config/train_default_model.yaml \
  --out "out/train/default_leg$leg" --set "init_from=$init" "$@"
