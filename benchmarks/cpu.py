"""CPU seconds per process kind of this driver's Ray cluster (psutil), for µs-per-event figures.

The driver that started Ray is the parent of every process of its cluster, so its descendants
are exactly this cluster's (other jobs' Ray clusters on the machine are not counted). A worker
is classified by its process title, `ray::<ActorClass>` (a pooled worker, `ray::IDLE`, again
once it hosts an actor); raylet, GCS and Ray's daemons (its Python processes, the dashboard and
runtime-env agents) count as "ray"; other children of the driver (a profiler it started) are not
counted. Runs in the driver.
"""

from __future__ import annotations

import os
from collections import defaultdict

import psutil

__all__ = ["KINDS", "CPUMeter"]

KINDS = {
    "SOPHostActor": "host",
    "BareBatchHost": "host",
    "ProcedureActor": "procedure",
    "BareBatchWorker": "procedure",
    "StoreActor": "store",
    "BareBatchStore": "store",
    "MonitorActor": "monitor",
}
"""Process kinds by actor class: the runtime's and the bare pattern's (`bare_batched`) alike."""

_RAY_AGENTS = {"DashboardAgent", "RuntimeEnvAgent"}  # Ray's daemons with worker-like titles


def _kind(process: psutil.Process) -> str | None:
    command = process.cmdline() or [process.name()]
    if command[0].startswith("ray::"):
        title = command[0][5:].split(".")[0].split(" ")[0]
        return "ray" if title in _RAY_AGENTS else KINDS.get(title, "other")
    return "ray" if any("ray" in part for part in command) else None


class CPUMeter:
    """CPU seconds (user + system) used by each process kind between `start()` and `stop()`."""

    def __init__(self) -> None:
        self._driver = psutil.Process(os.getpid())
        self._processes: dict[int, tuple[psutil.Process, str | None]] = {}
        self._before: dict[int, float] = {}

    def _seconds(self) -> dict[int, float]:
        seen = {}
        for process in self._driver.children(recursive=True):
            known = self._processes.get(process.pid)
            if known is None or known[1] == "other":  # new, or a worker that may have taken an actor since
                try:
                    self._processes[process.pid] = (process, _kind(process))
                except psutil.Error:
                    continue
            seen[process.pid] = self._processes[process.pid][0]
        seen[self._driver.pid] = self._driver
        seconds = {}
        for pid, process in seen.items():
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            seconds[pid] = times.user + times.system
        return seconds

    def start(self) -> None:
        """Take the starting reading."""
        self._before = self._seconds()

    def stop(self) -> dict[str, float]:
        """CPU seconds by kind since `start()` ("driver", "host", "procedure", "store", "monitor",
        "ray", "other"); a process that started meanwhile counts from zero."""
        used: dict[str, float] = defaultdict(float)
        for pid, seconds in self._seconds().items():
            kind = "driver" if pid == self._driver.pid else self._processes[pid][1]
            if kind is not None:
                used[kind] += seconds - self._before.get(pid, 0.0)
        return dict(used)
