"""The Prometheus endpoint: `prometheus_client` serving the Monitor's totals and gauges."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from sopy_actors.telemetry.names import FAMILIES, Family

__all__ = ["Snapshot", "TotalsCollector", "serve"]

Snapshot = dict[str, dict[tuple[str, ...], Any]]
"""family name -> label values -> value (counter/gauge: float; histogram: [buckets, sum, count])"""


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(float(value))


def _metric(family: Family, series: dict[tuple[str, ...], Any]) -> Metric:
    labels = list(family.labels)
    if family.kind == "counter":
        counter = CounterMetricFamily(family.name, family.help, labels=labels)
        for values, total in sorted(series.items()):
            counter.add_metric(list(values), total)
        return counter
    if family.kind == "gauge":
        gauge = GaugeMetricFamily(family.name, family.help, labels=labels)
        for values, value in sorted(series.items()):
            gauge.add_metric(list(values), value)
        return gauge
    histogram = HistogramMetricFamily(family.name, family.help, labels=labels)
    bounds = [*family.buckets, float("inf")]
    for values, (buckets, total, _count) in sorted(series.items()):
        cumulative, running = [], 0
        for bound, count in zip(bounds, buckets, strict=True):
            running += count
            cumulative.append((_bound(bound), running))
        histogram.add_metric(list(values), cumulative, total)
    return histogram


class TotalsCollector(Collector):
    """Yields every family of `names.FAMILIES`, each with the series `snapshot()` returns."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        data = self._snapshot()
        for family in FAMILIES:
            yield _metric(family, data.get(family.name, {}))


def serve(collector: Collector, *, port: int, host: str) -> tuple[Any, int]:
    """Serve `/metrics` on `host:port` from a daemon thread; returns (server, bound port).

    Raises:
        OSError: the port is taken.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server, int(server.server_port)
