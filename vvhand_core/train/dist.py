"""Where training runs: the torchrun process group (or one process), its device, hardware.

Under torchrun (WORLD_SIZE > 1) every process joins one process group (NCCL on CUDA,
gloo on CPU); without it :func:`setup_distributed` returns a one-process
:class:`DistEnv`.
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from vvhand_core.checkpoint import resolve_device


@dataclass
class DistEnv:
    """Where this process trains: rank / world size (1 without torchrun) and device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def distributed(self) -> bool:
        """True under torchrun with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and the progress bar."""
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistEnv:
    """Join the torchrun process group when WORLD_SIZE > 1; resolve the device.

    With CUDA each process takes cuda:LOCAL_RANK and NCCL; on CPU gloo.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world <= 1:
        return DistEnv(device=dev)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank,
                                world_size=world)
    return DistEnv(rank, world, local, dev)


def teardown_distributed(env: DistEnv) -> None:
    """Leave the process group (no-op without one)."""
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    """Wait for every rank (no-op without a process group)."""
    if env.distributed:
        dist.barrier()


def hardware_info(env: DistEnv) -> dict[str, Any]:
    """What the run trained on, for the checkpoint's metadata."""
    info: dict[str, Any] = {
        "device": str(env.device),
        "world_size": env.world_size,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if env.device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(env.device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        info["cpu"] = platform.processor()
    return info


def past_deadline(deadline: float, env: DistEnv) -> bool:
    """Whether the time limit has passed, agreed by all ranks (so DDP steps stay matched)."""
    if deadline == math.inf:
        return False
    late = time.perf_counter() > deadline
    if env.distributed:
        flag = torch.tensor([1.0 if late else 0.0],
                            device=env.device if env.device.type == "cuda" else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        late = bool(flag.item() > 0)
    return late
