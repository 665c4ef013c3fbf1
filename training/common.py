"""The scaffolding the three trainers share: device, torchrun / DDP, rank-0 logging,
checkpoint files.

Every trainer runs as one process or as one of ``N`` under
``torchrun --nproc_per_node N -m dance_reenact.cli train <stage> ...``: torchrun sets
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`setup_distributed` reads them, picks the
device (CUDA ``cuda:<LOCAL_RANK>`` when there is one, else the CPU, unless ``--device`` says
otherwise) and joins the process group (NCCL on CUDA, gloo on the CPU). The trainers wrap
their networks with :func:`wrap_ddp` (gradients are averaged over the processes, so every rank
keeps the same weights), give each rank its own share of the data, and let rank 0 alone write
logs and checkpoints.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistContext",
    "select_device",
    "setup_distributed",
    "teardown_distributed",
    "wrap_ddp",
    "barrier",
    "rank_logger",
    "save_train_state",
    "load_train_state",
]

AUTO_DEVICES: tuple[str, ...] = ("", "auto")


@dataclass(frozen=True)
class DistContext:
    """This process's place in a run (a one-process run is rank 0 of 1)."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False  # this process joined torch.distributed and leaves it again

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and saves."""
        return self.rank == 0


def select_device(requested: str | None = None, *, local_rank: int = 0) -> torch.device:
    """The device a training process runs on.

    Args:
        requested: ``None``, ``""`` or ``"auto"``: CUDA when available, else the CPU. ``"cuda"``
            without an index: ``cuda:<local_rank>`` (each torchrun process its own GPU).
            Anything else (``cpu``, ``cuda:1``, ``mps``) is used as given.
        local_rank: this process's index on its machine (torchrun's ``LOCAL_RANK``).
    Returns: the device.
    """
    if requested is None or requested.strip().lower() in AUTO_DEVICES:
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        return torch.device("cpu")
    dev = torch.device(requested)
    if dev.type == "cuda" and dev.index is None:
        return torch.device("cuda", local_rank)
    return dev


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from exc


def setup_distributed(device: str | None = None) -> DistContext:
    """Read torchrun's ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``, pick the device and join the
    process group when there is more than one process.

    A process group that is already initialised (by the caller) is used as it is and left to
    the caller to destroy; one initialised here is destroyed by :func:`teardown_distributed`.

    Args:
        device: ``--device`` (see :func:`select_device`).
    Returns: this process's :class:`DistContext`.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    dev = select_device(device, local_rank=local)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    owns = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        owns = True
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistContext(rank=rank, world_size=world, local_rank=local, device=dev,
                       owns_group=owns)


def teardown_distributed(ctx: DistContext) -> None:
    """Leave the process group if :func:`setup_distributed` joined it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def wrap_ddp(module: nn.Module, ctx: DistContext) -> nn.Module:
    """``module`` in :class:`~torch.nn.parallel.DistributedDataParallel` when the run has
    several processes (it broadcasts rank 0's weights now and averages the gradients at every
    backward), else ``module`` itself."""
    if not ctx.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def barrier(ctx: DistContext) -> None:
    """Wait for every process (no-op in a one-process run)."""
    if ctx.distributed and dist.is_initialized():
        dist.barrier()


class _RankZeroAdapter(logging.LoggerAdapter):
    """Rank 0 logs everything; other ranks only warnings and errors, prefixed by their rank."""

    def __init__(self, logger: logging.Logger, rank: int) -> None:
        super().__init__(logger, {})
        self.rank = rank

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        if self.rank != 0 and level < logging.WARNING:
            return False
        return self.logger.isEnabledFor(level)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]
                ) -> tuple[Any, MutableMapping[str, Any]]:
        return (f"[rank {self.rank}] {msg}" if self.rank else msg), kwargs


def rank_logger(logger: logging.Logger, ctx: DistContext) -> logging.LoggerAdapter:
    """``logger`` for a training process: info and debug only on rank 0 (one line per step,
    not one per process); warnings and errors from every rank, prefixed ``[rank N]``."""
    return _RankZeroAdapter(logger, ctx.rank)


def save_train_state(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write a ``torch.save`` checkpoint (state dicts, numbers) atomically: a crash while
    writing leaves the previous file. Call it on rank 0 only. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_train_state(path: str | os.PathLike[str], *, device: torch.device | str = "cpu"
                     ) -> dict[str, Any]:
    """Read a :func:`save_train_state` file (``weights_only=True``: no code runs), tensors on
    ``device``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training state {path} does not exist")
    return torch.load(path, map_location=device, weights_only=True)
