"""Stop requests by signal: what a batch system sends before it ends a job.

Slurm sends SIGTERM at a job's time limit (and, with ``--signal=USR1@SECONDS``, SIGUSR1
that many seconds earlier); an interactive user sends SIGINT. Training must not die
mid-step then: the handler only records the request, and the training loop, which
shares the request between ranks with the gradients, writes a checkpoint at the end of
the step and stops every rank at the same step.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: The signals that request a checkpoint-and-stop.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


class Interrupted(Exception):
    """Training stopped on request after writing a checkpoint; rerunning resumes it."""

    def __init__(self, signal_name: str, step: int, checkpoint: str) -> None:
        super().__init__(
            f"stopped by {signal_name} at step {step}; checkpoint written to {checkpoint}; rerun to resume"
        )
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint


class StopRequest:
    """The first stop signal this process received (``None`` until one arrives)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name is None:
            self.signal_name = signal.Signals(signum).name

    @property
    def requested(self) -> bool:
        return self.signal_name is not None


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Record :data:`STOP_SIGNALS` in a :class:`StopRequest` while the block runs, then
    restore the previous handlers."""
    request = StopRequest()
    previous = {sig: signal.signal(sig, request._handle) for sig in STOP_SIGNALS}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
