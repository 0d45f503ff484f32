"""Passivation: idle SOPs leave host memory and come back from the Store on their next use."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import ray

from sopy_actors import attach
from sopy_actors.core.events import event_to_wire
from sopy_actors.errors import InputError, TimedOut
from sopy_actors.runtime.options import STORE_ACTOR
from tests.support import ledger
from tests.support.deployment import own_deployment

pytestmark = pytest.mark.usefixtures("runtime")


def _until(check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def _stats(host: Any) -> dict[str, Any]:
    result: dict[str, Any] = ray.get(host.statistics.remote())
    return result


def test_an_idle_sop_is_passivated_and_reloads_for_events_queries_and_redeliveries(runtime: Any) -> None:
    handle = ledger.make_sop(3).start(placement="dedicated")
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    assert ray.get(host.passivation.remote({"idle_after": 0.3})) == {"idle_after": 0.3, "max_live": 100_000}
    first = ledger.EntryAdded(payload=ledger.EntryData(sender="a", index=0))
    assert handle.send(first).version == 1
    _until(lambda: _stats(host)["instances"] == 0)
    assert _stats(host)["passivated"] >= 1

    assert handle.status().version == 1  # loaded back for a query
    _until(lambda: _stats(host)["instances"] == 0)
    assert handle.send(first).version == 1  # a redelivery after a reload is still applied once
    _until(lambda: _stats(host)["instances"] == 0)
    assert attach(handle.sop_id).send(ledger.EntryAdded(payload=ledger.EntryData(sender="a", index=1))).version == 2
    handle.send(ledger.EntryAdded(payload=ledger.EntryData(sender="a", index=2)))
    assert handle.result(timeout=60).entries == {"a": [0, 1, 2]}


def test_a_result_call_that_timed_out_leaves_nothing_that_keeps_the_sop_in_memory(runtime: Any) -> None:
    handle = ledger.make_sop(3).start(placement="dedicated")
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    ray.get(host.passivation.remote({"idle_after": 0.3}))
    started = time.monotonic()
    with pytest.raises(TimedOut, match=r"did not end within 0\.5 s"):  # the host's answer, not the caller's
        handle.result(timeout=0.5)
    assert time.monotonic() - started < 3
    _until(lambda: _stats(host)["instances"] == 0)  # no waiter left behind: passivated
    with pytest.raises(InputError, match="timeout must be None or a finite number"):
        handle.result(timeout=float("nan"))
    refused = ray.get(host.wait_result.remote(handle.sop_id, float("nan")))  # the host checks too
    assert refused["error"]["type"] == "InputError" and refused["error"]["attributes"]["fields"] == ["timeout"]


def test_a_retried_start_of_a_passivated_sop_that_moved_on_leaves_it_as_stored(runtime: Any) -> None:
    handle = ledger.make_sop(3).start(placement="dedicated")
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    store = ray.get_actor(STORE_ACTOR, namespace=runtime.namespace)
    first = ray.get(store.load.remote(handle.sop_id, 0)).record  # what start() sent, version 0
    ray.get(host.passivation.remote({"idle_after": 0.3}))
    handle.send(ledger.EntryAdded(payload=ledger.EntryData(sender="a", index=0)))
    _until(lambda: _stats(host)["instances"] == 0)
    assert ray.get(host.start.remote(first)) is None  # Ray retrying the call: accepted, changes nothing
    assert handle.status().version == 1
    assert handle.send(ledger.EntryAdded(payload=ledger.EntryData(sender="a", index=1))).version == 2


def test_a_retried_start_of_a_passivated_sop_at_version_0_keeps_what_was_committed_since(runtime: Any) -> None:
    handle = ledger.make_sop(3).start(placement="dedicated")
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    store = ray.get_actor(STORE_ACTOR, namespace=runtime.namespace)
    first = ray.get(store.load.remote(handle.sop_id, 0)).record
    handle.set_retention(last=3)  # committed without an event: still version 0
    ray.get(host.passivation.remote({"idle_after": 0.3}))
    _until(lambda: _stats(host)["instances"] == 0)
    assert ray.get(host.start.remote(first)) is None
    assert handle.send(ledger.EntryAdded(payload=ledger.EntryData(sender="a", index=0))).version == 1
    assert ray.get(store.load.remote(handle.sop_id, 0)).record.version_retention == {"last": 3, "newer_than": None}


def test_a_reloaded_sop_keeps_each_senders_order(runtime: Any) -> None:
    handle = ledger.make_sop(3).start(placement="dedicated")
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    ray.get(host.passivation.remote({"idle_after": 0.3}))

    def numbered(seq: int) -> Any:  # the sender "t"'s event number `seq`, as a process sends it
        event = event_to_wire(ledger.EntryAdded(payload=ledger.EntryData(sender="t", index=seq)))
        return host.send.remote(handle.sop_id, event, "t", seq)

    assert ray.get(numbered(0))["version"] == 1
    _until(lambda: _stats(host)["instances"] == 0)
    # Reloaded, the SOP knows "t" sent 0: its 2 waits for its 1, and nothing waits for 0 again
    # (a reload that forgot the order would hold both for the 60 s gap timeout).
    late = numbered(2)
    _until(lambda: _stats(host)["instances"] == 1)  # reloaded, holding it
    assert [reply["version"] for reply in ray.get([numbered(1), late], timeout=20)] == [2, 3]
    assert handle.result(timeout=20).entries == {"t": [0, 1, 2]}


def test_a_host_keeps_at_most_max_live_idle_sops_and_every_sop_still_completes(tmp_path: Path) -> None:
    # A host of its own: a shared host also holds other tests' SOPs that wait for a person,
    # which are never passivated.
    with own_deployment(tmp_path) as deployment:
        host = deployment.host
        ray.get(host.passivation.remote({"max_live": 3}))
        handles = deployment.engine.start_many([ledger.make_sop(2) for _ in range(8)])
        for handle in handles:
            handle.send(ledger.EntryAdded(payload=ledger.EntryData(sender="a", index=0)))
        _until(lambda: _stats(host)["instances"] <= 3)
        for handle in handles:
            handle.send(ledger.EntryAdded(payload=ledger.EntryData(sender="a", index=1)))
        assert all(handle.result(timeout=60).entries == {"a": [0, 1]} for handle in handles)
        _until(lambda: _stats(host)["instances"] <= 3)


def test_bad_passivation_settings_are_refused_naming_the_field(runtime: Any) -> None:
    handle = ledger.make_sop(1).start()
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    before = ray.get(host.passivation.remote())
    refused = ray.get(host.passivation.remote({"max_live": 0}))
    assert "max_live" in refused["error"]["message"]
    assert ray.get(host.passivation.remote()) == before
