"""Helper run under mpiexec by the tests: rank 1 perturbs one parameter, then the
ranks compare checksums. Prints each rank's outcome; exits 3 when the guard fired.

Usage: python mpi_drift.py SETTINGS.json
"""

import sys
from pathlib import Path

import torch

from dinr.errors import DriftError
from dinr.geometry.parallel import ParallelGeometry
from dinr.inr.build import build_field, field_spec
from dinr.settings import TrainSettings, load_section
from dinr.train.comm import Communicator

settings_path = Path(sys.argv[1])
comm = Communicator()
settings = load_section(TrainSettings, settings_path)
field = build_field(settings, field_spec(settings, ParallelGeometry(2, 32, 16.0, 32), 6.3, 0.01))
comm.broadcast_module(field)
comm.check_identical(field, 0)
if comm.rank == 1:
    with torch.no_grad():
        field.encoding.tables[0][0, 0] += 1e-6
try:
    comm.check_identical(field, 1)
except DriftError as exc:
    print(f"rank {comm.rank}: {exc}", flush=True)
    sys.exit(3)
print(f"rank {comm.rank}: identical", flush=True)
