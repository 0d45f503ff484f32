"""A real Prometheus scrapes the Monitor; PromQL returns the exact counts a known workflow made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import metered
from tests.support.monitoring import (
    PrometheusServer,
    have_prometheus,
    scrape,
    settled,
    value,
    wait_for,
)

pytestmark = pytest.mark.skipif(
    not have_prometheus(), reason="/usr/bin/prometheus not installed (Debian package prometheus; .ci/run installs it)"
)

SOPS = 7


def test_promql_counts_the_events_transitions_and_rejections_of_a_known_workflow(runtime: Any, tmp_path: Path) -> None:
    prometheus = PrometheusServer(tmp_path, [f"127.0.0.1:{runtime.metrics_port}"])
    try:
        # Earlier tests of the session ran this workflow too: start from the settled totals.
        url = f"http://127.0.0.1:{runtime.metrics_port}/metrics"
        before = settled(lambda: {
            outcome: value(scrape(url), "sopy_events_total", sop="MeteredCollecting", outcome=outcome)
            for outcome in ("stayed", "rejected", "transitioned", "ended")
        })
        metered.run_metered(SOPS)
        expected = {"stayed": 2 * SOPS, "rejected": SOPS, "transitioned": SOPS, "ended": SOPS}
        expected = {k: v + before[k] for k, v in expected.items()}

        def events() -> dict[str, float] | None:
            got = _by(prometheus, 'sum by (outcome) (sopy_events_total{sop="MeteredCollecting"})', "outcome")
            return got if got == expected else None

        wait_for(events, timeout=60, every=0.5, what=f"Prometheus to see {expected}")
        transitions = _by(prometheus, 'sum by (from, to) (sopy_transitions_total{sop="MeteredCollecting"})', "from", "to")
        assert transitions[("MeteredCollecting", "MeteredChecking")] - before.get("transitioned", 0) == SOPS
        assert transitions[("MeteredChecking", "End")] - before.get("ended", 0) == SOPS
        rejections = prometheus.query(
            'sopy_events_total{sop="MeteredCollecting", procedure="MeteredCollecting", event="ItemCounted", outcome="rejected"}'
        )
        assert float(rejections[0]["value"][1]) == expected["rejected"]
        up = prometheus.query('up{job="sopy"}')
        assert up and up[0]["value"][1] == "1"
    finally:
        prometheus.close()


def _by(prometheus: PrometheusServer, promql: str, *labels: str) -> dict[Any, float]:
    result = {}
    for row in prometheus.query(promql):
        key = tuple(row["metric"].get(label, "") for label in labels)
        result[key[0] if len(key) == 1 else key] = float(row["value"][1])
    return result
