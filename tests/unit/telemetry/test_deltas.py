"""A reporter's deltas stay within their series limit, and what the limit drops reaches /metrics."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from sopy_actors.monitoring.exporter import TotalsCollector
from sopy_actors.monitoring.totals import Batch, Totals
from sopy_actors.telemetry.deltas import MetricDeltas
from sopy_actors.telemetry.names import EVENTS, HANDLER_DURATION, METRIC_UPDATES_DROPPED


def _counters(batch: dict[str, Any]) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(name, tuple(labels)): value for name, labels, value in batch["counters"]}


def test_updates_to_series_past_the_limit_are_counted_in_the_next_batch() -> None:
    deltas = MetricDeltas("host", max_series=2)
    deltas.count(EVENTS, ("S", "P", "E", "transitioned"))
    deltas.observe(HANDLER_DURATION, ("P", "E"), 0.002)
    deltas.count(EVENTS, ("S", "P", "E", "transitioned"))  # a known series still counts
    deltas.count(EVENTS, ("S", "P", "E", "rejected"))  # new series, no room: dropped
    deltas.observe(HANDLER_DURATION, ("P", "F"), 0.002)  # dropped

    batch = deltas.take()

    assert batch is not None
    assert _counters(batch) == {
        (EVENTS.name, ("S", "P", "E", "transitioned")): 2.0,
        (METRIC_UPDATES_DROPPED.name, ("host",)): 2,
    }
    assert [row[0] for row in batch["histograms"]] == [HANDLER_DURATION.name]
    assert batch["samples"] == [0.002]


def test_the_dropped_count_is_a_delta_sent_once() -> None:
    deltas = MetricDeltas("agent", max_series=0)
    deltas.count(EVENTS, ("S", "P", "E", "transitioned"))

    first, second = deltas.take(), deltas.take()

    assert first is not None and second is None
    assert _counters(first) == {(METRIC_UPDATES_DROPPED.name, ("agent",)): 1}
    deltas.count(EVENTS, ("S", "P", "E", "transitioned"))
    third = deltas.take()
    assert third is not None and third["seq"] == first["seq"] + 1
    assert _counters(third) == {(METRIC_UPDATES_DROPPED.name, ("agent",)): 1}


def test_nothing_recorded_makes_no_batch() -> None:
    assert MetricDeltas("store", max_series=10).take() is None


def test_the_monitor_applies_the_dropped_count_and_exposes_it_on_metrics() -> None:
    deltas = MetricDeltas("procedure", max_series=1)
    for outcome in ("transitioned", "rejected", "failed", "ignored"):
        deltas.count(EVENTS, ("S", "P", "E", outcome))
    wire = deltas.take()
    assert wire is not None

    batch = Batch.from_wire(wire)
    totals = Totals()
    totals.apply(batch)

    assert batch.skipped == 0
    assert totals.counters[(METRIC_UPDATES_DROPPED.name, ("procedure",))] == 3.0
    snapshot: dict[str, dict[tuple[str, ...], float]] = {}
    for (name, labels), value in totals.counters.items():
        snapshot.setdefault(name, {})[labels] = value
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TotalsCollector(lambda: snapshot))
    exposed = generate_latest(registry).decode()
    assert 'sopy_metric_updates_dropped_total{kind="procedure"} 3.0' in exposed
