"""Data-parallel training through PyTorch's own engine: torchrun starts the processes,
``torch.distributed`` connects them (gloo on CPU, NCCL on CUDA), DDP averages the gradients.

A stage script calls :func:`relaunch` first: with ``train.nproc > 1`` and no torchrun around it,
it re-runs itself under torchrun (``--standalone``, one machine) and returns the exit status;
under torchrun — started by :func:`relaunch` or by hand across machines — :func:`setup` joins
the process group. Only rank 0 writes files.
"""
from __future__ import annotations

import gc
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: ``rank`` of ``world`` processes (1 without torchrun)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """The process that writes outputs and prints."""
        return self.rank == 0

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sum of ``values`` over all processes (the values themselves alone)."""
        if self.world == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ


def relaunch(nproc: int, module: str) -> int | None:
    """Re-run ``python -m module <this command's arguments>`` as ``nproc`` torchrun processes.

    Returns their exit status, or None when no relaunch is needed (``nproc == 1``, or this
    process already runs under torchrun).
    """
    if nproc == 1 or under_torchrun():
        return None
    from torch.distributed.run import main as torchrun

    try:
        torchrun(["--standalone", f"--nproc-per-node={nproc}", "--module", module,
                  *sys.argv[1:]])
    except Exception as err:  # torchrun raises ChildFailedError with each rank's traceback
        print(f"{module}: a training process failed under torchrun: {err}", file=sys.stderr)
        return 1
    return 0


def setup(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group torchrun describes in the environment; on CUDA each process takes
    the GPU of its local rank. Without torchrun: a one-process job on ``device``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(), device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size()), device


def teardown(job: Dist) -> None:
    """Leave the process group together: a barrier first, so that no process destroys its
    connections while rank 0 still writes the checkpoint (under load gloo then aborts the
    process that left first: "terminate called without an active exception"). Before it, a
    garbage collection frees the DDP wrapper (its reducer sits in a reference cycle) and with it
    the group's last work, so that nothing of gloo is left for the interpreter's finalization,
    where freeing it aborts the process the same way."""
    if job.world > 1 and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
