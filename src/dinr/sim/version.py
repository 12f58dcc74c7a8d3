"""The simulator's code version: a hash of the source files of :mod:`dinr.sim`.

Recorded in a simulated scan's settings and provenance, so a scan made by other
simulator code is made again. Standard library only: the workflow loads this file
by its path to write the same hash into the ``simulate`` settings without importing
the package (its rules run in their own environments).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: The key under which the settings file of ``simulate`` records the version.
VERSION_KEY = "simulator_version"


def simulator_version(package_dir: Path = Path(__file__).resolve().parent) -> str:
    """First 12 hex digits of the SHA-256 of every ``*.py`` file under ``package_dir``
    (the ``dinr/sim`` folder), names and contents, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(path.relative_to(package_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:12]
