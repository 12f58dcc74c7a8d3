"""The C allocator's settings for a training process: keep freed memory for the next step.

A training step allocates and frees the same blocks every step: the activations saved
for backward (points x width floats, MiB to tens of MiB each), the hash tables'
gradients, the MLP's. glibc's ``malloc`` serves blocks above its mmap threshold (128 KiB
at start, raised up to 32 MiB as such blocks are freed) by fresh mappings, and returns
the free top of its heap to the system once it exceeds the trim threshold (twice the
mmap threshold while that adapts). Either way the next step faults every page in again
and the kernel zeroes it. Training one epoch of the demo on two ranks spent 14 to 15 s of
its 80 to 90 s of CPU time in the kernel, and 5 to 7 s with the memory kept, which trained
1.165 times as many rays per second; a quarter epoch of the 128-pixel parallel scan 103 to
116 s against 36 to 41 s, 1.228 times the rays per second (``bench/allocator.py``:
``bench/results/allocator.md``, ``allocator_wide_parallel.md``; same loss to the digit).

:func:`keep_freed_memory` fixes the mmap threshold at the ceiling of glibc's own adaptive
one (32 MiB; 256 MiB, which glibc 2.36 also takes, trained no faster) and the trim
threshold at 1 GiB, so freed blocks stay in the heap for the next step. The peak
resident memory stays what the largest step needs (freed memory is kept, not added);
what changes is that a process's resident memory falls back less after its peak.
"""

from __future__ import annotations

import ctypes
import platform

#: ``mallopt`` parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

#: Blocks of at least this many bytes get a mapping of their own: the ceiling glibc's
#: adaptive threshold rises to by itself (``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit).
MMAP_THRESHOLD_BYTES = 32 * 2**20

#: Free memory at the top of the heap beyond this many bytes goes back to the system.
TRIM_THRESHOLD_BYTES = 2**30


def keep_freed_memory() -> bool:
    """Set the process's glibc ``malloc`` to keep freed memory (module note). Returns
    whether it took: False under another C library (musl, macOS), whose allocator is
    left as it is."""
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                                 TRIM_THRESHOLD_BYTES))
