"""ruff over every Python file of the repository (the role ament_flake8/pep257 play).

ruff is a test dependency (package.xml: test_depend python3-ruff-pip; requirements/base.txt);
where it is not installed the test is skipped with that reason, so `colcon test` on a system
that lacks it still runs the rest of the suite.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def find_ruff() -> str | None:
    """The ruff next to this interpreter (a venv), else the one on PATH, else None."""
    return shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


def test_ruff_clean():
    ruff = find_ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (test_depend python3-ruff-pip; "
                    "`rosdep install --from-paths src` or `pip install ruff`)")
    proc = subprocess.run(
        [ruff, "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_without_ruff_the_lint_test_skips(monkeypatch):
    """No ruff anywhere: a skip that names the missing tool, not a failure."""
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(pytest.skip.Exception, match="ruff is not installed"):
        test_ruff_clean()
