"""Node readings: memory and CPU of the machine (or container) a process runs on."""

from __future__ import annotations

from pathlib import Path

import psutil
import ray

__all__ = ["NodeProbeActor", "read_node", "short_node_id"]

_CGROUP = Path("/sys/fs/cgroup")


def _cgroup_memory() -> tuple[int, int] | None:
    """(used, limit) of a cgroup v2 memory limit, if this process lives under one."""
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int((_CGROUP / "memory.current").read_text())
        inactive = 0
        for line in (_CGROUP / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "inactive_file":
                inactive = int(value)
        return max(used - inactive, 0), int(limit)
    except (OSError, ValueError):
        return None


def read_node() -> dict[str, float | int]:
    """Memory in use and total (bytes) and the CPU busy ratio since the previous call.

    Under a cgroup v2 memory limit (a container) the limit and its usage count, as Ray's own
    memory monitor does; otherwise total minus available memory of the machine.
    """
    memory = psutil.virtual_memory()
    used, total = memory.total - memory.available, memory.total
    limited = _cgroup_memory()
    if limited is not None and limited[1] < total:
        used, total = limited
    return {"memory_used_bytes": used, "memory_total_bytes": total, "cpu_usage": psutil.cpu_percent(None) / 100.0}


def short_node_id(node_id: str) -> str:
    """The `node` label: the first 12 hex digits of a Ray node id."""
    return node_id[:12]


@ray.remote(num_cpus=0)
class NodeProbeActor:
    """Reads its node for the Monitor; one per non-head node, owned by (and dying with) the Monitor."""

    def read(self) -> dict[str, float | int]:
        return read_node()
