"""numpy's BLAS runs one thread in a deployment (issue 30): load_pipeline caps it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vvhand_core.threads import blas_threads, limit_blas_threads

_CHILD = """
import numpy as np
from vvhand_core.threads import blas_threads
before = blas_threads()
from vvhand_core.assets import default_model_path
from vvhand_core.load import load_pipeline
load_pipeline(default_model_path(), {"backend": "onnxruntime", "device": "cpu",
                                     "renderer": "torch"})
print(before, blas_threads())
"""


def test_load_pipeline_caps_numpy_blas_at_one_thread():
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                         text=True, timeout=300, check=True).stdout.split()
    before, after = int(out[-2]), int(out[-1])
    assert before == 2  # the pool numpy starts with here
    assert after == 1


def test_limit_refuses_zero():
    with pytest.raises(ValueError, match=">= 1"):
        limit_blas_threads(0)
    assert blas_threads() >= 1  # numpy's BLAS is loaded in this process
