"""Distributed state on the actor runtime: SOPs of one shared space see each other's writes,
converge on the last write of a key, and the shared-state service survives a restart."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import ray
from pydantic import BaseModel

from sopy_actors import SOP, End, Event, Procedure, handler, make_prompt
from sopy_actors.core.lifecycle import SharedStateChanged
from sopy_actors.runtime.handle import SOPHandle
from sopy_actors.runtime.shared_state import SHARED_STATE_ACTOR, join_shared_space
from sopy_actors.state import DistributedState

pytestmark = pytest.mark.usefixtures("runtime")


class Shelf(DistributedState):
    changes_seen: int = 0


class Pair(BaseModel):
    key: str
    value: Any


class Written(Event[Pair]):
    pass


class Closed(Event[str]):
    pass


class Sharing(Procedure[Shelf]):
    prompt = make_prompt("Write values; they are shared with the space.")

    @handler
    def on_written(self, state: Shelf, event: Written) -> Procedure[Shelf]:
        state.update_local(event.payload.key, event.payload.value)
        return self

    @handler
    def on_closed(self, state: Shelf, event: Closed) -> Procedure[Shelf]:
        return End()


class Watching(Procedure[Shelf]):
    """Like Sharing, and counts the shared changes it was told of (the runtime merges them anyway)."""

    prompt = make_prompt("Watch the space.")

    @handler
    def on_changed(self, state: Shelf, event: SharedStateChanged) -> Procedure[Shelf]:
        state.merge(event.payload)
        state.changes_seen += 1
        return self

    @handler
    def on_written(self, state: Shelf, event: Written) -> Procedure[Shelf]:
        state.update_local(event.payload.key, event.payload.value)
        return self


def shelf(node: str, space: str, procedure: Procedure[Shelf] | None = None) -> SOPHandle:
    handle: SOPHandle = SOP(Shelf(node_id=node, sop_space=space), procedure or Sharing()).start()
    return handle


def eventually(check: Callable[[], bool], *, timeout: float = 90.0) -> None:
    """Convergence is asynchronous (background syncs, then events): wait for it, bounded."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not converged within {timeout} s")
        time.sleep(0.1)


def view(handle: SOPHandle) -> tuple[dict[str, Any], list[str]]:
    state: Shelf = handle.state()
    return state.effective_data(), state.needs_sync()


def test_a_write_in_one_sop_reaches_the_other_sops_of_its_space() -> None:
    space = f"space-{uuid.uuid4().hex[:8]}"
    writer, reader = shelf("east", space), shelf("west", space)
    join_shared_space(reader, timeout=120)
    writer.send(Written(payload=Pair(key="widgets", value=10)), timeout=120)
    eventually(lambda: view(reader)[0] == {"widgets": 10})
    eventually(lambda: view(writer) == ({"widgets": 10}, []))  # confirmed: no longer pending
    shared = reader.state().shared_data["widgets"]
    assert shared["source_node"] == "east" and shared["hlc"].endswith(".east")


def test_two_sops_writing_one_key_at_once_converge_on_the_later_write() -> None:
    space = f"space-{uuid.uuid4().hex[:8]}"
    east, west = shelf("east", space), shelf("west", space)
    futures = [
        east.submit(Written(payload=Pair(key="price", value=11))),
        west.submit(Written(payload=Pair(key="price", value=12))),
    ]
    for future in futures:
        future.result(timeout=120)
    eventually(lambda: view(east) == view(west) and view(east)[1] == [])
    stamps = {h.state().node_id: h.state().sop_stamps.get("price") for h in (east, west)}
    winner = next(node for node, stamp in stamps.items() if stamp is not None)  # the loser dropped its write
    assert view(east)[0] == {"price": {"east": 11, "west": 12}[winner]}


def test_an_sop_handling_shared_changes_sees_them_and_a_late_joiner_gets_the_space() -> None:
    space = f"space-{uuid.uuid4().hex[:8]}"
    watcher = shelf("watcher", space, Watching())
    join_shared_space(watcher, timeout=120)
    writer = shelf("writer", space)
    for index in range(3):
        writer.send(Written(payload=Pair(key=f"k{index}", value=index)), timeout=120)
    eventually(lambda: view(watcher)[0] == {"k0": 0, "k1": 1, "k2": 2})
    assert watcher.state().changes_seen >= 3
    late = shelf("late", space)
    join_shared_space(late, timeout=120)
    eventually(lambda: view(late)[0] == {"k0": 0, "k1": 1, "k2": 2})
    writer.send(Closed(payload="done"), timeout=120)


def test_shared_values_survive_a_restart_of_the_service(runtime: Any) -> None:
    space = f"space-{uuid.uuid4().hex[:8]}"
    writer = shelf("east", space)
    writer.send(Written(payload=Pair(key="stock", value=5)), timeout=120)
    eventually(lambda: view(writer) == ({"stock": 5}, []))
    service = ray.get_actor(SHARED_STATE_ACTOR, namespace=runtime.namespace)
    before: Any = ray.get(service.values.remote(space), timeout=60)
    assert before  # the write reached the service before it dies
    pid = _pid(service)
    ray.kill(service, no_restart=False)  # asynchronous: the old process may answer a while yet
    eventually(lambda: _pid(service) not in (None, pid))
    eventually(lambda: _values(service, space) == before)
    assert _values(service, space) == before  # reloaded from its file, not rebuilt empty
    late = shelf("late", space)
    join_shared_space(late, timeout=120)
    eventually(lambda: view(late)[0] == {"stock": 5})
    assert view(late)[0] == {"stock": 5}


def _pid(service: Any) -> int | None:
    try:
        pid: int = ray.get(service.__ray_call__.remote(lambda self: os.getpid()), timeout=5)
    except Exception:  # restarting: ask again
        return None
    return pid


def _values(service: Any, space: str) -> Any:
    try:
        return ray.get(service.values.remote(space), timeout=5)
    except Exception:  # restarting: ask again
        return None
