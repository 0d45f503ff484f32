"""SIGKILL the Monitor's process: it restarts on the same port, counters continue, nothing stalls."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import sopy_actors
import sopy_actors.monitoring
from tests.support import metered
from tests.support.monitoring import scrape, settled, value, wait_for


def test_killed_monitor_comes_back_on_its_port_with_its_counters_and_workflows_go_on(runtime: Any) -> None:
    monitor = sopy_actors.monitoring.monitor()
    url = f"http://127.0.0.1:{runtime.metrics_port}/metrics"
    metered.run_metered(3)

    def total() -> float:
        return value(scrape(url), "sopy_events_total", sop="MeteredCollecting")

    settled_total = settled(total)  # every delta so far has reached the Monitor
    before = monitor.endpoint()
    os.kill(before.pid, signal.SIGKILL)

    started = time.monotonic()
    metered.run_metered(4)  # 20 events while the Monitor is down or restarting
    assert time.monotonic() - started < 30, "workflows stalled while the Monitor was down"

    after = wait_for(lambda: (e := monitor.endpoint()).pid != before.pid and e, timeout=120, what="a new Monitor process")
    assert after.port == before.port
    wait_for(lambda: total() >= settled_total, timeout=60, what="the endpoint back on the same port")
    assert total() >= settled_total  # counters did not go back to 0
    wait_for(lambda: total() == settled_total + 20, timeout=60, what=f"the events made during the outage (from {settled_total})")
    assert value(scrape(url), "sopy_actor_restarts_total", kind="monitor") >= 1
