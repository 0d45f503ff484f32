"""Durable timers: fire once, also across a host crash and when they fell due during downtime."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
import ray

from sopy_actors.errors import InputError
from sopy_actors.runtime.handle import SOPHandle
from tests.support import ledger

pytestmark = pytest.mark.usefixtures("runtime")


def _entry(index: int) -> ledger.EntryAdded:
    return ledger.EntryAdded(payload=ledger.EntryData(sender="timer", index=index))


def _wait_for_version(handle: SOPHandle, version: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while handle.status().version < version:
        assert time.monotonic() < deadline, f"still at version {handle.status().version}"
        time.sleep(0.1)


def test_a_scheduled_event_is_delivered_once_when_due() -> None:
    handle = ledger.make_sop(10).start()
    event = _entry(0)
    started = time.time()
    timer_id = handle.schedule(event, after=1.0)
    assert handle.schedule(event, after=1.0) == timer_id  # the same event again: no second timer
    _wait_for_version(handle, 1)
    assert time.time() - started >= 0.9
    time.sleep(1.5)
    assert [e.event_id for e in handle.history()] == [event.id]


def test_a_timer_pending_across_a_host_crash_fires_once(runtime: Any) -> None:
    handle = ledger.make_sop(10).start(placement="dedicated")
    handle.schedule(_entry(1), after=3.0)
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    os.kill(ray.get(host.statistics.remote())["pid"], signal.SIGKILL)  # Ray restarts the host
    _wait_for_version(handle, 1, timeout=120)
    time.sleep(2.0)
    assert handle.state().entries == {"timer": [1]}
    assert handle.status().version == 1


def test_a_timer_due_while_its_host_was_down_fires_when_the_host_starts(runtime: Any) -> None:
    handle = ledger.make_sop(10).start(placement="dedicated")
    handle.schedule(_entry(2), after=1.0)
    ray.kill(ray.get_actor(handle.host, namespace=runtime.namespace), no_restart=True)
    time.sleep(2.5)  # due while no host runs
    ray.get(ray.get_actor("sopy-host-0", namespace=runtime.namespace).create_host.remote(handle.host))
    _wait_for_version(handle, 1, timeout=120)
    assert handle.state().entries == {"timer": [2]}


def test_schedule_takes_exactly_one_finite_time() -> None:
    handle = ledger.make_sop(10).start()
    with pytest.raises(InputError, match="exactly one of at= and after="):
        handle.schedule(_entry(3))
    with pytest.raises(InputError, match="exactly one"):
        handle.schedule(_entry(3), at=time.time(), after=1)
    with pytest.raises(InputError, match="finite"):
        handle.schedule(_entry(3), after=float("inf"))
    assert handle.status().version == 0
