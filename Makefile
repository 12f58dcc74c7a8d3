# Set-up and entry points. `make demo` and `make test` install whatever is missing
# into ./.venv first (torch CPU build, MPICH + mpi4py, ASTRA, Snakemake, ...).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
export PATH := $(abspath $(BIN)):$(PATH)
# Some images set PYTHONDONTWRITEBYTECODE=1, and the venv is installed with --no-compile
# (below): every Python process would then compile from source each module it imports
# (torch, JAX, numba, ...), a few seconds per process and per MPI rank. The venv is ours:
# let the first import of a module write its bytecode for the processes after it.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install tk slurm demo cone tooth dataset paper test report lint clean

install: $(VENV)/.installed

# What the parallel-beam pipeline runs on (the demo's): the package and the MBIR peers.
# --no-compile: Python compiles a module when it is first imported; pip would compile
# every module of torch, JAX and the rest up front (install and first imports 375 s ->
# 242 s in fresh venvs here, beside a training).
$(VENV)/.installed-pipeline: pyproject.toml | tk
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e '.[peers]'
	$(BIN)/mpiexec -n 2 $(BIN)/python -c "from mpi4py import MPI; assert MPI.COMM_WORLD.Get_size() == 2, 'mpiexec and mpi4py use different MPIs'"
	touch $@

# Everything: besides, the tests' tools (pytest, Triton's interpreter) and RTK for cone beam.
$(VENV)/.installed: $(VENV)/.installed-pipeline
	$(BIN)/python -m pip install --quiet --no-compile -e '.[test,peers,cone]'
	touch $@

demo: $(VENV)/.installed-pipeline
	$(BIN)/snakemake --cores $(CORES) --printshellcmds
	@cat results/demo/metrics.md

# The cone-beam (lab CT) demo of config/cone.yaml.
cone: install
	$(BIN)/snakemake --cores $(CORES) --printshellcmds \
		results/cone_demo/metrics.json results/cone_demo/figures/slices.png --configfile config/cone.yaml
	@cat results/cone_demo/metrics.md

tooth: $(VENV)/.installed-pipeline
	$(BIN)/snakemake --cores $(CORES) --printshellcmds \
		results/tooth/metrics.json results/tooth/figures/slices.png --configfile config/tooth.yaml
	@cat results/tooth/metrics.md

# One dataset of a config file of your own, without the demo:
#   make dataset DATASET=run_1.v2 CONFIG=config/my_scans.yaml
dataset: install
	@test -n "$(DATASET)" -a -n "$(CONFIG)" || { echo "usage: make dataset DATASET=<name> CONFIG=<config file>"; exit 2; }
	$(BIN)/snakemake --cores $(CORES) --printshellcmds 'results/$(DATASET)/outputs.txt' --configfile '$(CONFIG)'
	@cat 'results/$(DATASET)/metrics.md'

# The paper's figures and tables (results/paper/) from every built-in scan of config/paper.yaml.
paper: install
	$(BIN)/snakemake --cores $(CORES) --printshellcmds paper --configfile config/paper.yaml
	@cat results/paper/table.md

report: $(VENV)/.installed-pipeline
	$(BIN)/snakemake --cores $(CORES) --report results/report.html

# Tk for $(PYTHON): the MBIR peers' mbirjax imports easygui, which needs it (Debian's python3
# has it only with python3-tk; installed here as root with apt, else a clear stop).
tk:
	@if $(PYTHON) -c "import tkinter" 2>/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& [ "$$($(PYTHON) -c 'import sys; print(sys.base_prefix)')" = /usr ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y --no-install-recommends python3-tk >/dev/null \
		|| { apt-get update >/dev/null && apt-get install -y --no-install-recommends python3-tk >/dev/null; }; \
	else echo "$(PYTHON) has no Tk (tkinter), which the MBIR peers need (mbirjax imports easygui):" \
		"install it (Debian/Ubuntu: apt-get install python3-tk) or run make with PYTHON=<a Python with Tk>" >&2; \
		exit 1; fi

# Debian's Slurm for the test that runs the workflow on a one-node cluster (root + apt only).
SLURM_PACKAGES = slurmd slurmctld slurm-client munge
slurm:
	@if command -v slurmctld >/dev/null && command -v munged >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y --no-install-recommends $(SLURM_PACKAGES) >/dev/null \
		|| { apt-get update >/dev/null && apt-get install -y --no-install-recommends $(SLURM_PACKAGES) >/dev/null; }; \
	else echo "Slurm is not installed and cannot be here (needs root and apt-get): its test will be skipped"; fi

test: install slurm
	$(BIN)/python -m pytest

lint: install
	$(BIN)/snakemake --lint

clean:
	rm -rf results logs .snakemake
