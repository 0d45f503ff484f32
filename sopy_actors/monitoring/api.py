"""The Monitor from a driver: create it (init() does), reach it, register dependency probes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ray
from pydantic import BaseModel, ConfigDict

from sopy_actors.errors import InputError, RuntimeUnavailable, TimedOut
from sopy_actors.monitoring.health import HealthMetrics
from sopy_actors.monitoring.monitor_actor import MonitorActor
from sopy_actors.monitoring.probes import DEFAULT_EVERY, DEFAULT_TIMEOUT, ProbeSpec, function_path
from sopy_actors.runtime.engine import current_engine
from sopy_actors.runtime.options import create_actor, ray_options
from sopy_actors.runtime.rayutil import HEAD_RESOURCE, wait
from sopy_actors.telemetry.reporter import MONITOR_ACTOR

__all__ = ["MetricsEndpoint", "Monitor", "monitor", "start_monitor"]

_MONITOR_THREADS = 16


class MetricsEndpoint(BaseModel):
    """Where the Monitor serves `/metrics`."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int
    pid: int
    node_id: str

    @property
    def url(self) -> str:
        """The scrape URL as seen from the head node."""
        return f"http://{self.host}:{self.port}/metrics"


class Monitor:
    """Handle of the namespace's Monitor actor (small and picklable).

    Args:
        namespace: the sopy_actors namespace.
    """

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def __reduce__(self) -> tuple[Any, ...]:
        return (Monitor, (self.namespace,))

    def _actor(self) -> Any:
        try:
            return ray.get_actor(MONITOR_ACTOR, namespace=self.namespace)
        except ValueError as error:
            raise RuntimeUnavailable(
                f"no Monitor in namespace {self.namespace!r} (was init() called with monitoring=False?)"
            ) from error

    def _get(self, ref: Any, timeout: float = 60.0) -> Any:
        return wait(ref, timeout, what="the Monitor")

    def endpoint(self) -> MetricsEndpoint:
        """Where `/metrics` is served."""
        return MetricsEndpoint.model_validate(self._get(self._actor().endpoint.remote()))

    def health(self, *, memory_budget: int | None = None) -> HealthMetrics:
        """The metrics a HealthCheck would carry now (memory relative to `memory_budget` bytes)."""
        return HealthMetrics.model_validate(self._get(self._actor().health.remote(memory_budget)))

    def register_probe(
        self,
        name: str,
        target: str | Callable[[], Any],
        *,
        every: float = DEFAULT_EVERY,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Check an external dependency every `every` seconds; its status appears as
        `sopy_dependency_up{probe=name}` and in HealthCheck `dependencies[name]`.

        Checks run in a process of the probe's own on the head node (a probe runner owned by
        the Monitor), never in the Monitor's. A check that raises, returns False, answers HTTP
        4xx/5xx or runs past `timeout` is down (`error` says why); a runner stuck in a check is
        stopped and replaced, and the next check then waits twice as long for each such loss in
        a row (up to a minute, or `every` if longer). A probe whose runner process dies 3 checks
        in a row (`probes.CRASH_LIMIT`) is disabled: it stays down with an `error` starting
        "disabled:" and is not run again, also after a Monitor restart, until it is registered
        again. Registering a name again replaces that probe.

        Args:
            name: the probe's name (letters, digits, `_.:-`).
            target: an http(s) URL (GET; 2xx/3xx is up) or a top-level function of an importable
                module (up unless it raises or returns False), imported by its `module:qualname`.
            every: seconds between checks (0-86400].
            timeout: seconds a check may take (0-300].

        Raises:
            InputError: a bad name, URL, function, `every` or `timeout`.
        """
        if isinstance(target, str):
            kind, path = "url", target
        elif callable(target):
            kind, path = "function", function_path(target)
        else:
            raise InputError(f"probe target must be a URL or a function, got {type(target).__name__}")
        try:
            spec = ProbeSpec(name=name, kind=kind, target=path, every=every, timeout=timeout)
        except ValueError as error:
            raise InputError(f"Invalid probe {name!r}: {error}") from None
        self._get(self._actor().register_probe.remote(spec))

    def unregister_probe(self, name: str) -> None:
        """Stop a probe (a hanging or disabled one too); its series disappear from `/metrics`."""
        self._get(self._actor().unregister_probe.remote(name))

    def subscriptions(self) -> list[str]:
        """Ids of the SOPs that receive HealthChecks."""
        return list(self._get(self._actor().subscriptions.remote()))


def monitor() -> Monitor:
    """The Monitor of the namespace `sopy_actors.init()` connected to.

    Raises:
        RuntimeUnavailable: init() has not run in this process.
    """
    return Monitor(current_engine().config.namespace)


def start_monitor(
    namespace: str, *, db_path: str, port: int | None, host: str = "127.0.0.1", sample_every: float = 1.0
) -> MetricsEndpoint:
    """Get or create the namespace's Monitor on the head node and return its endpoint.

    Raises:
        InputError: `port` asks for another port than the running Monitor's, or is taken.
    """
    options = ray_options(
        name=MONITOR_ACTOR,
        namespace=namespace,
        max_concurrency=_MONITOR_THREADS,
        resources={HEAD_RESOURCE: 0.001},  # the head, whichever node that is (a replaced head is a new node)
    )
    actor = create_actor(MonitorActor, options, namespace, db_path, port, host, sample_every)
    try:
        endpoint = MetricsEndpoint.model_validate(wait(actor.endpoint.remote(), 120, what="the Monitor"))
    except TimedOut:
        raise
    except RuntimeUnavailable as error:  # the actor died starting: its port is the usual cause
        raise InputError(
            f"the Monitor could not start (is metrics port {port} on {host} taken? pass another "
            f"metrics_port, or 0 for any free port): {error}",
            fields=("metrics_port",),
        ) from error
    if port and endpoint.port != port:
        raise InputError(
            f"metrics_port asks for {port}, but this cluster's Monitor (namespace {namespace!r}) "
            f"serves on {endpoint.port}; pass the same port, or leave metrics_port unset",
            fields=("metrics_port",),
        )
    return endpoint
