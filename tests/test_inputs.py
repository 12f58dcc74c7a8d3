"""Bad raw input ends in a one-line error naming the file and the dataset path (exit 2)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import dinr_command, prepare_settings
from dinr.errors import InputError
from dinr.io.dxchange import read_raw

PREPARE = dataclasses.asdict(prepare_settings())


def _copy_and_edit(src: Path, dst: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


def _replace(key: str, value: np.ndarray):  # type: ignore[no-untyped-def]
    def edit(f: h5py.File) -> None:
        del f[key]
        f[key] = value
    return edit


CASES = {
    "missing data": (lambda f: f.__delitem__("/exchange/data"), "/exchange/data is missing"),
    "flats of another shape": (_replace("/exchange/data_white", np.ones((3, 2, 5))), "/exchange/data_white"),
    "angles and views differ": (_replace("/exchange/theta", np.arange(7.0)), "/exchange/theta has 7 angles"),
    "NaN counts": (_replace("/exchange/data_dark", np.full((2, 2, 32), np.nan)), "/exchange/data_dark contains NaN"),
    "negative counts": (_replace("/exchange/data_dark", np.full((2, 2, 32), -1.0)), "/exchange/data_dark has negative"),
    "time running backwards": (_replace("/exchange/time", np.arange(120.0)[::-1].copy()), "/exchange/time"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_raw_file_is_rejected_with_its_dataset_path(case: str, tiny_scan: dict[str, Path],
                                                            tmp_path: Path) -> None:
    edit, expected = CASES[case]
    bad = _copy_and_edit(tiny_scan["raw"], tmp_path / "bad.h5", edit)
    with pytest.raises(InputError, match=expected) as info:
        read_raw(bad)
    assert str(bad) in str(info.value)


def test_cli_rejects_truncated_and_empty_files_in_one_line(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    settings = tmp_path / "prepare.json"
    settings.write_text(json.dumps(PREPARE))
    raw_digest = hashlib.sha256(tiny_scan["raw"].read_bytes()).hexdigest()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(tiny_scan["raw"].read_bytes()[:5000])
    empty = tmp_path / "empty.h5"
    empty.touch()
    for bad in (truncated, empty):
        result = dinr_command("prepare", "--settings", str(settings), "--raw", str(bad), "--out", str(tmp_path / "o.h5"))
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(bad) in lines[0] and "Traceback" not in result.stderr
        assert not (tmp_path / "o.h5").exists()
    assert hashlib.sha256(tiny_scan["raw"].read_bytes()).hexdigest() == raw_digest


def test_settings_with_unknown_key_are_rejected_naming_it(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    settings = tmp_path / "prepare.json"
    settings.write_text(json.dumps({**PREPARE, "centre": 3}))
    result = dinr_command("prepare", "--settings", str(settings), "--raw", str(tiny_scan["raw"]),
                          "--out", str(tmp_path / "o.h5"))
    assert result.returncode == 2 and "unknown key(s) centre" in result.stderr
