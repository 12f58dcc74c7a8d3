"""Checksums of every array a pipeline run wrote, to prove a refactor changed no number.

Walks a results folder and hashes (SHA-256 of the raw bytes, with dtype and shape) every
HDF5 dataset, every tensor in every ``.pt`` checkpoint (and the loss history) and the
per-method figures of ``metrics.json``; attributes (provenance names
the commit and the command) and figures (PNG/GIF metadata) are left out. ``--compare``
prints the arrays that differ between two runs and exits 1 if any do.

    python bench/output_checksums.py results/ --out before.json
    python bench/output_checksums.py results/ --compare before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch


def _digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    header = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.sha256(header + array.tobytes()).hexdigest()


def _tensors(obj: Any, prefix: str) -> dict[str, str]:
    """Digests of every tensor (and number list) nested in a checkpoint's dicts and lists."""
    found: dict[str, str] = {}
    if isinstance(obj, torch.Tensor):
        found[prefix] = _digest(obj.detach().cpu().numpy())
    elif isinstance(obj, dict):
        for key, value in obj.items():
            found.update(_tensors(value, f"{prefix}/{key}"))
    elif isinstance(obj, (list, tuple)) and obj and all(isinstance(v, (int, float)) for v in obj):
        found[prefix] = _digest(np.asarray(obj))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            found.update(_tensors(value, f"{prefix}/{i}"))
    return found


def checksums(root: Path) -> dict[str, str]:
    """``file:dataset -> digest`` for every array under ``root``."""
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.suffix == ".h5":
            with h5py.File(path, "r") as f:
                f.visititems(lambda key, obj: found.__setitem__(f"{name}:{key}", _digest(obj[()]))
                             if isinstance(obj, h5py.Dataset) else None)
        elif path.suffix == ".pt":
            state = torch.load(path, map_location="cpu", weights_only=False)
            state.pop("provenance", None)
            # history rows are (step, loss, rays/s): the rate is a timing, not a result
            state["history"] = [row[:2] for row in state.get("history", [])]
            found.update({f"{name}:{k}": v for k, v in _tensors(state, "").items()})
        elif path.name == "metrics.json":
            methods = json.loads(path.read_text())["methods"]
            found[f"{name}:methods"] = hashlib.sha256(json.dumps(methods, sort_keys=True).encode()).hexdigest()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="results folder of a run")
    parser.add_argument("--out", type=Path, help="write the checksums here (JSON)")
    parser.add_argument("--compare", type=Path, help="checksums of an earlier run (JSON) to compare with")
    args = parser.parse_args()
    found = checksums(args.root)
    if args.out:
        args.out.write_text(json.dumps(found, indent=1, sort_keys=True))
    print(f"{len(found)} arrays under {args.root}")
    if args.compare:
        before = json.loads(args.compare.read_text())
        differ = sorted(k for k in set(before) | set(found) if before.get(k) != found.get(k))
        for key in differ:
            print(f"differs: {key} ({'missing now' if key not in found else 'new' if key not in before else 'changed'})")
        print(f"{len(set(before) & set(found)) - len([k for k in differ if k in before and k in found])} identical, "
              f"{len(differ)} differ")
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
