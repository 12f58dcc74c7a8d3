"""The training process keeps freed memory for its next step (dinr.train.allocator)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from dinr.train import allocator

#: Allocates and frees 48 blocks of about 4 MiB twice (as a training step's activations
#: are) and prints the page faults of the second round: each page faulted in again is a
#: page the allocator had given back to the system.
CHURN = """
import resource, sys
import numpy as np
from dinr.train.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def churn():
    blocks = [np.ones(2**20 + k, dtype=np.float32) for k in range(48)]
    del blocks
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def second_round_faults(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True)
    return int(result.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's malloc's")
def test_freed_blocks_serve_the_next_round_without_page_faults() -> None:
    pages = 48 * 4 * 2**20 // 4096
    assert second_round_faults("default") > pages // 2  # glibc alone gives them back: faulted in again
    assert second_round_faults("keep") < pages // 100


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's malloc's")
def test_reports_the_mmap_threshold_that_took() -> None:
    code = "from dinr.train.allocator import keep_freed_memory; print(keep_freed_memory())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(result.stdout) in (allocator.MMAP_THRESHOLD_BYTES, allocator.FALLBACK_MMAP_THRESHOLD_BYTES)
