"""Which device a rank computes on: one GPU per node-local rank, or the CPU.

With CUDA, rank ``r`` of the ``n`` ranks on a node takes GPU ``r`` (and makes it the
current device, so that every allocation and kernel of the rank lands there). More ranks
than GPUs on a node is an error unless ``train.share_gpus`` allows ranks to share GPUs
(round-robin), which costs memory and speed. On the CPU a rank uses the threads its
affinity gives it, shared among the node's ranks.
"""

from __future__ import annotations

import os

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


#: Variables through which Slurm (and CUDA) tell a job which GPUs it holds.
GPU_VARIABLES = ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "SLURM_GPUS_ON_NODE", "CUDA_VISIBLE_DEVICES")


def reserved_gpus(environ: dict[str, str] | None = None) -> str | None:
    """``NAME=value`` of the first variable saying this job holds GPUs, or None."""
    environ = dict(os.environ) if environ is None else environ
    for name in GPU_VARIABLES:
        value = environ.get(name, "").strip()
        none = {"", "-1", "NoDevFiles", "none"} | ({"0"} if name == "SLURM_GPUS_ON_NODE" else set())
        if value not in none:
            return f"{name}={value}"
    return None


def torch_build() -> str:
    """The installed torch's version and whether it was built with CUDA."""
    return f"torch {torch.__version__} ({'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU-only build'})"


def check_gpus_usable(requested: str, environ: dict[str, str] | None = None) -> None:
    """A job that reserved GPUs (``device: auto``) or asked for one (``cuda``) but cannot
    use them stops here, naming the key and the torch build, instead of computing on
    the CPU of a GPU node."""
    if torch.cuda.is_available() or requested == "cpu":
        return
    reserved = reserved_gpus(environ)
    if requested == "cuda" or reserved:
        why = f"this job holds GPUs ({reserved})" if reserved else "train.device is 'cuda'"
        raise InputError(f"train.device: {why} but {torch_build()} cannot use them: install PyTorch's CUDA build "
                         "on the GPU nodes (README 'On a GPU node'), or set train.device: cpu")


def choose_device(requested: str, comm: Communicator, share_gpus: bool = False) -> torch.device:
    """``cpu``, ``cuda`` or ``auto`` (CUDA when available) for this rank; a GPU is made
    the rank's current device. A rank of a job that holds GPUs it cannot use stops with
    an error (:func:`check_gpus_usable`)."""
    check_gpus_usable(requested)
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        torch.set_num_threads(comm.cpu_threads())
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = torch.device("cuda", gpu_for_rank(comm.local_rank, comm.local_size, count, share_gpus))
    torch.cuda.set_device(device)
    return device
