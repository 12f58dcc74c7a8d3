"""Which device a baseline job reconstructs on (``baselines.device``): ``cpu``, ``cuda``
(the GPU build of the method's library: ASTRA's CUDA FBP, RTK's CUDA FDK from an
``itk-rtk-cuda*`` wheel, JAX's CUDA plugin for mbirjax; ``pip install -e '.[gpu]'``),
or ``auto``: CUDA when the library has it and the node shows an NVIDIA GPU, else the
CPU. Resolved per job and recorded in the output's ``device`` attribute.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from dinr.baselines import FBP_METHODS, FDK_METHODS
from dinr.errors import InputError

#: The values of ``baselines.device``.
DEVICES = ("auto", "cpu", "cuda")


def nvidia_gpu_present() -> bool:
    """Whether the node's NVIDIA driver lists a GPU (without initialising CUDA)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def _astra_has_cuda() -> bool:
    import astra

    return bool(astra.use_cuda())


def _rtk_has_cuda() -> bool:
    try:
        itk = importlib.import_module("itk")
        return hasattr(itk.RTK, "CudaFDKConeBeamReconstructionFilter")
    except (ImportError, AttributeError):
        return False


def _jax_has_cuda() -> bool:
    return any(importlib.util.find_spec(f"jax_cuda{version}_plugin") is not None for version in (12, 13))


def library_gpu(method: str, fbp_backend: str) -> tuple[str, bool]:
    """(the library that reconstructs ``method``, whether its GPU build is installed and
    a GPU is present)."""
    if method in FBP_METHODS:
        if fbp_backend == "tomopy":
            return "TomoPy's gridrec (CPU only; backend astra has a CUDA FBP)", False
        return "ASTRA", nvidia_gpu_present() and _astra_has_cuda()
    if method in FDK_METHODS:
        return "RTK (itk-rtk-cuda*)", nvidia_gpu_present() and _rtk_has_cuda()
    return "mbirjax's JAX (jax[cuda12])", nvidia_gpu_present() and _jax_has_cuda()


def resolve_device(requested: str, method: str, fbp_backend: str = "astra") -> str:
    """``cpu`` or ``cuda`` for a baseline job; ``cuda`` asked for where it cannot run is
    an error naming the key and the library."""
    if requested not in DEVICES:
        raise InputError(f"baselines.device: {requested!r}; use one of {', '.join(DEVICES)}")
    if requested == "cpu":
        return "cpu"
    library, available = library_gpu(method, fbp_backend)
    if requested == "cuda" and not available:
        raise InputError(f"baselines.device: 'cuda' for {method}, but {library} has no GPU build here or no "
                         "NVIDIA GPU is visible: install the GPU builds on a GPU node (pip install -e '.[gpu]'), "
                         "or set baselines.device: auto or cpu")
    return "cuda" if available else "cpu"
