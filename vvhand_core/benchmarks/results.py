"""Append measured benchmark tables to docs/results.md (shared by every benchmark)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from pathlib import Path

import torch


def default_results_path() -> Path:
    """docs/results.md of the source tree, or $VVHAND_RESULTS when set."""
    env = os.environ.get("VVHAND_RESULTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "docs" / "results.md"


def machine_line() -> str:
    """One line naming the machine the numbers come from."""
    cpu = platform.processor() or platform.machine()
    line = f"{platform.node()} / {cpu} / {os.cpu_count()} cores / torch {torch.__version__}"
    if torch.cuda.is_available():
        line += f" / {torch.cuda.get_device_name(0)}"
    return line


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """Render a Markdown table; floats are shown with 2 decimals."""

    def fmt(x: object) -> str:
        return f"{x:.2f}" if isinstance(x, float) else str(x)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def append_section(title: str, command: str, body: str, path: Path | None = None) -> Path:
    """Append a dated section (title, reproducing command, machine, body) to results.md."""
    path = path or default_results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"\n### {title} ({stamp})\n\n"
        f"Command: `{command}`  \nMachine: {machine_line()}\n\n{body.rstrip()}\n"
    )
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)
    return path
