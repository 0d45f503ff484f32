"""Probes that hang or kill their process, on the session's Monitor: it answers, samples and lives on."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

import sopy_actors
import sopy_actors.monitoring
from sopy_actors.monitoring import DependencyStatus
from sopy_actors.monitoring.api import Monitor
from tests.support import probes
from tests.support.monitoring import loopback_dependency, scrape, value, wait_for


@pytest.fixture
def monitor(runtime: Any) -> Iterator[Monitor]:
    """The session's Monitor; every probe a test registered is unregistered afterwards."""
    handle = sopy_actors.monitoring.monitor()
    before = set(handle.health().dependencies)
    yield handle
    for name in set(handle.health().dependencies) - before:
        handle.unregister_probe(name)


def metrics_url(runtime: Any) -> str:
    return f"http://127.0.0.1:{runtime.metrics_port}/metrics"


def status(monitor: Monitor, name: str) -> DependencyStatus | None:
    return monitor.health().dependencies.get(name)


def disabled(monitor: Monitor, name: str) -> DependencyStatus | None:
    found = status(monitor, name)
    return found if found is not None and (found.error or "").startswith("disabled") else None


def unregister_promptly(monitor: Monitor, name: str) -> None:
    started = time.monotonic()
    monitor.unregister_probe(name)
    assert time.monotonic() - started < 5, f"unregister_probe({name!r}) took {time.monotonic() - started:.1f} s"
    assert status(monitor, name) is None


def test_a_hanging_probe_is_down_while_health_and_the_other_gauges_keep_updating(runtime: Any, monitor: Monitor) -> None:
    with loopback_dependency() as (url, dependency):
        monitor.register_probe("hangs", probes.hangs_forever, every=0.2, timeout=0.5)
        monitor.register_probe("steady-api", url, every=0.2)
        hanging = wait_for(lambda: status(monitor, "hangs"), what="the hanging probe's first status")
        assert hanging is not None and not hanging.up and hanging.error == "timed out after 0.5 s"
        wait_for(lambda: (s := status(monitor, "steady-api")) and s.up, what="the URL probe up")

        # Long enough for many timed-out checks (each one used to leave a thread stuck in the Monitor).
        watch_until = time.monotonic() + 20
        while time.monotonic() < watch_until:
            asked = time.monotonic()
            health = monitor.health()
            assert time.monotonic() - asked < 5, "health() stalled while a probe hangs"
            steady, hanging = health.dependencies["steady-api"], health.dependencies["hangs"]
            assert steady.up and steady.checked_at is not None and time.time() - steady.checked_at < 5, steady
            assert not hanging.up and hanging.error == "timed out after 0.5 s", hanging
            time.sleep(1)

        sop = probes.sampled_sop().start()
        wait_for(
            lambda: value(scrape(metrics_url(runtime)), "sopy_sop_instances", sop="ProbeSampled") >= 1,
            timeout=30,
            what="the sampler to see a new SOP while a probe hangs",
        )
        sop.send(probes.SamplingStopped(payload="done"))
        dependency.healthy = False
        wait_for(lambda: (s := status(monitor, "steady-api")) and s.error == "HTTP 503", what="the URL probe down")
        assert value(scrape(metrics_url(runtime)), "sopy_dependency_up", probe="hangs") == 0
        unregister_promptly(monitor, "hangs")
        unregister_promptly(monitor, "steady-api")
    assert 'probe="hangs"' not in scrape(metrics_url(runtime))


def test_a_probe_that_kills_its_process_is_disabled_and_the_monitor_lives_on(runtime: Any, monitor: Monitor) -> None:
    pid = monitor.endpoint().pid
    monitor.register_probe("exits", probes.exits_process, every=0.2)
    found = wait_for(lambda: disabled(monitor, "exits"), timeout=90, what="the crashing probe disabled")
    assert found is not None and not found.up
    assert found.error is not None and "died 3 times in a row" in found.error and "ActorDiedError" in found.error
    assert monitor.endpoint().pid == pid, "the Monitor's process died"
    assert value(scrape(metrics_url(runtime)), "sopy_dependency_up", probe="exits") == 0
    unregister_promptly(monitor, "exits")
    assert 'probe="exits"' not in scrape(metrics_url(runtime))

    # Registering the name again starts afresh (a fixed dependency gets its probe back).
    monitor.register_probe("exits", probes.always_up, every=0.2)
    wait_for(lambda: (s := status(monitor, "exits")) and s.up, what="the re-registered probe up")


def test_after_a_monitor_restart_a_disabled_probe_stays_disabled_and_probes_unregister_promptly(
    runtime: Any, monitor: Monitor
) -> None:
    monitor.register_probe("exits-then-restart", probes.exits_process, every=0.2)
    monitor.register_probe("hangs-then-restart", probes.hangs_forever, every=0.2, timeout=0.5)
    found = wait_for(lambda: disabled(monitor, "exits-then-restart"), timeout=90, what="the crashing probe disabled")

    before = monitor.endpoint()
    os.kill(before.pid, signal.SIGKILL)
    wait_for(lambda: monitor.endpoint().pid != before.pid, timeout=120, what="a new Monitor process")
    restarted = time.time()

    # Loaded from monitor.sqlite3 as it was: the same status, so the probe did not run again.
    assert status(monitor, "exits-then-restart") == found
    wait_for(
        lambda: (s := status(monitor, "hangs-then-restart")) and (s.checked_at or 0) > restarted,
        timeout=60,
        what="the hanging probe running again after the restart",
    )
    unregister_promptly(monitor, "hangs-then-restart")
    unregister_promptly(monitor, "exits-then-restart")
    text = scrape(metrics_url(runtime))
    assert 'probe="hangs-then-restart"' not in text and 'probe="exits-then-restart"' not in text
