"""Lazy sections on the actor runtime: not shipped unless touched, stored once, loaded anywhere.

Bytes are counted by the runtime's own counters: a host's `handler_bytes` (JSON it sent to
and received from procedure actors), each SOP on a dedicated host so nothing else counts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from typing import Any

import pytest
import ray

from sopy_actors.errors import HandlerError, SopyError
from tests.support import lazyflow

pytestmark = pytest.mark.usefixtures("runtime")

ROWS = 50_000  # ~1.6 MB of JSON


def _traffic(host: Any) -> int:
    counted = ray.get(host.statistics.remote())["handler_bytes"]
    return int(counted["sent"]) + int(counted["received"])


def test_an_event_that_does_not_touch_the_section_moves_under_one_percent_of_it(runtime: Any) -> None:
    handle = lazyflow.make_sop(ROWS).start(placement="dedicated")
    section = handle.state().rows.stored_bytes
    assert section > 1_500_000
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    handle.send(lazyflow.Noted(payload="warm up"))  # the procedure actor exists now
    before = _traffic(host)
    handle.send(lazyflow.Noted(payload="a note"))
    moved = _traffic(host) - before
    assert 0 < moved < section / 100, (moved, section)
    assert handle.state().notes == ["warm up", "a note"]


def test_a_section_read_or_changed_in_a_handler_is_seen_by_the_driver_and_after_a_host_crash(runtime: Any) -> None:
    handle = lazyflow.make_sop(1000).start(placement="dedicated")
    expected = sum(row.count for row in lazyflow.rows(1000))
    handle.send(lazyflow.Counted(payload=None))
    assert handle.state().total == expected
    handle.send(lazyflow.Restocked(payload=lazyflow.Row(sku="new", count=100)))
    state = handle.state()
    assert not state.rows.loaded and state.rows.value[-1] == lazyflow.Row(sku="new", count=100)

    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    os.kill(ray.get(host.statistics.remote())["pid"], signal.SIGKILL)  # Ray restarts the host
    handle.send(lazyflow.Counted(payload=None), timeout=120)
    assert handle.state().total == expected + 100
    versions = handle.versions()
    assert handle.state(version=versions[1].version).rows.value == lazyflow.rows(1000)  # history keeps each section


def _stored(store_path: str, sop_id: str) -> tuple[int, int]:
    """(blobs in the Store, the SOP's stored version), read from its SQLite file."""
    with contextlib.closing(sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=30)) as db:
        (blobs,) = db.execute("SELECT count(*) FROM blobs").fetchone()
        (version,) = db.execute("SELECT version FROM sops WHERE sop_id = ?", (sop_id,)).fetchone()
    return int(blobs), int(version)


def test_a_changed_section_is_stored_before_its_checkpoint_and_a_crash_between_loses_nothing(runtime: Any) -> None:
    handle = lazyflow.make_sop(100).start(placement="dedicated")
    handle.send(lazyflow.Noted(payload="warm up"))  # the procedure actor exists now
    blobs, version = _stored(runtime.store_path, handle.sop_id)
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    pid = ray.get(host.statistics.remote())["pid"]
    new_row = lazyflow.Row(sku="late", count=5)
    event = lazyflow.RestockedSlowly(payload=new_row)
    sent = handle.submit(event)
    deadline = time.monotonic() + 30
    while not ray.get(host.statistics.remote())["busy"]:  # the host took the event ...
        assert time.monotonic() < deadline, "the event never reached its host"
        time.sleep(0.05)
    time.sleep(0.5)  # ... and its handler (3 s) runs in the procedure actor while the host waits
    os.kill(pid, signal.SIGSTOP)  # the host cannot commit from here on
    try:
        deadline = time.monotonic() + 20
        while _stored(runtime.store_path, handle.sop_id)[0] == blobs:
            assert time.monotonic() < deadline, "the changed section was never stored"
            time.sleep(0.1)
        assert _stored(runtime.store_path, handle.sop_id) == (blobs + 1, version)  # the blob, not yet the checkpoint
    finally:
        os.kill(pid, signal.SIGKILL)  # the crash between the two writes; Ray restarts the host
    try:
        sent.result(timeout=120)
    except SopyError:  # the event died with the host: the sender sends it again
        handle.send(event, timeout=120)
    rows = handle.state().rows.value
    assert rows[-1] == new_row and rows.count(new_row) == 1 and len(rows) == 101
    assert handle.state(version=version).rows.value == lazyflow.rows(100)  # the checkpoint before it, whole


def test_loaders_by_reference_run_in_the_procedure_actor_and_one_that_raises_changes_nothing() -> None:
    handle = lazyflow.make_sop(10).start()
    handle.send(lazyflow.ExtraWanted(payload="tests.support.lazyflow:extra_loader"))
    state = handle.state()
    assert state.notes == ["extra has 3 items"] and state.lazy_loaders == {}
    assert state.extra == ["loaded", "by", "reference"]

    before = handle.status().version
    try:
        receipt = handle.send(lazyflow.ExtraWanted(payload="tests.support.lazyflow:broken_loader"))
    except HandlerError as error:
        assert "warehouse API is down" in str(error)
    else:
        assert receipt.rejected and "warehouse API is down" in str(receipt.prompt)
    after = handle.state()  # the section as it was; the loader that failed is still pending
    assert after.__dict__["extra"] == ["loaded", "by", "reference"] and after.notes == ["extra has 3 items"]
    assert after.lazy_loaders == {"extra": "tests.support.lazyflow:broken_loader"}
    assert after.rows.value == lazyflow.rows(10)
    assert handle.status().version in (before, before + 1)  # at most the rejection's own version
