"""The C allocator's settings for a training process: keep freed memory for the next step.

A training step allocates and frees the same blocks every step: the activations saved
for backward (points x width floats, MiB to tens of MiB each), the hash tables'
gradients, the MLP's. glibc's ``malloc`` serves blocks above its mmap threshold (128 KiB
at start, raised up to 32 MiB as such blocks are freed) by fresh mappings, and returns
the free top of its heap to the system once it exceeds the trim threshold (twice the
mmap threshold while that adapts). Either way the next step faults every page in again
and the kernel zeroes it. Training one epoch of the demo on two ranks spent 12 to 17 s of
its 79 to 84 s of CPU time in the kernel, and 4 to 7 s with the memory kept, which trained
1.150 times as many rays per second (three alternating pairs); a quarter epoch of the
128-pixel parallel scan spent 94 s against 38 s, 1.083 times the rays per second (one
pair; ``bench/allocator.py``: ``bench/results/allocator.md``,
``allocator_wide_parallel.md``; the same loss to the digit).

:func:`keep_freed_memory` sets the mmap threshold to 256 MiB, above every block of a
step at the default width (the largest: a pass of 2**17 points x 64 features, 32 MiB and
its header, which the held-out evaluation allocates several times each pass; at glibc's
own ceiling of 32 MiB those still got fresh mappings, and the demo trained 7 to 8 %
slower), or to that ceiling where glibc refuses more; and the trim threshold to 1 GiB.
Freed blocks then stay in the heap for the next step. Freed memory is kept, not added:
the demo's peak resident memory per rank went from 814-838 to 837-871 MiB, the 128-pixel
scan's from 1228-1244 to 1241-1243 MiB; a process's resident memory falls back less
after its peak.
"""

from __future__ import annotations

import ctypes
import platform

#: ``mallopt`` parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

#: Blocks of at least this many bytes get a mapping of their own.
MMAP_THRESHOLD_BYTES = 256 * 2**20
#: The ceiling glibc's adaptive threshold rises to by itself (``DEFAULT_MMAP_THRESHOLD_MAX``
#: on 64-bit), for a glibc that refuses :data:`MMAP_THRESHOLD_BYTES`.
FALLBACK_MMAP_THRESHOLD_BYTES = 32 * 2**20

#: Free memory at the top of the heap beyond this many bytes goes back to the system.
TRIM_THRESHOLD_BYTES = 2**30


def keep_freed_memory() -> int:
    """Set the process's glibc ``malloc`` to keep freed memory (module note). Returns the
    mmap threshold it set, in bytes (:data:`MMAP_THRESHOLD_BYTES`, or
    :data:`FALLBACK_MMAP_THRESHOLD_BYTES` where glibc refuses that); 0 where nothing was
    set: under another C library (musl, macOS) the allocator is left as it is."""
    if platform.libc_ver()[0] != "glibc":
        return 0
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    threshold = next((bytes_ for bytes_ in (MMAP_THRESHOLD_BYTES, FALLBACK_MMAP_THRESHOLD_BYTES)
                      if mallopt(M_MMAP_THRESHOLD, bytes_)), 0)
    return threshold if threshold and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) else 0
