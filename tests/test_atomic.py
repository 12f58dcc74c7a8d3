"""Atomic outputs: all or nothing under the final name, with ordinary permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dinr.io.atomic import atomic_path, write_text


def test_output_gets_the_permissions_of_a_plain_open(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        write_text(tmp_path / "metrics.md", "| a |\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "metrics.md").stat().st_mode) == 0o640


def test_failed_writer_leaves_neither_the_file_nor_its_temporary(tmp_path: Path) -> None:
    (tmp_path / "recon.h5").write_text("old")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "recon.h5") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert (tmp_path / "recon.h5").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["recon.h5"]
