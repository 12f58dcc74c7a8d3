"""Ray shards: how the training views are dealt to shards, and shards to ranks.

Training view ``k`` (in scan order) goes to shard ``k % shards``, so every shard spans
the whole scan time; shard ``j`` belongs to rank ``j % ranks``. A rank reads only its
shards' views, and the rays of a step depend on the shards, not on the ranks: one rank
holding two shards replays a two-rank run. The views held out of training are dealt the
same way (held-out view ``k`` to shard ``k % shards``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from dinr.errors import InputError


def ray_shard_count(setting: int | str, ranks: int) -> int:
    """``train.ray_shards``, with ``auto`` = one shard per rank; each rank needs one."""
    shards = ranks if setting == "auto" else int(setting)
    if shards < ranks:
        raise InputError(f"train.ray_shards: {shards} shard(s) for {ranks} ranks; each rank needs one or more")
    return shards


def owned_shards(shards: int, rank: int, size: int) -> list[int]:
    """The ray shards rank ``rank`` of ``size`` holds: ``rank``, ``rank + size``, ..."""
    return list(range(rank, shards, size))


def shard_views(training_views: np.ndarray, shards: int, rank: int, size: int,
                source: str) -> dict[int, np.ndarray]:
    """Shard index -> the scan indices of its views, for the shards rank ``rank`` of
    ``size`` holds; ``training_views`` (ascending scan indices) come from ``source``,
    which errors name."""
    mine = {}
    for shard in owned_shards(shards, rank, size):
        views = training_views[shard::shards]
        if len(views) == 0:
            raise InputError(f"{source}: ray shard {shard} (rank {rank} of {size}) has no "
                             f"training views ({len(training_views)} training views for {shards} shards)")
        mine[shard] = views
    return mine


def heldout_shard_views(heldout_views: np.ndarray, shards: int, owned: Iterable[int]) -> dict[int, np.ndarray]:
    """Shard index -> the scan indices of its held-out views, for the ``owned`` shards of
    ``shards`` (``heldout_views`` ascending); a shard past the last held-out view has none
    and is left out."""
    return {shard: heldout_views[shard::shards] for shard in owned if shard < len(heldout_views)}
