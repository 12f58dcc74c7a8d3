"""Bad input, tried systematically: generated malformed settings, Data Exchange files and
TIFF folders must each end in one line naming the file and the dataset path or key,
with exit code 2, no traceback, and the input left as it was."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import h5py
import jsonschema
import numpy as np
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TINY_TRAIN, prepare_settings
from dinr import cli
from dinr.settings import section_schemas

EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run_cli(*args: str) -> tuple[int, str]:
    """``dinr ARGS`` in this process: (exit code, stderr)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = cli.main(list(args))
    return code, stderr.getvalue()


def assert_one_line_error(code: int, stderr: str, *names: str) -> None:
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    for name in names:
        assert name in lines[0], (name, lines[0])


def digest(path: Path) -> str:
    if path.is_dir():
        return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- settings ---------------------------------------------------------------------------

WRONG_VALUES = st.one_of(st.text(max_size=5), st.booleans(), st.none(), st.floats(allow_nan=True),
                         st.integers(min_value=-10**6, max_value=-1), st.lists(st.integers(), max_size=3))


@EXAMPLES
@given(key=st.sampled_from(sorted(f.name for f in dataclasses.fields(TINY_TRAIN))), value=WRONG_VALUES)
def test_malformed_train_settings_name_the_key(tmp_path: Path, key: str, value: object) -> None:
    good = dataclasses.asdict(TINY_TRAIN)
    bad = {**good, key: value}
    schema = section_schemas()["train"]["properties"][key]
    if jsonschema.Draft202012Validator(schema).is_valid(value):
        return  # the generated value happens to be legal for this key
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "train.json"
    path.write_text(json.dumps(bad))
    code, stderr = run_cli("train", "--settings", str(path), "--sinogram", "s.h5", "--checkpoint", "c.pt",
                           "--model", "m.pt")
    assert_one_line_error(code, stderr, str(path), f"train.{key}")


@EXAMPLES
@given(mutation=st.sampled_from(["drop", "add", "not a mapping", "not json"]),
       key=st.sampled_from(sorted(section_schemas()["prepare"]["properties"])))
def test_settings_files_with_missing_or_unknown_keys(tmp_path: Path, mutation: str, key: str) -> None:
    values = dataclasses.asdict(prepare_settings())
    text = {"drop": lambda: json.dumps({k: v for k, v in values.items() if k != key}),
            "add": lambda: json.dumps({**values, key + "_x": 1}),
            "not a mapping": lambda: json.dumps([1, 2]),
            "not json": lambda: "{" + key}[mutation]()
    path = Path(tempfile.mkdtemp(dir=tmp_path)) / "prepare.json"
    path.write_text(text)
    code, stderr = run_cli("prepare", "--settings", str(path), "--raw", "r.h5", "--out", "o.h5")
    expected = {"drop": key, "add": key + "_x", "not a mapping": "mapping", "not json": "cannot read"}[mutation]
    assert_one_line_error(code, stderr, str(path), expected)


# --- Data Exchange files ----------------------------------------------------------------

VIEWS, ROWS, COLS = 24, 2, 16


def good_scan() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "/exchange/data": rng.uniform(100, 900, (VIEWS, ROWS, COLS)).astype(np.float32),
        "/exchange/data_white": np.full((3, ROWS, COLS), 1000.0, np.float32),
        "/exchange/data_dark": np.full((3, ROWS, COLS), 10.0, np.float32),
        "/exchange/theta": np.linspace(0.0, 180.0, VIEWS),
        "/exchange/time": np.arange(VIEWS, dtype=np.float64),
    }


def corruptions() -> st.SearchStrategy[tuple[str, Callable[[dict[str, np.ndarray]], None], str]]:
    """(name, edit of the datasets, what the message must name)."""
    key = st.sampled_from(["/exchange/data", "/exchange/data_white", "/exchange/data_dark"])
    position = st.tuples(st.integers(0, 1), st.integers(0, ROWS - 1), st.integers(0, COLS - 1))

    def delete(k: str) -> Callable[[dict[str, np.ndarray]], None]:
        return lambda d: d.pop(k)

    def put(k: str, value: object) -> Callable[[dict[str, np.ndarray]], None]:
        return lambda d: d.__setitem__(k, value)

    def poke(k: str, where: tuple[int, int, int], value: float) -> Callable[[dict[str, np.ndarray]], None]:
        def edit(d: dict[str, np.ndarray]) -> None:
            d[k] = d[k].copy()
            d[k][where] = value
        return edit

    def swap(k: str, i: int) -> Callable[[dict[str, np.ndarray]], None]:
        def edit(d: dict[str, np.ndarray]) -> None:
            d[k] = d[k].copy()
            d[k][[i, i + 1]] = d[k][[i + 1, i]]
        return edit

    return st.one_of(
        st.sampled_from(["/exchange/data", "/exchange/data_white", "/exchange/data_dark"]).map(
            lambda k: ("missing", delete(k), k)),
        st.tuples(key, st.integers(1, 5), st.integers(1, 40)).map(
            lambda a: ("shape", put(a[0], np.ones((a[1], a[2]), np.float32)), a[0])),
        st.tuples(key, position, st.sampled_from([np.nan, np.inf, -np.inf])).map(
            lambda a: ("non-finite", poke(*a), a[0])),
        st.tuples(key, position, st.floats(-1e6, -1e-3)).map(lambda a: ("negative", poke(*a), a[0])),
        key.map(lambda k: ("strings", put(k, np.array([["a"]], dtype=object).astype("S1")), k)),
        st.just(("zero flats", put("/exchange/data_white", np.zeros((3, ROWS, COLS), np.float32)),
                 "/exchange/data_white")),
        st.integers(1, VIEWS - 3).map(lambda i: ("angles out of order", swap("/exchange/theta", i),
                                                 "/exchange/theta")),
        st.integers(1, VIEWS - 3).map(lambda i: ("time out of order", swap("/exchange/time", i), "/exchange/time")),
        st.integers(1, VIEWS - 1).map(lambda n: ("angle count", put("/exchange/theta", np.arange(float(n))),
                                                 "/exchange/theta")),
    )


@EXAMPLES
@given(corruption=corruptions())
def test_malformed_data_exchange_files(tmp_path: Path, corruption: tuple[str, Callable, str]) -> None:
    _, edit, dataset = corruption
    datasets = good_scan()
    edit(datasets)
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    raw = folder / "scan.h5"
    with h5py.File(raw, "w") as f:
        for key, value in datasets.items():
            f[key] = value
    before = digest(raw)
    settings_file = folder / "convert.json"
    settings_file.write_text(json.dumps({"rows": None, "views": None, "flat_view": None}))
    code, stderr = run_cli("convert", "--settings", str(settings_file), "--raw", str(raw), "--out",
                           str(folder / "out.h5"))
    assert_one_line_error(code, stderr, str(raw), dataset)
    assert digest(raw) == before and not (folder / "out.h5").exists()


@EXAMPLES
@given(cut=st.floats(0.0, 0.95))
def test_empty_and_truncated_files(tmp_path: Path, cut: float) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    whole = folder / "whole.h5"
    with h5py.File(whole, "w") as f:
        for key, value in good_scan().items():
            f[key] = value
    raw = folder / "cut.h5"
    raw.write_bytes(whole.read_bytes()[: int(cut * whole.stat().st_size)])
    settings_file = folder / "convert.json"
    settings_file.write_text(json.dumps({"rows": None, "views": None, "flat_view": None}))
    code, stderr = run_cli("convert", "--settings", str(settings_file), "--raw", str(raw), "--out",
                           str(folder / "out.h5"))
    assert_one_line_error(code, stderr, str(raw))


# --- TIFF folders -----------------------------------------------------------------------

def write_tiff_folder(folder: Path) -> None:
    scan = good_scan()
    for name, key in (("projections", "/exchange/data"), ("flats", "/exchange/data_white"),
                      ("darks", "/exchange/data_dark")):
        (folder / name).mkdir(parents=True)
        for i, frame in enumerate(scan[key]):
            tifffile.imwrite(folder / name / f"{name}_{i:04d}.tif", frame.astype(np.uint16))
    (folder / "angles.csv").write_text(
        "theta_deg,time_s\n" + "".join(f"{a},{t}\n" for a, t in zip(scan["/exchange/theta"], scan["/exchange/time"])))


def tiff_corruptions() -> st.SearchStrategy[tuple[Callable[[Path], None], str]]:
    """(edit of the folder, what the message must name)."""
    folders = st.sampled_from(["projections", "flats", "darks"])

    def remove_frame(name: str, i: int) -> Callable[[Path], None]:
        return lambda root: sorted((root / name).iterdir())[i].unlink()

    def reshape_frame(name: str, i: int) -> Callable[[Path], None]:
        return lambda root: tifffile.imwrite(sorted((root / name).iterdir())[i], np.ones((3, 5), np.uint16))

    def empty_frame(name: str, i: int) -> Callable[[Path], None]:
        return lambda root: sorted((root / name).iterdir())[i].write_bytes(b"")

    def nan_frame(name: str, i: int) -> Callable[[Path], None]:
        return lambda root: tifffile.imwrite(sorted((root / name).iterdir())[i], np.full((ROWS, COLS), np.nan, np.float32))

    def angles(text: str) -> Callable[[Path], None]:
        return lambda root: (root / "angles.csv").write_text(text)

    frame = st.tuples(folders, st.just(1))  # an interior frame: every folder has 3 or more
    return st.one_of(
        frame.map(lambda a: (remove_frame(*a), a[0])),
        frame.map(lambda a: (reshape_frame(*a), a[0])),
        frame.map(lambda a: (empty_frame(*a), a[0])),
        frame.map(lambda a: (nan_frame(*a), a[0])),
        st.just((angles("theta_deg\n" + "x\n" * VIEWS), "angles.csv")),
        st.just((angles("angle\n" + "1\n" * VIEWS), "angles.csv")),
        st.integers(1, VIEWS - 1).map(lambda n: (angles("theta_deg\n" + "".join(f"{i}\n" for i in range(n))),
                                                 "angles.csv")),
        st.just((lambda root: (root / "angles.csv").unlink(), "angles.yaml")),
        st.just((lambda root: shutil.rmtree(root / "darks"), "darks")),
    )


@EXAMPLES
@given(corruption=tiff_corruptions())
def test_malformed_tiff_folders(tmp_path: Path, corruption: tuple[Callable[[Path], None], str]) -> None:
    edit, name = corruption
    folder = Path(tempfile.mkdtemp(dir=tmp_path)) / "scan"
    write_tiff_folder(folder)
    edit(folder)
    before = digest(folder)
    settings_file = folder.parent / "convert.json"
    settings_file.write_text(json.dumps({"rows": None, "views": None, "flat_view": None}))
    code, stderr = run_cli("convert", "--settings", str(settings_file), "--raw", str(folder), "--out",
                           str(folder.parent / "out.h5"))
    assert_one_line_error(code, stderr, str(folder), name)
    assert digest(folder) == before


def test_a_good_tiff_folder_converts(tmp_path: Path) -> None:
    """The generator's baseline is valid: each failure above comes from its corruption."""
    write_tiff_folder(tmp_path / "scan")
    settings_file = tmp_path / "convert.json"
    settings_file.write_text(json.dumps({"rows": None, "views": None, "flat_view": None}))
    assert run_cli("convert", "--settings", str(settings_file), "--raw", str(tmp_path / "scan"), "--out",
                   str(tmp_path / "out.h5")) == (0, "")


def test_a_good_data_exchange_file_converts(tmp_path: Path) -> None:
    raw = tmp_path / "scan.h5"
    with h5py.File(raw, "w") as f:
        for key, value in good_scan().items():
            f[key] = value
    settings_file = tmp_path / "convert.json"
    settings_file.write_text(json.dumps({"rows": None, "views": None, "flat_view": None}))
    code, _ = run_cli("convert", "--settings", str(settings_file), "--raw", str(raw), "--out", str(tmp_path / "o.h5"))
    assert code == 0
