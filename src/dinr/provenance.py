"""Provenance attached to every output file: settings, package versions and git commit."""

from __future__ import annotations

import datetime
import json
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import dinr

_PACKAGES = ("numpy", "h5py", "torch", "mpi4py", "astra-toolbox", "scikit-image", "tomopy")


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the source tree this package was imported from, or "unknown"."""
    source_dir = Path(dinr.__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(source_dir), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(source_dir), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Versions of the packages that shape numerical results (absent ones are left out)."""
    versions = {"python": platform.python_version(), "dinr": dinr.__version__}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


#: What every provenance attribute's name starts with.
PROVENANCE_PREFIX = "dinr_"


def is_provenance_key(key: str) -> bool:
    """Whether an attribute is provenance (how a file was made), not data."""
    return key.startswith(PROVENANCE_PREFIX) or key == "provenance"


def provenance(stage: str, settings: Any = None, inputs: dict[str, str] | None = None) -> dict[str, str]:
    """Attributes describing how an output was made, as strings (HDF5- and JSON-friendly).

    ``settings`` is the stage's resolved configuration (JSON-serialisable); ``inputs``
    maps input roles to file paths.
    """
    return {
        "dinr_stage": stage,
        "dinr_settings": json.dumps(settings, sort_keys=True, default=str),
        "dinr_inputs": json.dumps(inputs or {}, sort_keys=True),
        "dinr_versions": json.dumps(package_versions(), sort_keys=True),
        "dinr_git_commit": git_commit(),
        "dinr_command": " ".join(sys.argv),
        "dinr_created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
