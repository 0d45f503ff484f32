"""The runtime's event path written with bare batched Ray actors: the fair baseline.

The same hops and writes as an event on the runtime, with nothing else:
driver -> 2 async host actors (one JSON batch per host) -> one worker call per batch (JSON in
and out; the ledger SOP's handler on plain dicts) -> one SQLite transaction per batch, written by
the host itself on a thread of its own (WAL + synchronous=NORMAL, the runtime's three tables;
both hosts write the one file, as the runtime's hosts on the Store's node do) -> JSON replies.

Each event writes the rows a runtime commit writes (`sopy_actors.runtime.commits.Commit.rows`):
the `sops` row with the whole record as JSON (the record of a real ledger SOP as template),
the `events` row with its log entry as JSON (event ids unique per SOP: exactly-once), and the
`versions` row (a snapshot of procedure and state). Hosts drop an event id they have seen.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray

__all__ = ["BareBatched"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sops (sop_id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, parent_id TEXT, phase TEXT NOT NULL,
    procedure_name TEXT NOT NULL, version INTEGER NOT NULL, record TEXT NOT NULL, updated REAL NOT NULL,
    parent_pending INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS events (sop_id TEXT NOT NULL, version INTEGER NOT NULL, event_id TEXT NOT NULL,
    entry TEXT NOT NULL, PRIMARY KEY (sop_id, version), UNIQUE (sop_id, event_id))""",
    """CREATE TABLE IF NOT EXISTS versions (sop_id TEXT NOT NULL, version INTEGER NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL,
    event TEXT NOT NULL, procedure_name TEXT NOT NULL, description TEXT NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (sop_id, version))""",
)
_UPSERT = (
    "INSERT INTO sops VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT(sop_id) DO UPDATE SET phase = excluded.phase, "
    "procedure_name = excluded.procedure_name, version = excluded.version, record = excluded.record, "
    "updated = excluded.updated WHERE sops.version = excluded.version - 1"
)
Rows = tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]


@ray.remote(num_cpus=0)
class BareBatchWorker:
    """The procedure actor, bare: the ledger handler over a JSON batch of (procedure, state, event)."""

    def handle_batch(self, batch: str) -> str:
        out = []
        for procedure, state, event in json.loads(batch):
            payload, ledger = event["data"]["payload"], state["data"]
            ledger["entries"].setdefault(payload["sender"], []).append(payload["index"])
            ended = sum(len(indexes) for indexes in ledger["entries"].values()) == ledger["expected"]
            out.append((procedure, state, "ended" if ended else "stayed"))
        return json.dumps(out)


class BareBatchStore:
    """The store, bare: one SQLite connection, one transaction per call (a host's, on its thread)."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("BEGIN IMMEDIATE")  # one host creates the tables; the other waits, finds them
        for statement in _SCHEMA:
            self.db.execute(statement)
        self.db.execute("COMMIT")

    def commit_batch(self, rows: list[Rows]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", [row[1] for row in rows])
        self.db.executemany(_UPSERT, [row[0] for row in rows])
        self.db.executemany("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [row[2] for row in rows])
        self.db.execute("COMMIT")


@ray.remote(num_cpus=0)
class BareBatchHost:
    """The SOP host, bare: dedupe, one worker call and one SQLite transaction per batch, then reply.

    Args:
        worker: the BareBatchWorker.
        path: the SQLite file (written on one thread of this actor).
        record: a runtime SOP record (JSON form): the template of each SOP's stored record.
    """

    def __init__(self, worker: Any, path: str, record: dict[str, Any]) -> None:
        self.worker, self.record = worker, record
        self.io = ThreadPoolExecutor(max_workers=1)
        self.store = self.io.submit(BareBatchStore, path).result()
        self.empty = {"type": record["state"]["type"], "data": {**record["state"]["data"], "entries": {}}}
        self.states: dict[str, tuple[dict[str, Any], dict[str, Any], int]] = {}  # procedure, state, version
        self.seen: set[str] = set()

    async def send_batch(self, batch: str) -> str:
        items = [(key, event) for key, event in json.loads(batch) if event["data"]["id"] not in self.seen]
        new = (self.record["procedure"], self.empty, 0)  # only sent: the worker's copy comes back
        current = [self.states.get(key) or new for key, _ in items]
        calls = [(procedure, state, event) for (_, event), (procedure, state, _) in zip(items, current, strict=True)]
        results = json.loads(await self.worker.handle_batch.remote(json.dumps(calls)))
        rows, replies, now = [], [], time.time()
        for (key, event), (_, _, version), (procedure, state, outcome) in zip(items, current, results, strict=True):
            version += 1
            event_id, name = event["data"]["id"], procedure["name"]
            record = {**self.record, "sop_id": key, "procedure": procedure, "state": state, "version": version}
            entry = {
                "sop_id": key, "version": version, "event_id": event_id, "event_type": event["type"], "sender": None,
                "outcome": outcome, "from_procedure": name, "to_procedure": name, "prompt": None, "at": now,
            }
            body = json.dumps({"procedure": procedure, "state": state}).encode()
            rows.append((
                (key, record["name"], None, record["phase"], name, version, json.dumps(record), now),
                (key, version, event_id, json.dumps(entry)),
                (key, version, now, "s", event["type"], name, outcome, body),
            ))
            self.states[key] = (procedure, state, version)
            self.seen.add(event_id)
            replies.append({"outcome": outcome, "procedure": name, "version": version})
        await asyncio.get_running_loop().run_in_executor(self.io, self.store.commit_batch, rows)
        return json.dumps(replies)


def _wire_event(index: int) -> dict[str, Any]:
    """A ledger `EntryAdded` in the runtime's wire form (`event_to_wire`), with a new id."""
    payload = {"sender": "bench", "index": index}
    data = {"payload": payload, "description": None, "sender": None, "target": None, "toolUseId": None, "id": uuid.uuid4().hex}
    return {"type": "tests.support.ledger:EntryAdded", "data": data}


class BareBatched:
    """The bare pattern's actors and its driver side (runs in the driver).

    Args:
        path: the SQLite file.
        record: the template record (a ledger SOP's, JSON form; its state's entries are cleared).
        hosts: how many host actors (keys are spread over them by crc32, as SOP ids are).
    """

    def __init__(self, path: str, record: dict[str, Any], hosts: int = 2) -> None:
        self.worker = BareBatchWorker.remote()
        self.hosts = [BareBatchHost.remote(self.worker, path, record) for _ in range(hosts)]

    def send(self, keys: list[str], index: int) -> list[dict[str, Any]]:
        """One event to each key (one JSON batch per host); waits for every reply."""
        batches: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in self.hosts]
        for key in keys:
            batches[zlib.crc32(key.encode()) % len(self.hosts)].append((key, _wire_event(index)))
        refs = [host.send_batch.remote(json.dumps(batch)) for host, batch in zip(self.hosts, batches, strict=True) if batch]
        return [reply for ref in refs for reply in json.loads(ray.get(ref))]
