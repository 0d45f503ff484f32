"""The Monitor on the session's cluster: live /metrics, HealthCheck delivery, dependency probes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

import sopy_actors
import sopy_actors.errors
import sopy_actors.monitoring
from sopy_actors.monitoring import FAMILIES
from tests.support import metered
from tests.support.monitoring import (
    have_prometheus,
    loopback_dependency,
    promtool_check,
    samples,
    scrape,
    value,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]


def metrics_url(runtime: Any) -> str:
    return f"http://127.0.0.1:{runtime.metrics_port}/metrics"


def test_init_reports_the_metrics_port_and_status_prints_it(runtime: Any) -> None:
    assert runtime.metrics_port and runtime.metrics_host == "127.0.0.1"
    assert sopy_actors.monitoring.monitor().endpoint().port == runtime.metrics_port
    listening = {
        connection.laddr.ip
        for connection in psutil.net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == runtime.metrics_port
    }
    assert listening == {"127.0.0.1"}  # the socket itself, not only what is reported
    # The session cluster's own address: "auto" may find another cluster running on this machine.
    store_dir = str(Path(runtime.store_path).parent)
    cluster = ("--address", runtime.address, "--namespace", runtime.namespace, "--store-dir", store_dir)
    result = subprocess.run(
        [sys.executable, "-m", "sopy_actors.cli", "status", *cluster],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "RAY_AUTH_MODE": "token"},  # explicit addresses need it (Ray 2.60)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"metrics: port={runtime.metrics_port} http://127.0.0.1:{runtime.metrics_port}/metrics" in result.stdout


@pytest.mark.skipif(not have_prometheus(), reason="promtool not installed (Debian package prometheus; .ci/run installs it)")
def test_live_scrape_passes_promtool_and_lists_every_readme_family(runtime: Any) -> None:
    done = threading.Event()
    scrapes: list[str] = []

    def scrape_while_running() -> None:
        while not done.is_set():
            scrapes.append(scrape(metrics_url(runtime)))

    scraper = threading.Thread(target=scrape_while_running)
    scraper.start()
    try:
        metered.run_metered(20)
    finally:
        done.set()
        scraper.join()
    def counted() -> str | None:
        text = scrape(metrics_url(runtime))
        return text if value(text, "sopy_sops_finished_total", sop="MeteredCollecting") >= 20 else None

    live = wait_for(counted, what="the metered SOPs' counts")
    for text in [*scrapes[-3:], live]:
        checked = promtool_check(text)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    exposed = {m.group(1): m.group(2) for m in re.finditer(r"^# TYPE (\S+) (\S+)$", live, flags=re.M)}
    assert exposed == {f.name: f.kind for f in FAMILIES}
    assert value(live, "sopy_node_memory_ratio") > 0
    assert value(live, "sopy_handler_duration_seconds_count", procedure="MeteredCollecting") >= 60
    assert not any("sop_id" in dict(labels) for _, labels in samples(live))


def test_health_checks_reach_only_monitored_sops(runtime: Any) -> None:
    watched = metered.watch_sop().monitored(every=0.3).start()
    unwatched = metered.watch_sop().start()
    assert watched.sop_id in sopy_actors.monitoring.monitor().subscriptions()
    wait_for(lambda: watched.state().checks >= 3, timeout=60, what="three HealthChecks")
    assert 0 < watched.state().memory_usage <= 1.5
    assert [e.event_type for e in watched.history()][:3] == ["HealthCheck"] * 3
    assert unwatched.state().checks == 0 and unwatched.history() == []
    watched.send(metered.WatchStopped(payload="done"))
    unwatched.send(metered.WatchStopped(payload="done"))
    wait_for(lambda: watched.sop_id not in sopy_actors.monitoring.monitor().subscriptions(), what="unsubscribe after End")


def test_a_failing_dependency_probe_shows_down_in_metrics_and_health_checks(runtime: Any) -> None:
    monitor = sopy_actors.monitoring.monitor()
    with loopback_dependency() as (url, dependency):
        monitor.register_probe("loopback-api", url, every=0.3, timeout=1.0)
        try:
            watched = metered.watch_sop().monitored(every=0.3).start()
            wait_for(lambda: watched.state().dependencies.get("loopback-api") is True, what="probe up in a HealthCheck")
            assert value(scrape(metrics_url(runtime)), "sopy_dependency_up", probe="loopback-api") == 1
            dependency.healthy = False
            wait_for(lambda: watched.state().dependencies.get("loopback-api") is False, what="probe down in a HealthCheck")
            text = scrape(metrics_url(runtime))
            assert value(text, "sopy_dependency_up", probe="loopback-api") == 0
            assert monitor.health().dependencies["loopback-api"].error == "HTTP 503"
            watched.send(metered.WatchStopped(payload="done"))
        finally:
            monitor.unregister_probe("loopback-api")
    assert 'probe="loopback-api"' not in scrape(metrics_url(runtime))


def test_function_probes_must_be_importable() -> None:
    with pytest.raises(sopy_actors.errors.InputError, match="top-level function"):
        sopy_actors.monitoring.monitor().register_probe("inline", lambda: True)
