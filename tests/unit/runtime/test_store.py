"""The SQLite store on its own (no Ray): commits, reloads, the event log and its deduplication."""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path

import pytest

from sopy_actors.errors import InputError
from sopy_actors.runtime.commits import Commit
from sopy_actors.runtime.store import SQLiteStore, open_store
from tests.support.records import entry, record


def commit(sop_id: str, version: int, event_id: str) -> Commit:
    return Commit(record=record(sop_id, version), entry=entry(sop_id, version, event_id))


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "nested" / "store.sqlite3")


def test_a_commit_survives_reopening_the_file(store: SQLiteStore) -> None:
    assert store.create(record())
    store.write([commit("s1", 1, "e1").rows(), commit("s1", 2, "e2").rows()])
    store.close()
    reopened = SQLiteStore(store.path)
    loaded = reopened.load("s1")
    assert loaded is not None
    assert loaded.record == record("s1", 2)
    assert [e.event_id for e in loaded.recent] == ["e1", "e2"]
    assert [e.version for e in reopened.history("s1")] == [1, 2]


def test_create_refuses_an_existing_id(store: SQLiteStore) -> None:
    assert store.create(record())
    assert not store.create(record(version=5))
    loaded = store.load("s1")
    assert loaded is not None and loaded.record.version == 0


def test_an_event_id_logged_before_is_not_logged_twice(store: SQLiteStore) -> None:
    store.create(record())
    store.write([commit("s1", 1, "e1").rows()])
    store.write([commit("s1", 2, "e1").rows()])  # a redelivery that slipped past the host
    assert [(e.version, e.event_id) for e in store.history("s1")] == [(1, "e1")]


def test_a_logged_id_in_a_group_commit_skips_only_its_own_commit(store: SQLiteStore) -> None:
    store.create(record())
    store.create(record("s2"))
    store.write([commit("s1", 1, "e1").rows()])
    results = store.write([commit("s2", 1, "x1").rows(), commit("s1", 2, "e1").rows(), commit("s1", 2, "e2").rows()])
    assert results[0] is None and results[2] is None
    assert results[1] is not None and '"version":1' in results[1]  # the first commit's entry
    assert [(e.version, e.event_id) for e in store.history("s1")] == [(1, "e1"), (2, "e2")]
    assert [(e.version, e.event_id) for e in store.history("s2")] == [(1, "x1")]
    loaded = store.load("s1")
    assert loaded is not None and loaded.record.version == 2


def test_load_returns_only_the_most_recent_entries_oldest_first(store: SQLiteStore) -> None:
    store.create(record())
    store.write([commit("s1", v, f"e{v}").rows() for v in range(1, 11)])
    loaded = store.load("s1", recent=3)
    assert loaded is not None and [e.version for e in loaded.recent] == [8, 9, 10]
    assert store.load("unknown") is None


def test_a_failed_batch_writes_nothing(store: SQLiteStore) -> None:
    store.create(record())
    good = commit("s1", 1, "e1").rows()
    broken = (("s2", None, *good[0][2:]), None)  # a NULL name violates NOT NULL, mid-batch
    with pytest.raises(sqlite3.IntegrityError):
        store.write([good, broken])
    assert store.history("s1") == []
    loaded = store.load("s1")
    assert loaded is not None and loaded.record.version == 0


def test_children_list_and_config(store: SQLiteStore) -> None:
    store.create(record("parent"))
    store.create(record("child-a", parent_id="parent"))
    store.create(record("child-b", parent_id="parent"))
    store.write([Commit(record=record("child-b", 1, parent_id="parent", phase="done")).rows()])
    assert store.children("parent") == ["child-a", "child-b"]
    assert [s.sop_id for s in store.list_sops(phase="done")] == ["child-b"]
    assert {s.sop_id for s in store.list_sops()} == {"parent", "child-a", "child-b"}
    assert store.config("hosts", "4") == "4"
    assert store.config("hosts", "8") == "4"  # the first value stays


def test_commits_cross_processes_as_equal_models() -> None:
    original = commit("s1", 3, "e3")
    assert pickle.loads(pickle.dumps(original)) == original


def test_open_store_takes_a_path_or_a_sqlite_url_and_refuses_other_backends(tmp_path: Path) -> None:
    assert open_store(str(tmp_path / "a.sqlite3")).location == str(tmp_path / "a.sqlite3")
    assert open_store(f"sqlite://{tmp_path}/b.sqlite3").location == f"{tmp_path}/b.sqlite3"
    with pytest.raises(InputError, match="not supported") as caught:
        open_store("redis://127.0.0.1/0")
    assert caught.value.fields == ("store",)
