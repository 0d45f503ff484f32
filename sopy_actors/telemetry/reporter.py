"""MetricsReporter: counter and histogram deltas from any sopy actor to the Monitor, in batches.

Create one per actor process (in `__init__`) and call `count()` / `observe()` anywhere: they
only add to in-memory dicts under a lock (about a microsecond) and never wait for the Monitor.
A daemon thread sends what accumulated every `interval` seconds as one numbered batch.

- Monitor down or restarting: deltas keep accumulating here, aggregated by series, so memory is
  bounded by the number of series (at most `max_series`; new series past that are dropped and
  counted in `dropped`). The unacknowledged batch is sent again with the same number when its
  call fails; the Monitor applies each number once, so nothing is lost or counted twice.
- No Monitor at all (`init(monitoring=False)`): deltas are discarded; the reporter looks for
  the Monitor again every 10 s.
- The reporter's process dies: at most its last `interval` of deltas is lost.
A reporter created in a restarted actor counts one `sopy_actor_restarts_total{kind}`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import warnings
from bisect import bisect_left
from collections import deque
from typing import Any

import ray

from sopy_actors.monitoring.names import ACTOR_RESTARTS, AGENT_CALL_DURATION, HANDLER_DURATION, Family

__all__ = ["MONITOR_ACTOR", "MetricsReporter", "actor_restarted"]

logger = logging.getLogger(__name__)

MONITOR_ACTOR = "sopy-monitor"
_LOOKUP_EVERY = 10.0
_SAMPLED = (HANDLER_DURATION.name, AGENT_CALL_DURATION.name)


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
        kind: what reports (host, procedure, store, agent ...): the `kind` label of restarts.
        interval: seconds between batches.
        max_series: distinct series held while the Monitor is unreachable.
    """

    def __init__(self, namespace: str, *, kind: str, interval: float = 1.0, max_series: int = 10_000) -> None:
        self.namespace = namespace
        self.kind = kind
        self.interval = interval
        self.max_series = max_series
        self.dropped = 0
        self._id = uuid.uuid4().hex
        self._seq = 0
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._counters: dict[tuple[Family, tuple[str, ...]], float] = {}
        self._histograms: dict[tuple[Family, tuple[str, ...]], list[Any]] = {}
        self._samples: deque[float] = deque(maxlen=256)
        self._monitor: Any = None
        self._looked_up = 0.0
        self._unacked: tuple[dict[str, Any], Any] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sopy-metrics-{kind}", daemon=True)
        self._thread.start()

    # -- recording (any thread, never blocks on the Monitor) -------------------------------

    def count(self, family: Family, labels: tuple[str, ...] = (), value: float = 1.0) -> None:
        """Add `value` to a counter series (label values in `family.labels` order)."""
        key = (family, labels)
        with self._lock:
            if key in self._counters:
                self._counters[key] += value
            elif self._room():
                self._counters[key] = value

    def observe(self, family: Family, labels: tuple[str, ...], seconds: float) -> None:
        """Record one observation of a histogram series (handler and agent durations also feed
        HealthCheck `response_times`)."""
        key = (family, labels)
        with self._lock:
            current = self._histograms.get(key)
            if current is None:
                if not self._room():
                    return
                current = self._histograms[key] = [[0] * (len(family.buckets) + 1), 0.0, 0]
            current[0][bisect_left(family.buckets, seconds)] += 1
            current[1] += seconds
            current[2] += 1
            if family.name in _SAMPLED:
                self._samples.append(seconds)

    def _room(self) -> bool:
        if len(self._counters) + len(self._histograms) < self.max_series:
            return True
        self.dropped += 1
        return False

    # -- sending (the reporter thread) -----------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Send what accumulated and wait for the Monitor to apply it; False if it did not in time.

        For tests and shutdown; actors need not call it.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._send_once(wait=max(0.0, deadline - time.monotonic())) and self._unacked is None and self._empty():
                return True
        return False

    def close(self) -> None:
        """Stop the thread after a last flush attempt."""
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _empty(self) -> bool:
        with self._lock:
            return not self._counters and not self._histograms

    def _run(self) -> None:
        self._count_restart()
        while not self._stop.wait(self.interval):
            self._send_logged()
        self._send_logged()

    def _send_logged(self) -> None:
        try:
            self._send_once(wait=0.0)
        except Exception:  # noqa: BLE001 - metrics must never take the actor down
            logger.exception("kind=<%s> | sending metrics failed", self.kind)

    def _count_restart(self) -> None:
        try:
            if actor_restarted():
                self.count(ACTOR_RESTARTS, (self.kind,))
        except Exception:  # noqa: BLE001 - the GCS may be briefly unreachable; a restart goes uncounted
            logger.warning("kind=<%s> | could not tell whether this actor restarted", self.kind)

    def _lookup(self) -> Any:
        if self._monitor is None and time.monotonic() - self._looked_up >= _LOOKUP_EVERY:
            self._looked_up = time.monotonic()
            try:
                self._monitor = ray.get_actor(MONITOR_ACTOR, namespace=self.namespace)
            except ValueError:
                self._monitor = None
        return self._monitor

    def _send_once(self, *, wait: float) -> bool:
        """One step: settle the unacknowledged batch, else send the next. True if no error."""
        with self._send_lock:
            return self._step(wait)

    def _step(self, wait: float) -> bool:
        monitor = self._lookup()
        if monitor is None:
            self._take()  # no Monitor in this namespace: monitoring is off
            return True
        if self._unacked is not None:
            batch, ref = self._unacked
            ready, _ = ray.wait([ref], timeout=wait)
            if not ready:
                return True
            try:
                # The reply is ready; read it without ray.get, which warns in async actors even
                # off their event loop (this is the reporter's own thread).
                ref.future().result()
            except ray.exceptions.RayError as error:
                logger.warning("kind=<%s>, seq=<%d> | Monitor did not take the batch (%s); resending", self.kind, batch["seq"], type(error).__name__)
                if isinstance(error, ray.exceptions.ActorDiedError):
                    self._monitor, self._looked_up = None, 0.0
                    monitor = self._lookup()
                if monitor is not None:
                    self._unacked = (batch, monitor.report.remote(batch))
                return False
            self._unacked = None
        batch = self._take()
        if batch is not None:
            self._unacked = (batch, monitor.report.remote(batch))
        return True

    def _take(self) -> dict[str, Any] | None:
        with self._lock:
            if not self._counters and not self._histograms:
                return None
            counters, self._counters = self._counters, {}
            histograms, self._histograms = self._histograms, {}
            samples = list(self._samples)
            self._samples.clear()
        self._seq += 1
        return {
            "reporter": self._id,
            "seq": self._seq,
            "kind": self.kind,
            "counters": [[f.name, list(labels), value] for (f, labels), value in counters.items()],
            "histograms": [[f.name, list(labels), h[0], h[1], h[2]] for (f, labels), h in histograms.items()],
            "samples": samples,
        }
