"""Durability edges: exactly-once for an SOP's whole life, cancels that stick."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest
import ray

from sopy_actors.core.transition import Outcome
from sopy_actors.errors import RuntimeUnavailable, SOPCancelled, SOPFailed, StateError, TimedOut
from tests.support import ledger, slow

pytestmark = pytest.mark.usefixtures("runtime")


def _entry(index: int) -> ledger.EntryAdded:
    return ledger.EntryAdded(payload=ledger.EntryData(sender="driver", index=index))


def test_an_event_redelivered_long_after_it_was_committed_is_recognised_also_after_a_restart(runtime: Any) -> None:
    handle = ledger.make_sop(10**6).start(placement="dedicated")
    first = _entry(0)
    receipt = handle.send(first)
    futures = [handle.submit(_entry(i)) for i in range(1, 301)]  # far past the recent-replies window
    for future in futures:
        future.result(timeout=120)

    again = handle.send(first)  # the same event id, 300 events later
    assert (again.outcome, again.version) == (receipt.outcome, receipt.version) == (Outcome.STAYED, 1)
    assert handle.state().entries["driver"].count(0) == 1

    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    os.kill(ray.get(host.statistics.remote())["pid"], signal.SIGKILL)
    after_restart = handle.send(first)  # answered by the restarted host, from the event log
    assert after_restart.version == 1
    state = handle.state()
    assert state.entries["driver"] == list(range(301))
    assert [entry.version for entry in handle.history()] == list(range(1, 302))


def test_cancelling_while_a_handler_runs_discards_its_result_and_the_sop_accepts_nothing_more() -> None:
    handle = slow.make_sop().start()
    pending = handle.submit(slow.WorkRequested(payload=2.0))  # the handler sleeps 2 s
    time.sleep(0.7)  # let the handler start
    handle.cancel()

    with pytest.raises(SOPCancelled):
        pending.result(timeout=30)
    status = handle.status()
    assert status.phase == "cancelled" and status.procedure == "Working"
    with pytest.raises(SOPCancelled):
        handle.result(timeout=5)  # at once, not a timeout
    with pytest.raises(SOPFailed):
        handle.send(slow.WorkRequested(payload=0.0), timeout=30)
    assert handle.state().done == 0  # the in-flight result never landed
    history = handle.history()
    assert [entry.outcome for entry in history] == ["discarded"]
    assert handle.status().phase == "cancelled"


def test_a_cancel_racing_a_stream_of_events_leaves_the_sop_cancelled() -> None:
    handle = slow.make_sop().start()
    stop = threading.Event()

    def keep_sending() -> None:
        while not stop.is_set():
            try:
                handle.send(slow.WorkRequested(payload=0.01), timeout=30)
            except SOPFailed:
                return

    sender = threading.Thread(target=keep_sending)
    sender.start()
    time.sleep(0.5)
    handle.cancel()
    sender.join(timeout=30)
    stop.set()
    assert not sender.is_alive()
    assert handle.status().phase == "cancelled"
    versions = [entry.version for entry in handle.history()]
    assert versions == list(range(1, len(versions) + 1))


def test_a_send_that_failed_never_stalls_the_next_one(runtime: Any) -> None:
    handle = ledger.make_sop(10**6).start(placement="dedicated")
    handle.send(_entry(0))
    ray.kill(ray.get_actor(handle.host, namespace=runtime.namespace), no_restart=True)
    with pytest.raises(RuntimeUnavailable):
        handle.send(_entry(1), timeout=60)  # never reaches a host

    pool_host = ray.get_actor("sopy-host-0", namespace=runtime.namespace)
    ray.get(pool_host.create_host.remote(handle.host))  # the SOP's host is back (from the Store)
    started = time.monotonic()
    receipt = handle.send(_entry(2), timeout=30)  # would wait 60 s for the lost number
    assert receipt.version == 2 and time.monotonic() - started < 20
    assert handle.state().entries["driver"] == [0, 2]


def test_one_sops_bad_state_or_hung_handler_never_fails_or_delays_another_sops_event() -> None:
    sops = [slow.make_bulk_sop().start() for _ in range(6)]
    hung, bad, big, *fine = sops
    started = time.monotonic()
    futures = {
        hung.sop_id: hung.submit(slow.BulkRequested(payload="sleep:30")),
        bad.sop_id: bad.submit(slow.BulkRequested(payload="unserialisable")),
        big.sop_id: big.submit(slow.BulkRequested(payload=f"big:{1024 * 1024}")),
        **{h.sop_id: h.submit(slow.BulkRequested(payload="sleep:0")) for h in fine},
    }
    for handle in fine:  # committed long before the hung handler's timeout
        assert futures[handle.sop_id].result(timeout=60).version == 1
    assert time.monotonic() - started < 15
    with pytest.raises(StateError, match="cannot be checkpointed"):
        futures[bad.sop_id].result(timeout=60)
    with pytest.raises(StateError, match="max_state_bytes=65536"):
        futures[big.sop_id].result(timeout=60)
    with pytest.raises(TimedOut, match=r"handler_timeout of 2\.0 s"):
        futures[hung.sop_id].result(timeout=60)
    assert [h.status().version for h in (hung, bad, big)] == [0, 0, 0]  # nothing committed


def test_a_lone_hung_handler_times_out_at_its_handler_timeout_and_the_sop_goes_on() -> None:
    handle = slow.make_bulk_sop().start()  # handler_timeout=2.0
    started = time.monotonic()
    with pytest.raises(TimedOut, match=r"handler_timeout of 2\.0 s"):
        handle.send(slow.BulkRequested(payload="sleep:20"))  # a batch of one: run inline by the actor
    assert 2.0 <= time.monotonic() - started < 15
    assert handle.send(slow.BulkRequested(payload="sleep:0")).version == 1  # nothing of the first committed


def test_an_actor_whose_every_slot_holds_a_hung_handler_still_answers_the_rest_in_time() -> None:
    hung, other = slow.make_narrow_sop().start(), slow.make_narrow_sop().start()  # max_concurrency=1
    hung.send(slow.WorkRequested(payload=0.0))  # the class's procedure actor is up
    stuck = hung.submit(slow.WorkRequested(payload=20.0))  # holds the one slot for 20 s
    time.sleep(0.5)
    started = time.monotonic()
    with pytest.raises(TimedOut, match=r"handler_timeout of 2\.0 s"):
        other.send(slow.WorkRequested(payload=0.0))  # no slot within its 2 s: it fails, not waits 20 s
    assert time.monotonic() - started < 10  # the failure's recovery lookup was served meanwhile
    with pytest.raises(TimedOut):
        stuck.result(timeout=30)
    time.sleep(20)  # the hung handler returns; the call that timed out was never started late
    assert [h.state().done for h in (hung, other)] == [1, 0]
    assert other.send(slow.WorkRequested(payload=0.0)).version == 1


def test_an_initial_state_over_the_size_limit_is_refused_at_start() -> None:
    sop = slow.make_bulk_sop()
    sop.state.blob = "x" * (1024 * 1024)
    with pytest.raises(StateError, match="max_state_bytes"):
        sop.start()
