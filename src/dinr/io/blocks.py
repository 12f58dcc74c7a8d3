"""Blocks of a scan that fit a memory budget: how the streaming stages cut their work."""

from __future__ import annotations

#: The default budget of one block (``resources.chunk_mb``), in MiB.
DEFAULT_CHUNK_MB = 256.0


def blocks(length: int, bytes_each: int, chunk_mb: float) -> list[slice]:
    """[start, stop) slices that cover ``range(length)`` in order, each holding at most
    ``chunk_mb`` MiB when one index (a view, a detector row, a slice) holds
    ``bytes_each`` bytes; at least one index per block, whatever the budget."""
    if chunk_mb <= 0:
        raise ValueError(f"resources.chunk_mb must be positive (got {chunk_mb})")
    per_block = max(1, int(chunk_mb * 2**20) // max(1, int(bytes_each)))
    return [slice(start, min(start + per_block, length)) for start in range(0, length, per_block)]
