"""Time and peak memory of each step of a stage, for the metrics files and the benchmarks.

Peak memory is the largest resident set seen while the step ran, sampled every 20 ms from
``/proc/self/statm`` by a background thread (Linux). Elsewhere the process's peak so far
(``ru_maxrss``) is reported instead, which only grows from step to step.

Example:
    >>> meter = StageMeter()
    >>> with meter("sum"):
    ...     _ = sum(range(1000))
    >>> sorted(meter.seconds), meter.peak_mb["sum"] > 0
    (['sum'], True)
"""

from __future__ import annotations

import os
import resource
import threading
import time
from contextlib import contextmanager
from pathlib import Path

_STATM = Path("/proc/self/statm")
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 4096 / 2**20


def _release_free_memory() -> None:
    """Hand memory freed by the step back to the OS (glibc keeps it otherwise, and the next
    step's peak would include it)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def rss_mb() -> float:
    """Resident set size of this process now, in MB (peak so far where /proc is missing)."""
    try:
        return int(_STATM.read_text().split()[1]) * _PAGE_MB
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class StageMeter:
    """Collects ``seconds[step]`` and ``peak_mb[step]`` for ``with meter(step): ...`` blocks."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.seconds: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}

    @contextmanager
    def __call__(self, step: str):
        peak = [rss_mb()]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(self.interval):
                peak[0] = max(peak[0], rss_mb())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = round(self.seconds.get(step, 0.0) + time.perf_counter() - t0, 3)
            done.set()
            sampler.join()
            _release_free_memory()
            peak[0] = max(peak[0], rss_mb())
            self.peak_mb[step] = round(max(self.peak_mb.get(step, 0.0), peak[0]), 1)
