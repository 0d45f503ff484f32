"""A host's direct writes to its node's SQLite store: never creating it, never writing a
replaced file, exactly once beside other writers of the file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sopy_actors.runtime.commits import Commit, WriteResult
from sopy_actors.runtime.local_commits import LocalCommits, StoreFileReplaced
from sopy_actors.runtime.store import SQLiteStore
from tests.support.records import entry, record


def _commit(sop_id: str, version: int, event_id: str) -> Commit:
    return Commit(record=record(sop_id, version), entry=entry(sop_id, version, event_id))


def test_an_existing_only_store_is_never_created(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "store.sqlite3"
    with pytest.raises(sqlite3.OperationalError):
        SQLiteStore(missing, existing=True)
    assert not missing.exists() and not missing.parent.exists()


def test_two_writers_of_one_file_commit_an_event_once(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    SQLiteStore(path).create(record("s1"))
    writers = [SQLiteStore(path, existing=True) for _ in range(2)]  # as the Store actor and a host
    rows = _commit("s1", 1, "e1").rows()
    results: list[WriteResult] = []
    start = threading.Barrier(2)

    def write(store: SQLiteStore) -> None:
        start.wait()
        results.extend(store.write([rows]))

    threads = [threading.Thread(target=write, args=(store,)) for store in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and sum(result is None for result in results) == 1  # the other: the logged entry
    assert [(e.version, e.event_id) for e in writers[0].history("s1")] == [(1, "e1")]


def test_local_commits_write_durably_and_refuse_a_replaced_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "store.sqlite3"
    SQLiteStore(path).create(record("s1"))
    io = ThreadPoolExecutor(max_workers=1)
    seconds: list[float] = []

    async def run() -> None:
        backend = await asyncio.get_running_loop().run_in_executor(io, lambda: SQLiteStore(path, existing=True))
        local = LocalCommits(backend, io, seconds.append)
        assert await local.commit([_commit("s1", 1, "e1").rows()]) == [None]
        assert await local.create_many([record("s2")]) == [True]
        replacement = tmp_path / "other.sqlite3"
        SQLiteStore(replacement).create(record("s1"))
        os.replace(replacement, path)  # another file at the path: this connection's is not it
        with pytest.raises(StoreFileReplaced, match="removed or replaced"):
            await local.commit([_commit("s1", 2, "e2").rows()])
        stored = await asyncio.get_running_loop().run_in_executor(io, backend.load, "s1")
        assert stored is not None and stored.record.version == 1  # nothing went to the file it had open
        with pytest.raises(StoreFileReplaced):
            await local.create_many([record("s3")])
        os.remove(path)
        with pytest.raises(StoreFileReplaced):
            await local.commit([_commit("s1", 2, "e2").rows()])

    asyncio.run(run())
    io.shutdown()
    assert len(seconds) == 1
    assert not path.exists()  # a removed file is not created again
    assert not [r for r in caplog.records if "store write failed" in r.message]  # the host handles it: no traceback
