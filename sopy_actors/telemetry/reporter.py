"""MetricsReporter: counter and histogram deltas from any sopy actor to the Monitor, in batches.

Create one per actor process (in `__init__`) and call `count()` / `observe()` anywhere: they
only add to in-memory dicts under a lock (about a microsecond) and never wait for the Monitor.
A daemon thread sends what accumulated every `interval` seconds as one numbered batch.

- Monitor down or restarting: deltas keep accumulating here, aggregated by series, so memory is
  bounded by the number of series (at most `max_series`; updates to new series past that are
  dropped, and the next batch counts them in `sopy_metric_updates_dropped_total{kind}`). The
  unacknowledged batch is sent again with the same number when its call fails; the Monitor
  applies each number once, so nothing is lost or counted twice.
- No Monitor yet (an actor started before it, as hosts are at `init`) or at all
  (`init(monitoring=False)`): deltas keep accumulating within the same `max_series` bound and
  the reporter looks for the Monitor again every 10 s, so counts made before it started are
  not lost.
- The reporter's process dies: at most its last `interval` of deltas is lost.
A reporter created in a restarted actor counts one `sopy_actor_restarts_total{kind}`.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from typing import Any

import ray

from sopy_actors.telemetry.deltas import MetricDeltas
from sopy_actors.telemetry.names import ACTOR_RESTARTS, Family

__all__ = ["MONITOR_ACTOR", "MetricsReporter", "actor_restarted"]

logger = logging.getLogger(__name__)

MONITOR_ACTOR = "sopy-monitor"
_LOOKUP_EVERY = 10.0


def actor_restarted() -> bool:
    """True in an actor process that Ray restarted (asks the GCS; not for tasks or drivers)."""
    context = ray.get_runtime_context()
    if context.get_actor_id() is None:
        return False
    with warnings.catch_warnings():
        # Ray 2.60's own check reads a deprecated property; the answer is still right.
        warnings.simplefilter("ignore", DeprecationWarning)
        return bool(context.was_current_actor_reconstructed)


class MetricsReporter:
    """Batches metric deltas of one process and sends them to the Monitor from a thread.

    Args:
        namespace: the sopy_actors namespace (the Monitor is `sopy-monitor` in it).
        kind: what reports (host, procedure, store, agent ...): the `kind` label of restarts
            and dropped updates.
        interval: seconds between batches.
        max_series: distinct series held between two batches (they pile up while the Monitor
            is unreachable).
    """

    def __init__(self, namespace: str, *, kind: str, interval: float = 1.0, max_series: int = 10_000) -> None:
        self._namespace = namespace
        self._kind = kind
        self._interval = interval
        self._deltas = MetricDeltas(kind, max_series=max_series)
        self._monitor: Any = None
        self._looked_up = 0.0
        self._unacked: tuple[dict[str, Any], Any] | None = None
        threading.Thread(target=self._run, name=f"sopy-metrics-{kind}", daemon=True).start()

    # -- recording (any thread, never blocks on the Monitor) -------------------------------

    def count(self, family: Family, labels: tuple[str, ...] = (), value: float = 1.0) -> None:
        """Add `value` to a counter series (label values in `family.labels` order)."""
        self._deltas.count(family, labels, value)

    def observe(self, family: Family, labels: tuple[str, ...], seconds: float) -> None:
        """Record one observation of a histogram series (handler and agent durations also feed
        HealthCheck `response_times`)."""
        self._deltas.observe(family, labels, seconds)

    # -- sending (the reporter thread) -----------------------------------------------------

    def _run(self) -> None:
        self._count_restart()
        while True:
            time.sleep(self._interval)
            try:
                self._step()
            except Exception:
                logger.exception("kind=<%s> | sending metrics failed", self._kind)

    def _count_restart(self) -> None:
        try:
            if actor_restarted():
                self.count(ACTOR_RESTARTS, (self._kind,))
        except Exception:
            logger.warning("kind=<%s> | could not tell whether this actor restarted", self._kind)

    def _lookup(self) -> Any:
        if self._monitor is None and time.monotonic() - self._looked_up >= _LOOKUP_EVERY:
            self._looked_up = time.monotonic()
            try:
                self._monitor = ray.get_actor(MONITOR_ACTOR, namespace=self._namespace)
            except ValueError:
                self._monitor = None
        return self._monitor

    def _step(self) -> None:
        """Settle the unacknowledged batch (resend it if its call failed), else send the next."""
        monitor = self._lookup()
        if monitor is None:  # not started yet, or monitoring is off: keep accumulating (bounded)
            return
        if self._unacked is not None:
            sent, ref = self._unacked
            ready, _ = ray.wait([ref], timeout=0)
            if not ready:
                return
            try:
                # The reply is ready; read it without ray.get, which warns in async actors even
                # off their event loop (this is the reporter's own thread).
                ref.future().result()
            except ray.exceptions.RayError as error:
                logger.warning(
                    "kind=<%s>, seq=<%d> | Monitor did not take the batch (%s); resending",
                    self._kind,
                    sent["seq"],
                    type(error).__name__,
                )
                if isinstance(error, ray.exceptions.ActorDiedError):
                    self._monitor, self._looked_up = None, 0.0
                    monitor = self._lookup()
                if monitor is not None:
                    self._unacked = (sent, monitor.report.remote(sent))
                return
            self._unacked = None
        batch = self._deltas.take()
        if batch is not None:
            self._unacked = (batch, monitor.report.remote(batch))
