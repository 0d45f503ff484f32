"""Where probe checks run: a small actor process per probe, owned by the Monitor.

Probe code (a user function, or an HTTP client that may hang in a DNS lookup) can block for
ever or end its process (`os._exit`, a crashing C extension). It therefore never runs in the
Monitor's process: each probe has a `ProbeRunnerActor` on the Monitor's node, which imports the
probe's function by `module:qualname` and runs one check at a time. The Monitor awaits each
check with the probe's timeout on its own loop, so a hang delays nothing else there; a runner
stuck in a check is stopped (a hung thread cannot be interrupted) and a dead one is replaced
by the next check. Runners are owned by the Monitor and die with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sopy_actors.monitoring.health import DependencyStatus
from sopy_actors.monitoring.probes import ProbeSpec, ProbeState, run_probe
from sopy_actors.runtime.options import create_actor

__all__ = ["ProbeRunner", "ProbeRunnerActor"]

logger = logging.getLogger(__name__)

_START_TIMEOUT = 60.0  # a new worker process takes 0.5 s on an idle node, much longer on a busy one


@ray.remote(num_cpus=0, max_restarts=0)
class ProbeRunnerActor:
    """Runs one probe's checks in a process of its own (sync: one check at a time).

    Args:
        spec: the probe.
    """

    def __init__(self, spec: ProbeSpec) -> None:
        self._spec = spec

    def ready(self) -> int:
        """This runner's pid, once it has started."""
        return os.getpid()

    def run(self) -> DependencyStatus:
        """One check (blocking)."""
        return run_probe(self._spec)


def _summary(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


class ProbeRunner:
    """The Monitor's side of one probe's runner (async, on the Monitor's loop).

    Args:
        spec: the probe.
        node_id: the node the runner starts on (the Monitor's).
    """

    def __init__(self, spec: ProbeSpec, node_id: str) -> None:
        self._spec = spec
        self._node_id = node_id
        self._actor: Any = None

    async def check(self, state: ProbeState) -> None:
        """Run one check, starting a runner first if there is none, and record how it ended.

        Never raises (but `CancelledError`): a hang is `state.timed_out`, a runner that died
        or did not start is `state.crashed`.
        """
        try:
            if self._actor is None:
                await self._start()
        except TimeoutError:
            self._lost(state, f"the probe runner did not start within {_START_TIMEOUT:g} s")
            return
        except ray.exceptions.RayError as error:
            self._lost(state, _summary(error))
            return
        try:
            status = await asyncio.wait_for(self._actor.run.remote(), timeout=self._spec.timeout)
        except TimeoutError:
            self.close()
            state.timed_out(at=time.time())
        except ray.exceptions.RayError as error:
            self._lost(state, _summary(error))
        else:
            state.completed(status)

    async def _start(self) -> None:
        strategy = NodeAffinitySchedulingStrategy(self._node_id, soft=False)
        self._actor = create_actor(ProbeRunnerActor, {"scheduling_strategy": strategy}, self._spec)
        # Wait for the process before timing the check: its start is not the dependency's latency.
        pid = await asyncio.wait_for(self._actor.ready.remote(), timeout=_START_TIMEOUT)
        logger.debug("probe=<%s>, pid=<%d> | probe runner started", self._spec.name, pid)

    def _lost(self, state: ProbeState, error: str) -> None:
        logger.warning("probe=<%s> | probe runner lost: %s", self._spec.name, error)
        self.close()
        state.crashed(error, at=time.time())

    def close(self) -> None:
        """Stop the runner process, if there is one (it may be stuck in a check)."""
        if self._actor is not None:
            ray.kill(self._actor)
            self._actor = None

