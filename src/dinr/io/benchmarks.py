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
