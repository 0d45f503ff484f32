"""The Store contract on both backends (SQLite, a real PostgreSQL), and PostgreSQL end to end.

The contract tests are plain backend calls (no Ray). The PostgreSQL server is real: `initdb`
into a temp dir, started on a free loopback port for this module and stopped at its end
(tests/support/postgres.py); each test gets a new database. The end-to-end test runs a driver
process with its own local cluster over `init(store="postgresql://...")`.
"""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sopy_actors.errors import InputError, RuntimeUnavailable, StateError, VersionConflict
from sopy_actors.runtime.commits import Commit
from sopy_actors.runtime.records import LogEntry, Timer
from sopy_actors.runtime.store import SCHEMA_VERSION, SQLiteStore, Store, redact_location
from sopy_actors.runtime.store_actor import open_backend
from tests.support import postgres
from tests.support.processes import run_driver, stop_processes_of
from tests.support.records import entry, record

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ["sqlite", "postgresql"]

Opener = Callable[[], Store]


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_server() -> Iterator[postgres.PostgresServer]:
    """One real PostgreSQL server for the module, stopped at its end even when a test fails."""
    if postgres.postgres_bin_dir() is None:
        pytest.skip("PostgreSQL's initdb/pg_ctl are not installed (Debian: apt-get install postgresql; .ci/run does)")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'sopy-actors[postgres]')")
    server = postgres.start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty store location of each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite3")
    server: postgres.PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database()


@pytest.fixture
def opener(location: str) -> Iterator[Opener]:
    """Opens stores on `location` (a second one is a second writer); closes them all at the end."""
    opened: list[Store] = []

    def open_one() -> Store:
        opened.append(open_backend(location))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Opener) -> Store:
    return opener()


# -- helpers ----------------------------------------------------------------------------------


def commit(sop_id: str, version: int, event_id: str, *, timers: tuple[Timer, ...] = (), **changes: Any) -> Any:
    return Commit(record=record(sop_id, version, **changes), entry=entry(sop_id, version, event_id), timers=timers).rows()


def timer(timer_id: str, due: float, *, sop_id: str = "s1", host: str = "sopy-host-0") -> Timer:
    return Timer(timer_id=timer_id, sop_id=sop_id, host=host, due=due, event={"type": "m:Tick", "data": {"id": timer_id}})


def logged_ids(store: Store, sop_id: str) -> list[tuple[int, str]]:
    return [(e.version, e.event_id) for e in store.history(sop_id)]


# -- create, commit, exactly-once -------------------------------------------------------------


def test_create_refuses_an_existing_id(store: Store) -> None:
    assert store.create(record())
    assert not store.create(record(version=5))
    loaded = store.load("s1")
    assert loaded is not None and loaded.record.version == 0
    assert store.load("unknown") is None


def test_a_commit_survives_reopening_the_store(opener: Opener) -> None:
    first = opener()
    first.create(record())
    assert first.write([commit("s1", 1, "e1"), commit("s1", 2, "e2")]) == [None, None]
    first.close()
    loaded = opener().load("s1", recent=1)
    assert loaded is not None
    assert loaded.record == record("s1", 2)
    assert [e.event_id for e in loaded.recent] == ["e2"]
    assert sorted(loaded.event_ids) == ["e1", "e2"]


def test_load_many_answers_each_id_in_order_as_load_does(store: Store) -> None:
    store.create(record("a"))
    store.create(record("b"))
    assert store.write([commit("b", 1, "e1"), commit("b", 2, "e2")]) == [None, None]
    b, missing, a = store.load_many(["b", "unknown", "a"], recent=1)
    assert missing is None and a is not None and b is not None
    assert (a.record, b.record) == (record("a"), record("b", 2))
    assert [e.event_id for e in b.recent] == ["e2"] and sorted(b.event_ids) == ["e1", "e2"]
    assert store.load_many([]) == []


def test_a_duplicate_event_id_within_one_batch_is_written_once(store: Store) -> None:
    store.create(record())
    results = store.write([commit("s1", 1, "e1"), commit("s1", 2, "e1"), commit("s1", 2, "e2")])
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], str) and json.loads(results[1])["version"] == 1  # the first one's entry
    assert logged_ids(store, "s1") == [(1, "e1"), (2, "e2")]


def test_a_duplicate_event_id_across_batches_skips_only_its_own_commit(store: Store) -> None:
    store.create(record())
    store.create(record("s2"))
    store.write([commit("s1", 1, "e1")])
    results = store.write([commit("s2", 1, "x1"), commit("s1", 2, "e1"), commit("s1", 2, "e2")])
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], str) and LogEntry.model_validate_json(results[1]).version == 1
    assert logged_ids(store, "s1") == [(1, "e1"), (2, "e2")]
    assert logged_ids(store, "s2") == [(1, "x1")]
    logged = store.logged("s1", "e1")
    assert logged is not None and logged.version == 1
    assert store.logged("s1", "nope") is None


# -- version conflicts ------------------------------------------------------------------------


def test_a_second_writer_at_the_same_version_gets_a_version_conflict(opener: Opener) -> None:
    first, second = opener(), opener()  # two Store actors on one store: a split cluster
    first.create(record())
    assert first.write([commit("s1", 1, "from-first")]) == [None]
    (result,) = second.write([commit("s1", 1, "from-second")])
    assert isinstance(result, VersionConflict)
    assert (result.sop_id, result.stored, result.attempted) == ("s1", 1, 1)
    assert "version 1" in str(result)
    assert logged_ids(first, "s1") == [(1, "from-first")]
    loaded = second.load("s1")
    assert loaded is not None and loaded.record.state == record("s1", 1).state


def test_a_conflict_writes_nothing_of_its_commit_and_spares_the_rest_of_the_batch(store: Store) -> None:
    store.create(record())
    store.create(record("s2"))
    store.write([commit("s1", 1, "e1")])
    results = store.write([
        commit("s1", 1, "stale", timers=(timer("t-stale", 5.0),)),  # written against version 0
        commit("s2", 1, "x1", timers=(timer("t-fresh", 6.0, sop_id="s2"),)),
        commit("s1", 3, "ahead"),  # skips a version
    ])
    assert isinstance(results[0], VersionConflict) and results[1] is None and isinstance(results[2], VersionConflict)
    assert (results[2].stored, results[2].attempted) == (1, 3)
    assert logged_ids(store, "s1") == [(1, "e1")]
    assert logged_ids(store, "s2") == [(1, "x1")]
    assert [t.timer_id for t in store.timers("sopy-host-0")] == ["t-fresh"]


def test_commits_without_an_event_may_rewrite_the_current_version_but_not_an_older_one(store: Store) -> None:
    child = record("c1", parent_id="p1")
    store.create(child)
    store.write([Commit(record=child.model_copy(update={"version": 1, "phase": "done"}), entry=entry("c1", 1, "end")).rows()])
    told = child.model_copy(update={"version": 1, "phase": "done", "parent_notified": True})
    assert store.write([Commit(record=told).rows()]) == [None]  # "the parent was told": same version
    assert store.write([Commit(record=told).rows()]) == [None]  # a retried write of it
    (stale,) = store.write([Commit(record=child).rows()])  # version 0 over 1: a stale writer
    assert isinstance(stale, VersionConflict)
    loaded = store.load("c1")
    assert loaded is not None and loaded.record.parent_notified and loaded.record.phase == "done"


# -- timers, hosts, notifications, listing ------------------------------------------------------


def test_timers_are_added_once_listed_soonest_first_and_deleted(store: Store) -> None:
    assert store.add_timer(timer("t2", 20.0))
    assert store.add_timer(timer("t1", 10.0))
    assert not store.add_timer(timer("t1", 99.0))  # a retried schedule adds nothing
    assert store.add_timer(timer("other", 1.0, host="sopy-host-1"))
    listed = store.timers("sopy-host-0")
    assert [(t.timer_id, t.due) for t in listed] == [("t1", 10.0), ("t2", 20.0)]
    assert listed[0].event == {"type": "m:Tick", "data": {"id": "t1"}}
    store.delete_timer("t1")
    store.delete_timer("t1")  # deleting twice is harmless
    assert [t.timer_id for t in store.timers("sopy-host-0")] == ["t2"]


def test_timers_armed_by_a_commit_are_stored_with_it(store: Store) -> None:
    store.create(record())
    store.write([commit("s1", 1, "e1", timers=(timer("timeout-1", 30.0),))])
    assert [t.timer_id for t in store.timers("sopy-host-0")] == ["timeout-1"]


def test_unfinished_hosts_are_those_with_running_or_waiting_sops_untold_parents_or_timers(store: Store) -> None:
    store.create(record("running", host="h-running"))
    store.create(record("waiting", host="h-waiting", phase="waiting_for_human", waiting={"reason": "approve"}))
    store.create(record("done", host="h-done", phase="done"))
    store.create(record("untold", host="h-untold", phase="done", parent_id="done"))
    store.create(record("told", host="h-told", phase="failed", parent_id="done", parent_notified=True))
    store.add_timer(timer("t", 1.0, sop_id="done", host="h-timer"))
    assert store.unfinished_hosts() == ["h-running", "h-timer", "h-untold", "h-waiting"]


def test_pending_notifications_are_finished_children_of_one_host_whose_parent_was_not_told(store: Store) -> None:
    store.create(record("parent"))
    for sop_id, host in (("a", "h0"), ("b", "h0"), ("c", "h1")):
        store.create(record(sop_id, host=host, parent_id="parent"))
    store.write([
        Commit(record=record("a", 1, host="h0", parent_id="parent", phase="done"), entry=entry("a", 1, "a-end")).rows(),
        Commit(record=record("c", 1, host="h1", parent_id="parent", phase="failed"), entry=entry("c", 1, "c-end")).rows(),
    ])
    assert [r.sop_id for r in store.pending_notifications("h0")] == ["a"]
    assert [r.sop_id for r in store.pending_notifications("h1")] == ["c"]
    told = record("a", 1, host="h0", parent_id="parent", phase="done", parent_notified=True)
    store.write([Commit(record=told).rows()])
    assert store.pending_notifications("h0") == []


def test_list_sops_by_phase_children_and_config(store: Store) -> None:
    store.create(record("parent"))
    store.create(record("child-b", parent_id="parent"))
    store.create(record("child-a", parent_id="parent", host="sopy-host-1"))
    store.create(record("asking", phase="waiting_for_human", waiting={"reason": "approve?"}))
    store.write([commit("child-b", 1, "end", parent_id="parent", phase="done")])
    assert store.children("parent") == ["child-b", "child-a"]  # in the order they were created
    assert [s.sop_id for s in store.list_sops(phase="done")] == ["child-b"]
    (asking,) = store.list_sops(phase="waiting_for_human")
    summary = (asking.sop_id, asking.phase, asking.procedure, asking.host)
    assert summary == ("asking", "waiting_for_human", "Drafting", "sopy-host-0")
    assert {s.sop_id for s in store.list_sops()} == {"parent", "child-a", "child-b", "asking"}
    assert store.list_sops()[0].sop_id == "child-b"  # newest first
    assert len(store.list_sops(limit=2)) == 2
    assert {s.host for s in store.list_sops(phase="running")} == {"sopy-host-0", "sopy-host-1"}
    assert store.config("hosts", "4") == "4"
    assert store.config("hosts", "8") == "4"  # the first value stays


# -- schema versions ----------------------------------------------------------------------------


def _set_schema_version(location: str, version: int) -> None:
    if "://" not in location:
        with sqlite3.connect(location) as db:
            db.execute("UPDATE config SET value = ? WHERE key = 'schema_version'", (str(version),))
        return
    import psycopg

    with psycopg.connect(location, autocommit=True) as connection:
        connection.execute("UPDATE sopy_config SET value = %s WHERE key = 'schema_version'", (str(version),))


def test_a_new_store_has_the_current_schema_version_and_a_newer_one_is_refused(opener: Opener, location: str) -> None:
    store = opener()
    current = store.config("schema_version", "?")
    assert int(current) >= 1
    store.close()
    _set_schema_version(location, 99)
    with pytest.raises(StateError, match=rf"schema version 99, newer than schema version {current}") as caught:
        opener()
    assert postgres.PASSWORD not in str(caught.value)


def test_a_sqlite_store_from_before_schema_versions_migrates_forward(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # the layout before `parent_pending` and `schema_version`
        db.executescript(
            "CREATE TABLE sops (sop_id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, parent_id TEXT, "
            "phase TEXT NOT NULL, procedure_name TEXT NOT NULL, version INTEGER NOT NULL, record TEXT NOT NULL, "
            "updated REAL NOT NULL);"
            "CREATE TABLE events (sop_id TEXT NOT NULL, version INTEGER NOT NULL, event_id TEXT NOT NULL, "
            "entry TEXT NOT NULL, PRIMARY KEY (sop_id, version), UNIQUE (sop_id, event_id));"
            "CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        )
        old = record("old", phase="done", parent_id="p")
        db.execute(
            "INSERT INTO sops VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ("old", "Docflow", "p", "done", "Drafting", 0, old.model_dump_json(), 1.0),
        )
    store = SQLiteStore(path)
    try:
        assert store.schema_version() == SCHEMA_VERSION == 5
        assert store.config("schema_version", "?") == str(SCHEMA_VERSION)
        assert [s.host for s in store.list_sops()] == ["sopy-host-0"]  # the host column, filled from the JSON
        store.write([Commit(record=old).rows()])  # sets the migrated parent_pending column
        assert [r.sop_id for r in store.pending_notifications("sopy-host-0")] == ["old"]
        assert store.add_timer(timer("t", 1.0))  # a table the old store lacked
    finally:
        store.close()


# -- locations, passwords, unreachable databases ------------------------------------------------


def test_store_locations_never_show_a_password() -> None:
    assert redact_location("/var/lib/sopy/store.sqlite3") == "/var/lib/sopy/store.sqlite3"
    assert redact_location("postgresql://app:pa%40ss@db.internal:5432/sopy") == "postgresql://app:***@db.internal:5432/sopy"
    assert redact_location("postgresql://db/sopy?user=app&password=hunter2&sslmode=require") == (
        "postgresql://db/sopy?user=app&password=***&sslmode=require"
    )
    assert redact_location("postgres://app@db/sopy") == "postgres://app@db/sopy"


def test_a_postgres_store_location_hides_the_password(pg_server: postgres.PostgresServer) -> None:
    store = open_backend(pg_server.url())
    try:
        assert postgres.PASSWORD not in store.location
        assert store.location == f"postgresql://{postgres.USER}:***@127.0.0.1:{pg_server.port}/postgres"
    finally:
        store.close()


@pytest.mark.parametrize("where", ["closed port", "wrong password"])
def test_an_unreachable_database_is_runtime_unavailable_naming_the_host_not_the_password(
    pg_server: postgres.PostgresServer, where: str
) -> None:
    if where == "closed port":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]  # nothing listens here once the probe is closed
        url = f"postgresql://{postgres.USER}:{postgres.PASSWORD}@127.0.0.1:{port}/sopy"
        password = postgres.PASSWORD
    else:
        password = "not-" + postgres.PASSWORD
        url = pg_server.url(password=password)
    started = time.monotonic()
    with pytest.raises(RuntimeUnavailable) as caught:
        open_backend(url)
    message = str(caught.value)
    assert "127.0.0.1" in message and "***" in message
    assert password not in message and password not in repr(caught.value.__dict__)
    assert caught.value.__cause__ is None and password not in str(caught.value.__context__)
    assert time.monotonic() - started < 30


def test_open_backend_dispatches_on_the_scheme(tmp_path: Path) -> None:
    sqlite_store = open_backend(f"sqlite://{tmp_path}/a.sqlite3")
    assert isinstance(sqlite_store, SQLiteStore)
    sqlite_store.close()
    with pytest.raises(InputError, match="not supported") as caught:
        open_backend("redis://127.0.0.1/0")
    assert caught.value.fields == ("store",)


# -- end to end: SOPs on the actor runtime over PostgreSQL --------------------------------------

DRIVER = """
    import json, socket, sys
    import ray
    import sopy_actors
    from sopy_actors.errors import RuntimeUnavailable, VersionConflict
    from sopy_actors.runtime.options import STORE_ACTOR
    from sopy_actors.runtime.commits import Commit
    from tests.support import ledger

    good, namespace, store_dir, code = sys.argv[1:5]
    options = dict(
        namespace=namespace, store_dir=store_dir, num_cpus=2, monitoring=False,
        runtime_env={"py_modules": [code], "excludes": ["__pycache__"]},
    )
    out = {}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    bad = good.replace(good.rsplit("@", 1)[1].split("/")[0], f"127.0.0.1:{closed}")
    try:
        sopy_actors.init(store=bad, **options)
    except RuntimeUnavailable as error:
        out["unreachable"] = str(error)
    info = sopy_actors.init(store=good, **options)
    out["store_path"] = info.store_path

    def entry(sop_id, index):
        return ledger.EntryAdded(id=f"{sop_id}-{index}", payload=ledger.EntryData(sender="driver", index=index))

    handles = [ledger.make_sop(3).start(sop_id=f"pg-{n}") for n in range(3)]
    for handle in handles:
        for index in range(2):
            handle.send(entry(handle.sop_id, index))
        handle.send(entry(handle.sop_id, 1))  # a redelivery: the same event id again

    # A second writer (a split host) commits pg-0's next version behind its host's back: the
    # host's next commit is a version conflict, raised to the sender; the event sent again
    # applies to the state the other writer left.
    store = ray.get_actor(STORE_ACTOR, namespace=namespace)
    stored = ray.get(store.load.remote("pg-0", 0)).record
    other = stored.model_copy(update={"version": stored.version + 1})
    ray.get(store.commit_batch.remote([Commit(record=other).rows()]))
    try:
        handles[0].send(entry("pg-0", 2))
    except VersionConflict as error:
        out["conflict"] = [error.stored, error.attempted]
    for handle in handles:
        handle.send(entry(handle.sop_id, 2))
    out["states"] = {h.sop_id: h.result(timeout=60).entries for h in handles}
    print(json.dumps(out))
    sopy_actors.shutdown()
"""


@pytest.mark.postgres
def test_sops_run_exactly_once_on_the_actor_runtime_over_postgresql(
    pg_server: postgres.PostgresServer, tmp_path: Path
) -> None:
    url = pg_server.create_database()
    code = tmp_path / "code" / "tests"
    shutil.copytree(ROOT / "tests" / "support", code / "support", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "tests" / "__init__.py", code / "__init__.py")
    ray_temp = tempfile.mkdtemp(prefix="sopy-pg-r-", dir="/tmp")
    started = time.monotonic()
    try:
        done = run_driver(
            [sys.executable, "-c", textwrap.dedent(DRIVER), url, "pgstore", str(tmp_path / "local"), str(code)],
            cwd=code.parent, timeout=300, env={"RAY_TMPDIR": ray_temp},
        )
        logs = [path for path in Path(ray_temp).glob("**/session_*/logs/**/*") if path.is_file()]
        store_logs = [path for path in logs if "StoreActor" in path.read_bytes().decode(errors="replace")]
        leaked = [str(path) for path in logs if postgres.PASSWORD.encode() in path.read_bytes()]
    finally:
        stop_processes_of(ray_temp)
        shutil.rmtree(ray_temp, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-4000:]
    assert store_logs  # the Store actor's own log files were read ...
    assert leaked == []  # ... and no file of Ray's session logs holds the password
    out = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"driver over PostgreSQL: {time.monotonic() - started:.1f} s")
    assert "127.0.0.1" in out["unreachable"] and postgres.PASSWORD not in out["unreachable"]
    assert out["store_path"] == url.replace(postgres.PASSWORD, "***")
    assert postgres.PASSWORD not in done.stdout + done.stderr  # nor in any actor's log shown to the driver
    assert out["conflict"] == [3, 3]
    assert out["states"] == {f"pg-{n}": {"driver": [0, 1, 2]} for n in range(3)}
    store = open_backend(url)
    try:
        for n in range(3):
            history = store.history(f"pg-{n}")
            ids = [e.event_id for e in history]
            assert sorted(ids) == [f"pg-{n}-{i}" for i in range(3)]  # each event once
            versions = [e.version for e in history]
            assert versions == sorted(set(versions))
        assert store.list_sops(phase="running") == []
        assert store.unfinished_hosts() == []
    finally:
        store.close()


# -- versions (time travel) -------------------------------------------------------------------


def _versioned(sop_id: str, version: int, text: str, retention: dict[str, Any] | None = None) -> Any:
    return record(sop_id, version).model_copy(
        update={"state": {"type": "m:Doc", "data": {"text": text}}, "version_retention": retention}
    )


def test_every_commit_stores_a_version_that_reads_back(store: Store) -> None:
    previous = _versioned("v1", 0, "start " * 100)
    assert store.create(previous)
    for version in range(1, 20):
        new = _versioned("v1", version, previous.state["data"]["text"] + f"edit {version}")
        assert store.write([Commit(record=new, entry=entry("v1", version, f"e{version}")).rows(previous)]) == [None]
        previous = new
    infos = store.versions("v1")
    assert [info.version for info in infos] == list(range(20))
    assert infos[0].event == "Started" and infos[5].event == "DraftWritten" and infos[5].procedure == "Drafting"
    assert {info.kind for info in infos} == {"snapshot", "delta"}
    assert store.version("v1", 7) == {"procedure": previous.procedure, "state": {"type": "m:Doc", "data": {
        "text": "start " * 100 + "".join(f"edit {v}" for v in range(1, 8))}}}
    assert store.version("v1", 20) is None and store.versions("nobody") == [] and store.version("nobody", 0) is None


def test_a_refused_or_duplicate_commit_stores_no_version(store: Store) -> None:
    store.create(_versioned("v2", 0, "a"))
    store.write([Commit(record=_versioned("v2", 1, "b"), entry=entry("v2", 1, "e1")).rows()])
    (conflict,) = store.write([Commit(record=_versioned("v2", 3, "x"), entry=entry("v2", 3, "e3")).rows()])
    assert isinstance(conflict, VersionConflict)
    (duplicate,) = store.write([Commit(record=_versioned("v2", 2, "y"), entry=entry("v2", 2, "e1")).rows()])
    assert isinstance(duplicate, str)
    assert [info.version for info in store.versions("v2")] == [0, 1]


def test_a_retention_rule_prunes_whole_keyframe_chains(store: Store) -> None:
    retention = {"last": 3}
    previous = _versioned("v3", 0, "t", retention)
    store.create(previous)
    for version in range(1, 34):
        new = _versioned("v3", version, previous.state["data"]["text"] + "!", retention)
        store.write([Commit(record=new, entry=entry("v3", version, f"e{version}")).rows(previous)])
        previous = new
    kept = [info.version for info in store.versions("v3")]
    assert kept == list(range(16, 34))  # pruned at the keyframe 32: the chain of 31 (third newest) starts at 16
    assert store.version("v3", 15) is None and store.version("v3", 16) is not None
    assert len(store.history("v3")) == 33  # the event log is never pruned


# -- lazy sections and large checkpoints ----------------------------------------------------------


def test_blobs_are_stored_by_digest_once_and_survive_a_reopen(opener: Opener) -> None:
    store = opener()
    assert store.blob("a" * 64) is None
    store.put_blobs({"a" * 64: b"SOPJr[1,2]", "b" * 64: b"SOPJr[3]"})
    store.put_blobs({"a" * 64: b"SOPJr[1,2]"})  # again: harmless
    store.close()
    reopened = opener()
    assert reopened.blob("a" * 64) == b"SOPJr[1,2]"
    assert reopened.blob("b" * 64) == b"SOPJr[3]"


def _stored_record_bytes(location: str, sop_id: str) -> int:
    """Bytes the backend keeps for the SOP's checkpoint (PostgreSQL: after its own compression)."""
    if "://" not in location:
        with sqlite3.connect(location) as db:
            (stored,) = db.execute("SELECT record FROM sops WHERE sop_id = ?", (sop_id,)).fetchone()
        return len(stored)
    import psycopg

    with psycopg.connect(location, autocommit=True) as connection:
        row = connection.execute("SELECT pg_column_size(record) FROM sopy_sops WHERE sop_id = %s", (sop_id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_a_large_checkpoint_is_stored_compressed_and_reads_back_whole(opener: Opener, location: str) -> None:
    store = opener()
    big = record("big").model_copy(update={"state": {"type": "builtins:dict", "data": {"notes": ["a line"] * 5000}}})
    assert store.create(big)
    changed = big.model_copy(update={"version": 1, "state": {"type": "builtins:dict", "data": {"notes": ["x"] * 9000}}})
    assert store.write([Commit(record=changed, entry=entry("big", 1, "e1")).rows(big)]) == [None]
    json_bytes = len(changed.model_dump_json())
    stored = _stored_record_bytes(location, "big")
    assert stored < json_bytes / 5, (stored, json_bytes)
    loaded = store.load("big")
    assert loaded is not None and loaded.record == changed
    assert [s.host for s in store.list_sops()] == [changed.host]
    assert store.unfinished_hosts() == [changed.host]


def test_create_many_writes_new_sops_in_one_call_and_refuses_taken_ids(opener: Opener) -> None:
    store = opener()
    assert store.create(record("taken"))
    assert store.create_many([record("a"), record("taken", version=3), record("b")]) == [True, False, True]
    assert {s.sop_id for s in store.list_sops()} == {"a", "b", "taken"}
    taken = store.load("taken")
    assert taken is not None and taken.record.version == 0
    assert [info.version for info in store.versions("a")] == [0]
