"""Snakemake ``benchmark:`` files: one TSV per job, wall seconds in column ``s``."""

from __future__ import annotations

from pathlib import Path

from dinr.errors import InputError


def read_wall_seconds(benchmarks: dict[str, Path]) -> dict[str, float]:
    """Wall seconds per stage from its benchmark file (stage name -> TSV path)."""
    wall: dict[str, float] = {}
    for stage, path in benchmarks.items():
        lines = Path(path).read_text().splitlines()
        if len(lines) < 2 or "s" not in lines[0].split("\t"):
            raise InputError(f"{path}: not a Snakemake benchmark file (no column 's' with a value)")
        header, values = lines[0].split("\t"), lines[1].split("\t")
        wall[stage] = float(values[header.index("s")])
    return wall


def with_seconds_trained(wall: dict[str, float], seconds_trained: float) -> dict[str, float]:
    """``wall`` (:func:`read_wall_seconds`) with its ``train`` stage at least the
    ``seconds_trained`` the model records. The benchmark times one job: where a training
    was killed and resumed it holds the last attempt alone (a 128-pixel run resumed near
    its end: 44 s of 1626 s trained), and the model's seconds, summed over the attempts
    and pilots, leave out each process's start (about 6 s). Both are lower bounds of the
    wall time spent; the larger is kept."""
    if "train" not in wall:
        return dict(wall)
    return {**wall, "train": max(wall["train"], seconds_trained)}
