"""The Monitor actor: one per cluster, on the head node; metrics in, `/metrics` and HealthChecks out.

A threaded Ray actor whose state lives on one private asyncio loop (a thread): Ray's threads
hand each call to that loop, and `/metrics` (prometheus_client's server thread) reads a
snapshot under a lock. What it does:

- applies reporters' numbered delta batches to the totals and saves them (SQLite next to the
  Store's file) before acknowledging: after a restart the totals load back, so counters never
  go backwards and a batch resent after a crash is not counted twice;
- samples every `sample_every` s: each node's memory and CPU (itself on the head, a tiny
  `NodeProbeActor` on every other node), the hosts' SOP instances and queues, error and
  rejection ratios over a sliding window, built-in predictors' risk;
- reads the circuit breakers' states from the breaker service (`sopy_actors.agents.breakers`,
  looked up by name; absent until an agent with a breaker is called) for
  `sopy_circuit_state{target}` and the HealthCheck `circuits`;
- runs registered dependency probes, each in a runner process of its own with its timeout
  (`probe_runner`): a probe that hangs or ends its process never stops the loop or the
  Monitor; one whose runner dies `CRASH_LIMIT` checks in a row is disabled (and saved so);
- sends `HealthCheck` events to subscribed SOPs.
Windows, samples and node readings are in memory only: rebuilt from the next reports.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any, TypeVar

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sopy_actors.agents.breakers import BREAKER_ACTOR
from sopy_actors.errors import RecoveryExhausted, SOPFailed, SopyError, UnknownSOP
from sopy_actors.monitoring.exporter import Snapshot, TotalsCollector, serve
from sopy_actors.monitoring.health import DependencyStatus, HealthCheck, HealthMetrics
from sopy_actors.monitoring.nodes import NodeProbeActor, read_node, short_node_id
from sopy_actors.monitoring.predictors import (
    RISK_LEVELS,
    Predictor,
    dependency_failure,
    error_rate_increase,
    performance_degradation,
    resource_exhaustion,
)
from sopy_actors.monitoring.probe_runner import ProbeRunner
from sopy_actors.monitoring.probes import ProbeSpec, ProbeState
from sopy_actors.monitoring.totals import Batch, MonitorDB, Series
from sopy_actors.recovery.breaker import CIRCUIT_STATE_CODES, CircuitStateName
from sopy_actors.runtime.options import create_actor
from sopy_actors.runtime.rayutil import alive_nodes
from sopy_actors.telemetry import names
from sopy_actors.telemetry.reporter import actor_restarted

__all__ = ["DEFAULT_METRICS_PORT", "MonitorActor"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_METRICS_PORT = 9464
_WINDOW = 60.0
_BASELINE = 600.0
_RESPONSE_TIMES = 50
_CALL_TIMEOUT = 5.0
_HOST_PREFIX = "sopy-host-"
_BREAKERS_LOOKUP_EVERY = 5.0
_PREDICTORS: dict[str, Predictor] = {
    "resource_exhaustion": resource_exhaustion,
    "performance_degradation": performance_degradation,
    "error_rate_increase": error_rate_increase,
    "dependency_failure": dependency_failure,
}


@ray.remote
class MonitorActor:
    """See the module docstring. Every method is a thin hop onto the Monitor's own loop.

    Args:
        namespace: the sopy_actors namespace.
        db_path: the Monitor's SQLite file (on the head node, next to the Store's).
        port: `/metrics` port; 0 = any free port; None = 9464, or any free port if that is
            taken. The bound port is saved and bound again after a restart.
        host: the address `/metrics` binds to.
        sample_every: seconds between health samples.
    """

    def __init__(
        self, namespace: str, db_path: str, port: int | None, host: str, sample_every: float = 1.0
    ) -> None:
        self._core = _MonitorCore(namespace, db_path, port, host, sample_every)

    def report(self, batch: dict[str, Any]) -> bool:
        """Apply one reporter batch; False if it was applied before (a resend)."""
        return self._core.call(self._core.report(batch))

    def subscribe(self, sop_id: str, host: str, name: str, every: float, memory_budget: int | None = None) -> None:
        """Send `HealthCheck` to an SOP every `every` seconds until it finishes."""
        subscription = {"host": host, "name": name, "every": every, "memory_budget": memory_budget}
        self._core.call(self._core.subscribe(sop_id, subscription))

    def register_probe(self, spec: ProbeSpec) -> None:
        """Run a dependency probe every `spec.every` seconds in a runner process of its own
        (replaces one of the same name, a disabled one too)."""
        self._core.call(self._core.register_probe(spec))

    def unregister_probe(self, name: str) -> None:
        """Stop a probe, and its runner even in the middle of a check, and forget its status."""
        self._core.call(self._core.unregister_probe(name))

    def health(self, memory_budget: int | None = None) -> dict[str, Any]:
        """The HealthCheck payload the Monitor would send now."""
        return self._core.call(self._core.health(memory_budget))

    def endpoint(self) -> dict[str, Any]:
        """Where `/metrics` is served: host, port, pid and Ray node id of this process."""
        return self._core.endpoint()

    def subscriptions(self) -> list[str]:
        """Ids of the SOPs receiving HealthChecks."""
        return self._core.call(self._core.subscription_ids())


class _MonitorCore:
    def __init__(self, namespace: str, db_path: str, port: int | None, host: str, sample_every: float) -> None:
        self.namespace = namespace
        self.sample_every = sample_every
        self.db = MonitorDB(db_path)
        self.totals = self.db.load()
        self.gauges: dict[str, dict[tuple[str, ...], float]] = {}
        self.lock = threading.Lock()
        self.window: deque[tuple[float, float, float, float]] = deque()
        self.samples: deque[float] = deque(maxlen=_RESPONSE_TIMES)
        self.nodes: dict[str, dict[str, Any]] = {}
        self.node_probes: dict[str, Any] = {}
        self.hosts: dict[str, Any] = {}
        self.breakers: Any = None
        self.breakers_looked_up = 0.0
        self.queued = 0
        self.subs: dict[str, dict[str, Any]] = self.db.rows("subscriptions")
        self.probes = self._load_probes()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.node_id = ray.get_runtime_context().get_node_id()
        restarted = actor_restarted()
        if restarted:
            self._save({self.totals.add(names.ACTOR_RESTARTS, ("monitor",))})
        self.host = host
        self.server, self.port = self._bind(port, host, restarted)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="sopy-monitor-loop", daemon=True).start()
        self.call(self._start_tasks())
        logger.info("host=<%s>, port=<%d>, subscriptions=<%d> | monitor ready", host, self.port, len(self.subs))

    def _bind(self, requested: int | None, host: str, restarted: bool) -> tuple[Any, int]:
        """Bind `/metrics`: a restarted Monitor takes its saved port again; a new one the
        requested port (None: 9464). When the saved or default port is taken, any free port."""
        saved = self.db.setting("metrics_port")
        port = int(saved) if restarted and saved else DEFAULT_METRICS_PORT if requested is None else requested
        try:
            server, bound = serve(TotalsCollector(self.snapshot), port=port, host=host)
        except OSError:
            if port == 0 or (requested and not restarted):
                raise
            logger.warning("port=<%d> | metrics port is taken; serving on another", port)
            server, bound = serve(TotalsCollector(self.snapshot), port=0, host=host)
        self.db.set_setting("metrics_port", str(bound))
        return server, bound

    # -- plumbing ---------------------------------------------------------------------------

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def _spawn(self, key: str, coroutine: Coroutine[Any, Any, None]) -> None:
        old = self.tasks.pop(key, None)
        if old is not None:
            old.cancel()
        task = self.loop.create_task(coroutine)
        self.tasks[key] = task
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("monitor task failed", exc_info=task.exception())

    async def _start_tasks(self) -> None:
        self._spawn("sampler", self._sample_forever())
        for sop_id in self.subs:
            self._spawn(f"sop:{sop_id}", self._deliver_forever(sop_id))
        for name, probe in self.probes.items():
            if not probe.disabled:
                self._spawn(f"probe:{name}", self._probe_forever(probe))
        self._publish_dependencies()

    def _save(self, changed: set[Series], reporter: str | None = None) -> None:
        self.db.save(self.totals, changed, reporter)

    def endpoint(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "pid": os.getpid(), "node_id": self.node_id}

    def snapshot(self) -> Snapshot:
        """Copy of every series for `/metrics` (called on the HTTP server's thread)."""
        with self.lock:
            data: Snapshot = {}
            for (name, labels), total in self.totals.counters.items():
                data.setdefault(name, {})[labels] = total
            for (name, labels), histogram in self.totals.histograms.items():
                data.setdefault(name, {})[labels] = [list(histogram[0]), histogram[1], histogram[2]]
            for name, series in self.gauges.items():
                data[name] = dict(series)
            return data

    def _set_gauge(self, family: names.Family, series: dict[tuple[str, ...], float]) -> None:
        with self.lock:
            self.gauges[family.name] = series

    # -- reports ----------------------------------------------------------------------------

    async def report(self, wire: dict[str, Any]) -> bool:
        batch = Batch.from_wire(wire)
        with self.lock:
            changed = self.totals.apply(batch)
            if changed is None:
                return False
            changed.add(self.totals.add(names.MONITOR_REPORTS, (batch.kind,)))
        self._save(changed, batch.reporter)
        if batch.skipped:
            logger.warning("reporter=<%s>, skipped=<%d> | series of unknown families skipped", batch.reporter, batch.skipped)
        total = failed = rejected = 0.0
        for family, labels, delta in batch.counters:
            if family is names.EVENTS:
                total += delta
                failed += delta if labels[3] == "failed" else 0
                rejected += delta if labels[3] == "rejected" else 0
        if total:
            self.window.append((time.monotonic(), total, failed, rejected))
        self.samples.extend(batch.samples)
        return True

    def _rates(self, seconds: float) -> tuple[float, float]:
        since = time.monotonic() - seconds
        total = failed = rejected = 0.0
        for at, t, f, r in self.window:
            if at >= since:
                total, failed, rejected = total + t, failed + f, rejected + r
        return (failed / total, rejected / total) if total else (0.0, 0.0)

    # -- health -----------------------------------------------------------------------------

    async def health(self, memory_budget: int | None = None) -> dict[str, Any]:
        error_rate, rejection_rate = self._rates(_WINDOW)
        baseline, _ = self._rates(_BASELINE)
        nodes = {}
        for node, reading in self.nodes.items():
            total = memory_budget or reading["memory_total_bytes"] or 1
            nodes[node] = {
                "memory_usage": reading["memory_used_bytes"] / total,
                "memory_used_bytes": reading["memory_used_bytes"],
                "memory_total_bytes": reading["memory_total_bytes"],
                "cpu_usage": min(max(reading["cpu_usage"], 0.0), 1.0),
                "head": reading["head"],
            }
        metrics = HealthMetrics.model_validate(
            {
                "memory_usage": max((n["memory_usage"] for n in nodes.values()), default=0.0),
                "cpu_usage": max((n["cpu_usage"] for n in nodes.values()), default=0.0),
                "response_times": list(self.samples),
                "error_rate": error_rate,
                "error_rate_baseline": baseline,
                "rejection_rate": rejection_rate,
                "dependencies": self._dependencies(),
                "nodes": nodes,
                "actor_restarts": int(self.totals.total(names.ACTOR_RESTARTS.name)),
                "queued_events": self.queued,
                "circuits": await self._circuits(),
                "sampled_at": time.time(),
            }
        )
        return metrics.model_dump(mode="json")

    async def _sample_forever(self) -> None:
        while True:
            try:
                await self._sample()
            except Exception:
                logger.exception("health sample failed")
            await asyncio.sleep(self.sample_every)

    async def _sample(self) -> None:
        await self._sample_nodes()
        await self._sample_hosts()
        now = time.monotonic()
        while self.window and self.window[0][0] < now - _BASELINE:
            self.window.popleft()
        error_rate, rejection_rate = self._rates(_WINDOW)
        self._set_gauge(names.EVENT_ERROR_RATIO, {(): error_rate})
        self._set_gauge(names.EVENT_REJECTION_RATIO, {(): rejection_rate})
        metrics = await self.health()
        risks: dict[tuple[str, ...], float] = {
            (name,): float(RISK_LEVELS.index(p(metrics))) for name, p in _PREDICTORS.items()
        }
        self._set_gauge(names.HEALTH_RISK, risks)
        self._set_gauge(names.CIRCUIT_STATE, {(t,): float(CIRCUIT_STATE_CODES[s]) for t, s in metrics["circuits"].items()})

    async def _circuits(self) -> dict[str, CircuitStateName]:
        """Every circuit's state now, by target; {} while there is no breaker service."""
        loop = asyncio.get_running_loop()
        if self.breakers is None and time.monotonic() - self.breakers_looked_up >= _BREAKERS_LOOKUP_EVERY:
            self.breakers_looked_up = time.monotonic()
            try:
                self.breakers = await loop.run_in_executor(None, lambda: ray.get_actor(BREAKER_ACTOR, namespace=self.namespace))
            except ValueError:
                return {}
        if self.breakers is None:
            return {}
        try:
            snapshot = await asyncio.wait_for(self.breakers.snapshot.remote(), timeout=_CALL_TIMEOUT)
        except (TimeoutError, ray.exceptions.RayError) as error:
            logger.warning("the breaker service did not answer: %s", type(error).__name__)
            if isinstance(error, ray.exceptions.ActorDiedError):
                self.breakers = None
            return {}
        return {target: circuit["state"] for target, circuit in snapshot.items()}

    async def _sample_nodes(self) -> None:
        loop = asyncio.get_running_loop()
        alive = await loop.run_in_executor(None, alive_nodes)
        readings: dict[str, dict[str, Any]] = {}
        for node in alive:
            node_id = str(node["NodeID"])
            if node_id == self.node_id:
                reading = read_node()
            else:
                probe = self.node_probes.get(node_id)
                if probe is None:
                    strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
                    probe = self.node_probes[node_id] = create_actor(NodeProbeActor, {"scheduling_strategy": strategy})
                try:
                    reading = await asyncio.wait_for(probe.read.remote(), timeout=_CALL_TIMEOUT)
                except (TimeoutError, ray.exceptions.RayError):
                    continue
            readings[short_node_id(node_id)] = {**reading, "head": node_id == self.node_id}
        gone = set(self.node_probes) - {str(n["NodeID"]) for n in alive}
        for node_id in gone:
            self.node_probes.pop(node_id)
        self.nodes = readings
        memory: dict[tuple[str, ...], float] = {
            (n,): r["memory_used_bytes"] / (r["memory_total_bytes"] or 1) for n, r in readings.items()
        }
        self._set_gauge(names.NODE_MEMORY, memory)
        self._set_gauge(names.NODE_CPU, {(n,): r["cpu_usage"] for n, r in readings.items()})

    async def _sample_hosts(self) -> None:
        loop = asyncio.get_running_loop()
        names_now = [n for n in await loop.run_in_executor(None, ray.util.list_named_actors) if n.startswith(_HOST_PREFIX)]
        for gone in set(self.hosts) - set(names_now):
            del self.hosts[gone]
        instances: dict[tuple[str, ...], float] = {}
        queued: dict[tuple[str, ...], float] = {}
        for name in names_now:
            if name not in self.hosts:
                try:
                    self.hosts[name] = ray.get_actor(name, namespace=self.namespace)
                except ValueError:
                    continue
            try:
                stats = await asyncio.wait_for(self.hosts[name].statistics.remote(), timeout=_CALL_TIMEOUT)
            except (TimeoutError, ray.exceptions.RayError):
                continue
            for sop, phases in stats.get("sops", {}).items():
                for phase, count in phases.items():
                    instances[(sop, phase)] = instances.get((sop, phase), 0) + count
            for sop, count in stats.get("queued_by_sop", {}).items():
                queued[(sop,)] = queued.get((sop,), 0) + count
        self.queued = int(sum(queued.values()))
        self._set_gauge(names.SOP_INSTANCES, instances)
        self._set_gauge(names.QUEUED_EVENTS, queued)

    # -- HealthCheck delivery ---------------------------------------------------------------

    async def subscribe(self, sop_id: str, subscription: dict[str, Any]) -> None:
        self.subs[sop_id] = subscription
        self.db.put("subscriptions", sop_id, subscription)
        self._spawn(f"sop:{sop_id}", self._deliver_forever(sop_id))

    async def unsubscribe(self, sop_id: str) -> None:
        self.subs.pop(sop_id, None)
        self.db.put("subscriptions", sop_id, None)
        task = self.tasks.pop(f"sop:{sop_id}", None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def subscription_ids(self) -> list[str]:
        return sorted(self.subs)

    async def _deliver_forever(self, sop_id: str) -> None:
        from sopy_actors.runtime.handle import SOPHandle

        subscription = self.subs[sop_id]
        handle = SOPHandle(sop_id, host=subscription["host"], namespace=self.namespace)
        every = float(subscription["every"])
        while sop_id in self.subs:
            event = HealthCheck(payload=await self.health(subscription.get("memory_budget")), sender="sopy-monitor")
            outcome, finished = "undelivered", False
            try:
                receipt = await asyncio.wait_for(handle.send_async(event), timeout=max(30.0, 3 * every))
                outcome, finished = receipt.outcome.value, receipt.procedure == "End"
            except SopyError as error:
                # Failed, cancelled or unknown SOPs get no more checks; a handler error is the SOP's.
                finished = isinstance(error, SOPFailed | UnknownSOP | RecoveryExhausted)
                outcome = "failed"
                logger.info("sop=<%s> | health check refused: %s", sop_id, type(error).__name__)
            except (TimeoutError, ray.exceptions.RayError) as error:
                logger.warning("sop=<%s> | health check not delivered: %s", sop_id, type(error).__name__)
            with self.lock:
                key = self.totals.add(names.HEALTH_CHECKS, (subscription["name"], outcome))
            self._save({key})
            if finished:
                await self.unsubscribe(sop_id)
                return
            await asyncio.sleep(every)

    # -- dependency probes ------------------------------------------------------------------

    def _load_probes(self) -> dict[str, ProbeState]:
        probes: dict[str, ProbeState] = {}
        for name, row in self.db.rows("probes").items():
            try:
                probes[name] = ProbeState.from_row(row)
            except ValueError as error:  # saved by another version; unregister_probe still deletes it
                logger.error("probe=<%s> | saved probe not loaded: %s", name, error)
        return probes

    async def register_probe(self, spec: ProbeSpec) -> None:
        probe = ProbeState(spec)
        self.probes[spec.name] = probe
        self.db.put("probes", spec.name, probe.row())
        self._spawn(f"probe:{spec.name}", self._probe_forever(probe))
        self._publish_dependencies()

    async def unregister_probe(self, name: str) -> None:
        self.probes.pop(name, None)
        self.db.put("probes", name, None)
        task = self.tasks.pop(f"probe:{name}", None)
        if task is not None:
            task.cancel()  # its runner is stopped as the task ends, even in the middle of a check
        self._publish_dependencies()

    async def _probe_forever(self, probe: ProbeState) -> None:
        runner = ProbeRunner(probe.spec, self.node_id)
        try:
            while True:
                await runner.check(probe)
                self._publish_dependencies()
                if probe.disabled:
                    reason = probe.status.error if probe.status else None
                    logger.error("probe=<%s> | probe disabled: %s", probe.spec.name, reason)
                    self.db.put("probes", probe.spec.name, probe.row())
                    return
                await asyncio.sleep(probe.next_delay())
        finally:
            runner.close()

    def _dependencies(self) -> dict[str, DependencyStatus]:
        return {name: probe.status for name, probe in self.probes.items() if probe.status is not None}

    def _publish_dependencies(self) -> None:
        statuses = self._dependencies()
        self._set_gauge(names.DEPENDENCY_UP, {(n,): float(s.up) for n, s in statuses.items()})
        self._set_gauge(names.DEPENDENCY_LATENCY, {(n,): float(s.latency_seconds or 0.0) for n, s in statuses.items()})
