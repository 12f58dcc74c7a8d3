"""Helper run under mpiexec by the tests: train, then save every rank's parameters.

Usage: python mpi_train_dump.py SETTINGS.json SINOGRAM.h5 CHECKPOINT.pt OUTDIR
"""

import sys
from pathlib import Path

import numpy as np

from dinr import stages
from dinr.settings import TrainSettings, load_section
from dinr.train.comm import Communicator

settings_path, sinogram, checkpoint, outdir = map(Path, sys.argv[1:5])
comm = Communicator()
model = checkpoint.with_name(checkpoint.stem + "-model.pt")
state = stages.train(load_section(TrainSettings, settings_path), sinogram, checkpoint, model, comm)
params = {k: v.numpy() for k, v in state.field().state_dict().items()}
np.savez(outdir / f"rank{comm.rank}.npz", size=comm.size, step=state.step, **params)
