"""Syncing distributed state between SOPs: the shared-state service and the host's hook.

```
 SOP host (after a commit whose state has a `sop_space`)        SharedStateActor "sopy-shared-state"
   pending keys (`needs_sync()`) + "I listen" ──── sync() ────►  merge LWW on HLC stamps, persist (SQLite)
                                                                  │
   SharedStateChanged(space, entries) ◄──── host.send() ─────────┘ to every SOP of the space:
   the host merges the entries into the state it commits          changed keys; to the writer, the
   (`merged`, before `advance`), with or without a handler        settled value of each key it sent
```

One service per namespace: a detached, named, async actor on the head node, created lazily by
the first host that commits a distributed state. It keeps every space's last writes and its
listeners in a small SQLite file of its own next to the Store's file (WAL, one transaction per
sync), so a restarted service (or a new cluster over the same store directory) has them back.

Conflicts are resolved last-writer-wins on hybrid logical clock stamps, ties broken by node id
(`sopy_actors.state.distributed`): the service and every state merge with the same rule, so
SOPs that saw the same writes hold the same values, whatever the order of delivery. Delivery
is at least once: a repeated entry changes nothing. An SOP that ended stops listening.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sopy_actors.core.events import event_to_wire, event_type_name
from sopy_actors.core.lifecycle import SharedChange, SharedEntry, SharedStateChanged
from sopy_actors.errors import InputError
from sopy_actors.runtime.messages import HandlerResult
from sopy_actors.runtime.options import create_actor, ray_options
from sopy_actors.runtime.rayutil import head_node_id
from sopy_actors.runtime.records import SOPRecord
from sopy_actors.state.distributed import lww_merge, merge_state_data, pending_entries, space_of

__all__ = ["SHARED_STATE_ACTOR", "SharedStateActor", "SharedSync", "join_shared_space", "shared_state_actor", "shared_state_path"]

logger = logging.getLogger(__name__)

SHARED_STATE_ACTOR = "sopy-shared-state"
_FILE = "shared_state.sqlite3"
_EVENT_TYPE = event_type_name(SharedStateChanged)
_ENDED = ("UnknownSOP", "SOPFailed", "SOPCancelled", "RecoveryExhausted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    space TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, stamp TEXT NOT NULL, source_node TEXT NOT NULL,
    PRIMARY KEY (space, key)
);
CREATE TABLE IF NOT EXISTS listeners (
    space TEXT NOT NULL, sop_id TEXT NOT NULL, host TEXT NOT NULL,
    PRIMARY KEY (space, sop_id)
);
"""


def shared_state_path(local_directory: str) -> str:
    """The service's SQLite file, in the head node's directory for local files
    (`StoreActor.local_directory`: beside the Store's SQLite file, or the store directory)."""
    return str(Path(local_directory).expanduser().resolve() / _FILE)


def shared_state_actor(namespace: str, path: str) -> Any:
    """Get or create the namespace's shared-state service (on the head node, like the Store)."""
    options = ray_options(
        name=SHARED_STATE_ACTOR,
        namespace=namespace,
        scheduling_strategy=NodeAffinitySchedulingStrategy(head_node_id(), soft=True),
    )
    return create_actor(SharedStateActor, options, namespace, path)


@ray.remote
class SharedStateActor:
    """Async actor: the last write of every key of every shared space, and who listens.

    Args:
        namespace: the deployment's namespace (where the listeners' hosts are).
        path: its SQLite file (created with its directory if missing).
    """

    def __init__(self, namespace: str, path: str) -> None:
        self._namespace = namespace
        self._path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._spaces: dict[str, dict[str, SharedEntry]] = {}
        self._listeners: dict[str, dict[str, str]] = {}
        for space, key, value, stamp, source in self._db.execute("SELECT space, key, value, stamp, source_node FROM entries"):
            self._spaces.setdefault(space, {})[key] = SharedEntry(
                key=key, value=json.loads(value), stamp=stamp, source_node=source
            )
        for space, sop_id, host in self._db.execute("SELECT space, sop_id, host FROM listeners"):
            self._listeners.setdefault(space, {})[sop_id] = host
        self._hosts: dict[str, Any] = {}
        self._background: set[asyncio.Task[Any]] = set()
        if ray.get_runtime_context().was_current_actor_reconstructed:
            # Deliveries in flight when the service died are lost: send every listener its
            # space again (Ray runs an async actor's __init__ on its event loop).
            for space, listeners in self._listeners.items():
                for sop_id, host in listeners.items():
                    self._spawn(self._deliver(space, sop_id, host, list(self._spaces.get(space, {}).values())))
        logger.info("path=<%s>, spaces=<%d> | shared state ready", path, len(self._spaces))

    async def path(self) -> str:
        """Where this service persists (its SQLite file)."""
        return self._path

    async def sync(self, space: str, sop_id: str, host: str, entries: list[dict[str, Any]], listen: bool) -> int:
        """Merge an SOP's writes into `space` and tell the space's SOPs what changed.

        Args:
            space: the shared space.
            sop_id: the writing SOP; its host `host`.
            entries: its pending writes (`SharedEntry` data).
            listen: the SOP (re)joins: add it to the listeners and send it the space's values.

        Returns:
            How many keys changed.
        """
        writes = [SharedEntry.model_validate(entry) for entry in entries]
        current = self._spaces.setdefault(space, {})
        merged = lww_merge(current, writes)
        changed = [entry for key, entry in merged.items() if current.get(key) != entry]
        listeners = self._listeners.setdefault(space, {})
        new_listener = listen and listeners.get(sop_id) != host
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO entries (space, key, value, stamp, source_node) VALUES (?, ?, ?, ?, ?)",
                [(space, e.key, json.dumps(e.value), e.stamp, e.source_node) for e in changed],
            )
            if new_listener:
                self._db.execute(
                    "INSERT OR REPLACE INTO listeners (space, sop_id, host) VALUES (?, ?, ?)", (space, sop_id, host)
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._spaces[space] = merged
        if new_listener:
            listeners[sop_id] = host
        # The writer learns how each key it sent settled (its own write: confirmed); an SOP
        # (re)joining gets the whole space (after a host restart too: it heals any delivery
        # lost meanwhile); the others get what changed.
        settled = list(merged.values()) if listen else [merged[w.key] for w in writes]
        for listener, listener_host in list(listeners.items()):
            send = settled if listener == sop_id else changed
            if send:
                self._spawn(self._deliver(space, listener, listener_host, send))
        return len(changed)

    async def forget(self, space: str, sop_id: str) -> None:
        """Stop sending `space`'s changes to an SOP (it ended)."""
        self._drop(space, sop_id)

    async def values(self, space: str) -> dict[str, dict[str, Any]]:
        """The last write of every key of `space` (`SharedEntry` data by key)."""
        return {key: entry.model_dump(mode="json") for key, entry in self._spaces.get(space, {}).items()}

    async def listeners(self, space: str) -> dict[str, str]:
        """The SOPs (id to host) that receive `space`'s changes."""
        return dict(self._listeners.get(space, {}))

    def _drop(self, space: str, sop_id: str) -> None:
        if self._listeners.get(space, {}).pop(sop_id, None) is not None:
            self._db.execute("DELETE FROM listeners WHERE space = ? AND sop_id = ?", (space, sop_id))

    def _host(self, name: str) -> Any:
        if name not in self._hosts:
            self._hosts[name] = ray.get_actor(name, namespace=self._namespace)
        return self._hosts[name]

    async def _deliver(self, space: str, sop_id: str, host: str, entries: list[SharedEntry]) -> None:
        event = SharedStateChanged(payload=SharedChange(space=space, entries=entries), id=f"shared~{uuid.uuid4().hex}")
        try:
            reply = await self._host(host).send.remote(sop_id, event_to_wire(event))
        except Exception:
            logger.warning("sop=<%s>, space=<%s> | shared change not delivered", sop_id, space, exc_info=True)
            self._hosts.pop(host, None)
            return
        error = reply.get("error") if isinstance(reply, dict) else None
        ended = reply.get("procedure") == "End" if isinstance(reply, dict) else False
        if ended or (error is not None and error.get("type") in _ENDED):
            self._drop(space, sop_id)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class SharedSync:
    """The SOP host's side of sharing: merge incoming changes, send out pending writes.

    Plain asyncio in the host's process; nothing runs for SOPs whose state has no `sop_space`.

    Args:
        namespace: the deployment's namespace.
        host: the host's actor name (where the service sends the changes).
        store: the Store actor (its file locates the service's file).
        spawn: runs a coroutine in the background (the host's `_spawn`).
    """

    def __init__(
        self, namespace: str, host: str, store: Any, spawn: Callable[[Coroutine[Any, Any, None]], object]
    ) -> None:
        self._namespace = namespace
        self._host = host
        self._store = store
        self._spawn = spawn
        self._service: Any = None
        self._listening: set[str] = set()
        self._sent: dict[str, dict[str, str]] = {}  # sop id -> key -> stamp sent (not sent again)

    def merged(self, event: dict[str, Any], result: HandlerResult) -> HandlerResult:
        """`result` with a `SharedStateChanged` event's entries merged into its state (before commit)."""
        if event.get("type") != _EVENT_TYPE or "state" not in result:
            return result
        state = result["state"]
        change = SharedChange.model_validate((event.get("data") or {}).get("payload"))
        if space_of(state.get("data")) != change.space:
            return result
        return {**result, "state": {**state, "data": merge_state_data(state["data"], change.entries)}}

    def committed(self, record: SOPRecord) -> None:
        """After a commit: send the state's pending writes (and, the first time, listen)."""
        space = space_of(record.state.get("data"))
        if space is None:
            return
        sop_id = record.sop_id
        if not record.active:
            if sop_id in self._listening:
                self._listening.discard(sop_id)
                self._sent.pop(sop_id, None)
                self._spawn(self._forget(space, sop_id))
            return
        sent = self._sent.setdefault(sop_id, {})
        fresh = [entry for entry in pending_entries(record.state["data"]) if sent.get(entry.key) != entry.stamp]
        listen = sop_id not in self._listening
        if not fresh and not listen:
            return
        for entry in fresh:
            sent[entry.key] = entry.stamp
        self._listening.add(sop_id)
        self._spawn(self._sync(space, sop_id, fresh, listen))

    async def _service_actor(self) -> Any:
        if self._service is None:
            directory = str(await self._store.local_directory.remote())
            self._service = shared_state_actor(self._namespace, shared_state_path(directory))
        return self._service

    async def _sync(self, space: str, sop_id: str, entries: list[SharedEntry], listen: bool) -> None:
        try:
            service = await self._service_actor()
            await service.sync.remote(space, sop_id, self._host, [e.model_dump(mode="json") for e in entries], listen)
        except Exception:
            # Sent again after the SOP's next commit (its keys are still pending).
            logger.warning("sop=<%s>, space=<%s> | shared state sync failed", sop_id, space, exc_info=True)
            sent = self._sent.get(sop_id, {})
            for entry in entries:
                if sent.get(entry.key) == entry.stamp:
                    del sent[entry.key]
            if listen:
                self._listening.discard(sop_id)

    async def _forget(self, space: str, sop_id: str) -> None:
        service = await self._service_actor()
        await service.forget.remote(space, sop_id)


def join_shared_space(handle: Any, *, timeout: float | None = None) -> None:
    """Make an SOP receive its shared space's values now (driver side, blocking).

    An SOP joins its space when it starts, in the background; this sends it an empty
    `SharedStateChanged` and returns once that is committed, for a caller that needs the SOP
    joined before anything else happens to it.

    Raises:
        InputError: the SOP's state is not a distributed state with a `sop_space`.
    """
    space = space_of(handle.state_data())
    if space is None:
        raise InputError(f"SOP {handle.sop_id} has no shared space: its state sets no sop_space", fields=("state",))
    handle.send(SharedStateChanged(payload=SharedChange(space=space, entries=[])), timeout=timeout)
