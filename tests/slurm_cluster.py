"""A one-node Slurm cluster on localhost, from Debian's packages, for the tests.

``LocalSlurm(folder).start()`` writes a ``slurm.conf`` for this host (no accounting, so
jobs are followed with ``squeue``; ``MinJobAge`` keeps finished jobs visible), starts
``munged``, ``slurmctld`` and ``slurmd`` with their pid files in ``folder``, and waits
until the node is idle; ``stop()`` ends the daemons by those pids. The configuration is
also placed at Slurm's default path (:data:`SYSTEM_CONF`), because the executor plugin
clears ``SLURM_*`` variables (``SLURM_CONF`` too) before its nested ``srun``; that file
is only written where none exists, and removed by ``stop()``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARK = "# written by dinr's tests/slurm_cluster.py; removed when the test cluster stops\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalSlurm:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.conf = folder / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    @staticmethod
    def available() -> bool:
        return all(shutil.which(tool) for tool in (*DAEMONS, "srun", "sbatch", "squeue", "sinfo"))

    @staticmethod
    def site_configured() -> bool:
        """Whether this machine has a Slurm configuration of its own (left untouched)."""
        return SYSTEM_CONF.exists() and not SYSTEM_CONF.read_text().startswith(MARK)

    def _node(self) -> str:
        line = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
        fields = dict(item.split("=", 1) for item in line.split())
        memory = int(fields["RealMemory"]) * 3 // 4
        return f"NodeName={fields['NodeName']} CPUs={fields['CPUs']} RealMemory={memory} State=UNKNOWN"

    def start(self) -> None:
        d = self.folder
        for sub in ("state", "spool", "munge"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "munge").chmod(0o700)
        node = self._node()
        self.conf.write_text(MARK + "\n".join([
            "ClusterName=dinrci",
            f"SlurmctldHost={socket.gethostname().split('.')[0]}(127.0.0.1)",
            "SlurmUser=root",
            "AuthType=auth/munge",
            f"AuthInfo=socket={d}/munge/munge.socket",
            f"StateSaveLocation={d}/state",
            f"SlurmdSpoolDir={d}/spool",
            f"SlurmctldPidFile={d}/slurmctld.pid",
            f"SlurmdPidFile={d}/slurmd.pid",
            f"SlurmctldLogFile={d}/slurmctld.log",
            f"SlurmdLogFile={d}/slurmd.log",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "ReturnToService=2",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "MpiDefault=none",
            "MinJobAge=3600",
            node,
            f"PartitionName=debug Nodes={node.split()[0].split('=')[1]} Default=YES MaxTime=INFINITE State=UP",
        ]) + "\n")
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.conf, SYSTEM_CONF)
        subprocess.run(["munged", "--force", "-S", f"{d}/munge/munge.socket", "--pid-file", f"{d}/munged.pid",
                        "--log-file", f"{d}/munge/munged.log", "--seed-file", f"{d}/munge/seed"], check=True)
        subprocess.run(["slurmctld", "-f", str(self.conf)], check=True, env=self.env)
        subprocess.run(["slurmd", "-f", str(self.conf)], check=True, env=self.env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.env)
            if state.stdout.strip() == "idle":
                return
            time.sleep(1)
        raise RuntimeError(f"the Slurm node never became idle; see {d}/slurmctld.log and {d}/slurmd.log")

    def stop(self) -> None:
        pids = []
        for daemon in reversed(DAEMONS):
            pid_file = self.folder / f"{daemon}.pid"
            if pid_file.exists():
                pid = int(pid_file.read_text().split()[0])
                try:
                    os.kill(pid, signal.SIGTERM)
                    pids.append(pid)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 20
        for pid in pids:
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.2)
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
        if SYSTEM_CONF.exists() and SYSTEM_CONF.read_text().startswith(MARK):
            SYSTEM_CONF.unlink()
