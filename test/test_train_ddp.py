"""Multi-process training: torchrun with 2 CPU processes on the gloo backend (localhost only).

The same command runs on GPUs with NCCL (one process per GPU); here it checks that the
process group forms, both ranks step through DistributedDataParallel and validate their
shards, and rank 0 alone writes a checkpoint that loads.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vvhand_core.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_cpu_processes_train_and_write_one_checkpoint(tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", GLOO_SOCKET_IFNAME="lo",
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
        "-m", "vvhand_core.train.cli", "stage1", "--config", "config/train_tiny.yaml",
        "--out", str(out), "--set", "optim.epochs=1", "--set", "optim.batch_size=1",
        "--set", "data.train_frames=4", "--set", "optim.steps_per_epoch=2",
        "--set", "data.val_frames=3",
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    loaded = load_checkpoint(out / "last.pt")
    assert loaded.meta["hardware"]["world_size"] == 2
    assert loaded.meta["steps"] == 2
    # 3 validation frames split 2 + 1 over the ranks, gathered back to all 3
    assert loaded.meta["val_frames"] == 3
    records = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["type"] == "epoch"] == [1]  # rank 0 logs only
    state = torch.load(out / "last_state.pt", weights_only=True)
    assert state["step"] == 2
    assert proc.stdout.count("vvhand train stage1:") == 1  # rank 0 prints the summary
