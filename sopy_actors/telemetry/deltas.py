"""MetricDeltas: one process's counter and histogram deltas since its last batch (plain Python).

`MetricsReporter` records into one and sends what `take()` returns; this part needs no Ray, so
the series limit and the wire batch are tested on their own. Memory is bounded by `max_series`:
an update to a new series past it is dropped and counted, and the next batch carries that count
as `sopy_metric_updates_dropped_total{kind}`, so a reporter that outgrew its limit shows on
`/metrics`.
"""

from __future__ import annotations

import threading
import uuid
from bisect import bisect_left
from collections import deque
from typing import Any

from sopy_actors.telemetry.names import AGENT_CALL_DURATION, HANDLER_DURATION, METRIC_UPDATES_DROPPED, Family

__all__ = ["MetricDeltas"]

_SAMPLED = (HANDLER_DURATION.name, AGENT_CALL_DURATION.name)


class MetricDeltas:
    """Deltas by series, numbered into wire batches; every method is thread-safe.

    Args:
        kind: what reports (host, procedure, store, agent ...): the `kind` label of the batch.
        max_series: distinct series held between two batches.
    """

    def __init__(self, kind: str, *, max_series: int) -> None:
        self._kind = kind
        self._max_series = max_series
        self._reporter = uuid.uuid4().hex
        self._seq = 0
        self._lock = threading.Lock()
        self._counters: dict[tuple[Family, tuple[str, ...]], float] = {}
        self._histograms: dict[tuple[Family, tuple[str, ...]], list[Any]] = {}
        self._samples: deque[float] = deque(maxlen=256)
        self._dropped = 0

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
        if len(self._counters) + len(self._histograms) < self._max_series:
            return True
        self._dropped += 1
        return False

    def take(self) -> dict[str, Any] | None:
        """Empty the deltas into the next numbered wire batch (`monitoring.totals.Batch` reads it).

        Returns:
            The batch, or None when nothing was recorded or dropped since the last one.
        """
        with self._lock:
            if not self._counters and not self._histograms and not self._dropped:
                return None
            counters, self._counters = self._counters, {}
            histograms, self._histograms = self._histograms, {}
            samples = list(self._samples)
            self._samples.clear()
            dropped, self._dropped = self._dropped, 0
            self._seq += 1
            seq = self._seq
        wire_counters = [[f.name, list(labels), value] for (f, labels), value in counters.items()]
        if dropped:
            # Sent outside the series limit: the count of what the limit dropped must not be dropped.
            wire_counters.append([METRIC_UPDATES_DROPPED.name, [self._kind], dropped])
        return {
            "reporter": self._reporter,
            "seq": seq,
            "kind": self._kind,
            "counters": wire_counters,
            "histograms": [[f.name, list(labels), h[0], h[1], h[2]] for (f, labels), h in histograms.items()],
            "samples": samples,
        }
