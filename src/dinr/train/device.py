"""Which device a rank computes on: one GPU per node-local rank, or the CPU.

With CUDA, rank ``r`` of the ``n`` ranks on a node takes GPU ``r`` (and makes it the
current device, so that every allocation and kernel of the rank lands there). More ranks
than GPUs on a node is an error unless ``train.share_gpus`` allows ranks to share GPUs
(round-robin), which costs memory and speed. On the CPU a rank uses the threads its
affinity gives it, shared among the node's ranks.
"""

from __future__ import annotations

import torch

from dinr.errors import InputError
from dinr.train.comm import Communicator


def gpu_for_rank(local_rank: int, local_size: int, device_count: int, share: bool) -> int:
    """The GPU index of node-local rank ``local_rank`` of ``local_size`` on a node with
    ``device_count`` GPUs."""
    if device_count < 1:
        raise InputError("train.device: 'cuda' requested but no CUDA device is available")
    if local_size > device_count and not share:
        raise InputError(f"train.share_gpus: {local_size} ranks on this node but {device_count} GPU(s); "
                         "start one rank per GPU, or set train.share_gpus: true to let ranks share GPUs")
    return local_rank % device_count


def choose_device(requested: str, comm: Communicator, share_gpus: bool = False) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (CUDA when available) for this rank; a GPU is made
    the rank's current device."""
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        torch.set_num_threads(comm.cpu_threads())
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = torch.device("cuda", gpu_for_rank(comm.local_rank, comm.local_size, count, share_gpus))
    torch.cuda.set_device(device)
    return device
