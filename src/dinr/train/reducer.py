"""Gradient averaging across ranks: our flat-buffer allreduce, optionally in buckets.

Every parameter's ``.grad`` is a view into one preallocated flat buffer: autograd
accumulates into existing ``.grad`` tensors in place, so after ``backward()`` the buffer
holds all gradients without a copy. Spare control slots at its end belong to no
parameter: the training loop puts per-rank flags there, and they are averaged with the
gradients at no extra message. With one bucket, the whole
buffer is summed by a single in-place ``MPI_Allreduce`` after backward. With several,
the parameters, taken in reverse registration order (the order in which backward
produces their gradients), are grouped into buckets of about equal size; a
post-accumulate-grad hook starts each bucket's ``MPI_Iallreduce`` as soon as its last
gradient exists, so communication overlaps the rest of backward. Device buffers are
handed to MPI directly when it is CUDA-aware, else copied through pinned host memory.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from dinr.errors import InputError
from dinr.train.comm import Communicator

log = logging.getLogger(__name__)


def check_mpi_support(comm: Communicator, device: torch.device, buckets: int, cuda_aware: bool) -> None:
    """Refuse what the MPI library cannot do. Bucket hooks run where autograd runs
    backward: on a GPU that is one of autograd's device threads, so MPI must grant
    ``MPI_THREAD_MULTIPLE``. Device buffers go to MPI directly only if the library says
    it can read CUDA memory (``mpi_memory_alloc_kinds``); one that does not say is
    trusted, with a warning."""
    if comm.size == 1 or device.type != "cuda":
        return
    if buckets > 1 and comm.thread_level() < 3:
        raise InputError(f"train.allreduce_buckets: {buckets} buckets start MPI calls from autograd's device "
                         f"threads, but this MPI grants thread level {comm.thread_level()} (MPI_THREAD_MULTIPLE is "
                         "3); use 1 bucket or an MPI with full thread support")
    kinds = comm.memory_kinds()
    if cuda_aware and kinds is not None and "cuda" not in kinds:
        raise InputError(f"train.cuda_aware_mpi: this MPI cannot read CUDA memory (it reports memory kinds "
                         f"{kinds!r}); set cuda_aware_mpi: false to go through host memory")
    if cuda_aware and kinds is None:
        log.warning("train.cuda_aware_mpi: this MPI does not report whether it reads CUDA memory; trusting the config")


class GradientReducer:
    """The flat gradient buffer of ``module`` and its average over ``comm``'s ranks."""

    def __init__(self, module: nn.Module, comm: Communicator, control_slots: int = 0, buckets: int = 1,
                 cuda_aware: bool = False) -> None:
        self.comm = comm
        params = [p for p in module.parameters() if p.requires_grad]
        check_mpi_support(comm, params[0].device, buckets, cuda_aware)
        bounds, offset = [], 0
        for p in params:
            bounds.append((offset, offset + p.numel()))
            offset += p.numel()
        self.buffer = torch.zeros(offset + control_slots, dtype=params[0].dtype, device=params[0].device)
        for p, (start, end) in zip(params, bounds):
            p.grad = self.buffer[start:end].view_as(p)
        self.control = (offset, self.buffer.numel())
        self.on_device = self.buffer.device.type != "cpu"
        self.staging = (torch.empty(self.buffer.numel(), dtype=self.buffer.dtype).pin_memory()
                        if self.on_device and not cuda_aware and comm.size > 1 else None)
        self.buckets: list[tuple[int, int, int]] = []  # (start, end, number of parameters)
        self.requests: list[tuple[Any, Any]] = []
        self.started: set[int] = set()
        self.pending: list[int] = []
        if buckets > 1 and comm.size > 1:
            self._make_buckets(params, bounds, buckets)

    def _make_buckets(self, params: list[nn.Parameter], bounds: list[tuple[int, int]], buckets: int) -> None:
        target = self.control[0] / buckets
        members: list[int] = []
        for index in reversed(range(len(params))):
            members.append(index)
            size = bounds[members[0]][1] - bounds[members[-1]][0]
            if size >= target or index == 0:
                self.buckets.append((bounds[members[-1]][0], bounds[members[0]][1], len(members)))
                for member in members:
                    params[member].register_post_accumulate_grad_hook(self._hook_for(len(self.buckets) - 1))
                members = []
        self.pending = [count for _, _, count in self.buckets]

    def _hook_for(self, bucket: int) -> Any:
        def hook(_: torch.Tensor) -> None:
            self.pending[bucket] -= 1
            if self.pending[bucket] == 0:
                self._start(bucket)
        return hook

    def _target(self, start: int, end: int) -> Any:
        """What MPI reads and writes for ``buffer[start:end]``."""
        if self.staging is not None:
            self.staging[start:end].copy_(self.buffer[start:end])  # waits for the device
            return self.staging[start:end].numpy()
        if self.on_device:
            torch.cuda.current_stream(self.buffer.device).synchronize()
            return self.buffer[start:end]  # CUDA-aware MPI reads device memory
        return self.buffer[start:end].numpy()

    def _start(self, bucket: int) -> None:
        start, end, _ = self.buckets[bucket]
        target = self._target(start, end)
        self.requests.append((self.comm.iallreduce_sum(target), target))
        self.started.add(bucket)

    def zero_(self, passes: int = 1) -> None:
        """Zero the gradients (and control slots) before a step of ``passes`` backward
        passes whose gradients add up: a bucket's allreduce starts when its gradients
        have been accumulated by the last pass."""
        self.buffer.zero_()
        self.requests, self.started = [], set()
        self.pending = [count * passes for _, _, count in self.buckets]

    def average_(self) -> None:
        """Finish the sum over ranks (buckets not yet started, then the control slots)
        and divide by the number of ranks: every rank ends with the same buffer."""
        if self.comm.size == 1:
            return
        if not self.buckets:
            self.comm.allreduce_sum_(self._target(0, self.buffer.numel()))
        else:
            for bucket in range(len(self.buckets)):
                if bucket not in self.started:
                    self._start(bucket)
            start, end = self.control
            if end > start:
                target = self._target(start, end)
                self.requests.append((self.comm.iallreduce_sum(target), target))
            self.comm.wait_all([request for request, _ in self.requests])
        if self.staging is not None:
            self.buffer.copy_(self.staging)
        self.buffer.div_(self.comm.size)

    def bucket_sizes(self) -> list[int]:
        """Entries per bucket, in the order they are started."""
        return [end - start for start, end, _ in self.buckets] or [self.buffer.numel()]
