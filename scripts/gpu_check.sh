#!/usr/bin/env bash
# CUDA checks, for a machine with an NVIDIA GPU (the development and CI machines have none):
#   1. installs the optional pycuda extra into the Python environment if it is missing,
#   2. runs every test marked `gpu` (torch CUDA renderer, PyCUDA kernel parity, ...),
#   3. runs the renderer benchmark on CUDA, torch and pycuda side by side, appending the
#      table to docs/results.md.
# Extra arguments go to `vvhand bench render` (e.g. --repeats 200 --no-write).
#
# pycuda is source-only on PyPI: pip builds it against the local CUDA toolkit (nvcc, cuda.h
# and libcuda must be present), which is why it is not in requirements/base.txt. If the
# build fails, the pycuda test skips with the reason and the benchmark reports torch only.
# torch must be a CUDA build (the default torch wheel on Linux x86_64 is).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"

"$PY" - <<'PY'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device: nothing to check here")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
PY

if ! "$PY" -c "import pycuda.driver" 2>/dev/null; then
    echo "installing pycuda (optional extra; builds against the local CUDA toolkit)"
    "$PY" -m pip install "pycuda==2026.1" || echo "pycuda did not install: its test will skip"
fi

status=0
"$PY" -m pytest -m gpu -v -rs test/ || status=$?
"$PY" -m vvhand_core.cli bench render --backend all --device cuda "$@" || status=$?
exit "$status"
