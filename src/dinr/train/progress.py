"""Periodic progress lines of a training run: step, loss, rays/s and ETA."""

from __future__ import annotations

import math
import time


class Progress:
    """Rate and ETA of steps ``start`` .. ``total``, ``rays_per_step`` rays each;
    ``bound``: ``total`` is a cap the run may stop before (the ETA is an upper bound)."""

    def __init__(self, total: int, start: int, rays_per_step: int, bound: bool = False) -> None:
        self.total, self.start, self.rays_per_step, self.bound = total, start, rays_per_step, bound
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the first step of this process."""
        return time.perf_counter() - self.t0

    def line(self, step: int, loss: float, lr: float) -> tuple[str, float]:
        """The line for the end of ``step`` (0-based) and the rays/s so far."""
        done = step + 1 - self.start
        elapsed = time.perf_counter() - self.t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - step - 1) / rate if rate > 0 else math.inf
        rays = rate * self.rays_per_step
        text = (f"step {step + 1}/{self.total} loss {loss:.4e} lr {lr:.2e} "
                f"{rays:,.0f} rays/s elapsed {elapsed:.0f}s ETA {'<= ' if self.bound else ''}{eta:.0f}s")
        return text, rays
