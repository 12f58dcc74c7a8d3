"""MPI communication: the ranks of a job and the collectives of training and rendering.

The collectives training and rendering use: sums and maxima of scalars and of arrays in
place (the gradient buffer of :mod:`dinr.train.reducer`), the initial broadcast of the
parameters (they never travel again), a CRC check that ranks hold the same parameters,
and work dealt to the ranks in rounds and gathered on rank 0. Without mpi4py or outside
``mpiexec`` everything degrades to one rank.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from torch import nn

from dinr.errors import DriftError

T = TypeVar("T")
R = TypeVar("R")


class Communicator:
    """The ranks of the training job (``MPI.COMM_WORLD``, or one rank without MPI)."""

    def __init__(self, use_mpi: bool = True) -> None:
        self._mpi: Any = None
        self.comm: Any = None
        if use_mpi:
            try:
                from mpi4py import MPI
            except ImportError:
                MPI = None
            if MPI is not None:
                self._mpi = MPI
                self.comm = MPI.COMM_WORLD
        self.rank = self.comm.Get_rank() if self.comm else 0
        self.size = self.comm.Get_size() if self.comm else 1
        if self.comm:
            node = self.comm.Split_type(self._mpi.COMM_TYPE_SHARED)
            self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
            node.Free()
        else:
            self.local_rank, self.local_size = 0, 1

    def cpu_threads(self) -> int:
        """Threads this rank may use: its CPU affinity, shared among the node's ranks
        unless the launcher (e.g. ``srun --cpus-per-task``) already bound each rank."""
        usable = len(os.sched_getaffinity(0))
        if usable >= (os.cpu_count() or usable) and self.local_size > 1:
            usable //= self.local_size
        return max(1, usable)

    def thread_level(self) -> int:
        """The MPI thread support level granted (0 single ... 3 multiple; 3 without MPI)."""
        return int(self._mpi.Query_thread()) if self._mpi is not None else 3

    def memory_kinds(self) -> str | None:
        """The memory kinds the MPI library can send from (MPI 4.1's info key
        ``mpi_memory_alloc_kinds``, e.g. ``mpi,system,cuda:device``); None when the
        library does not say."""
        if self.comm is None:
            return None
        info = self.comm.Get_info()
        try:
            return info.Get("mpi_memory_alloc_kinds")
        finally:
            info.Free()

    def allreduce_sum_(self, values: Any) -> None:
        """Sum an array over all ranks, in place (a NumPy array, or a device tensor
        when the MPI library is CUDA-aware)."""
        if self.size > 1:
            self.comm.Allreduce(self._mpi.IN_PLACE, values, op=self._mpi.SUM)

    def iallreduce_sum(self, values: Any) -> Any:
        """Start summing an array over all ranks in place; returns the MPI request.
        ``values`` must stay alive and untouched until :meth:`wait_all`."""
        return self.comm.Iallreduce(self._mpi.IN_PLACE, values, op=self._mpi.SUM)

    def wait_all(self, requests: list[Any]) -> None:
        """Complete started non-blocking operations."""
        if requests:
            self._mpi.Request.Waitall(requests)

    def allreduce_max(self, value: float) -> float:
        """The largest ``value`` over all ranks."""
        return float(self.comm.allreduce(value, op=self._mpi.MAX)) if self.size > 1 else value

    def allreduce_sum(self, value: float) -> float:
        """The sum of ``value`` over all ranks."""
        return float(self.comm.allreduce(value, op=self._mpi.SUM)) if self.size > 1 else value

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank."""
        if self.size == 1:
            return
        for tensor in list(module.parameters()) + list(module.buffers()):
            host = tensor.detach().cpu().contiguous()
            self.comm.Bcast(host.numpy(), root=0)
            tensor.data.copy_(host)

    def check_identical(self, module: nn.Module, step: int) -> int:
        """Compare a CRC32 of every rank's parameters; raise :class:`DriftError` if any differ.

        Returns the checksum. Bitwise equality is expected: every rank applies the
        same update to the same parameters with the same averaged gradient.
        """
        crc = 0
        for tensor in module.state_dict().values():
            crc = zlib.crc32(tensor.detach().cpu().contiguous().numpy().tobytes(), crc)
        if self.size > 1:
            sums = self.comm.allgather(crc)
            if len(set(sums)) > 1:
                raise DriftError(
                    f"parameters differ across ranks at step {step}: CRC32 per rank "
                    + ", ".join(f"{r}:{c:08x}" for r, c in enumerate(sums))
                )
        return crc

    def gather(self, obj: Any) -> list[Any] | None:
        """Gather a picklable object on rank 0 (``None`` elsewhere)."""
        return self.comm.gather(obj, root=0) if self.size > 1 else [obj]

    def map_rounds(self, items: Sequence[T], work: Callable[[T], R]) -> Iterator[tuple[T, R]]:
        """Deal ``items`` to the ranks in rounds (item ``k`` to rank ``k % size``) and
        yield, on rank 0, each ``(item, work(item))`` as its round is gathered; other
        ranks yield nothing. Memory per rank stays at one round's results."""
        for start in range(0, len(items), self.size):
            index = start + self.rank
            mine = (items[index], work(items[index])) if index < len(items) else None
            for part in self.gather(mine) or []:
                if part is not None:
                    yield part

    def barrier(self) -> None:
        if self.size > 1:
            self.comm.Barrier()
