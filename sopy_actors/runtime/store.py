"""Durable SOP records and the event log (plain Python; the Store actor wraps it).

A backend implements `Store`'s few methods; `SQLiteStore` is the embedded default: one file,
WAL journal, and `write` writes a whole batch in one transaction (group commit). PostgreSQL
(`store_postgres.PostgresStore`) is the backend for clusters; `store_actor.open_backend` picks by location.

Both backends keep the same rules: a commit's event id is logged once per SOP (a redelivered
event is answered with its stored entry), and a commit's version must follow the stored one
(`VersionConflict` otherwise). Each backend numbers its schema (a `schema_version` row in its
config table) and migrates an older store forward when it opens it; a newer one is refused.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from sopy_actors.errors import InputError, StateError
from sopy_actors.runtime.commits import CommitRows, WriteResult, plan_writes, record_row, timer_row
from sopy_actors.runtime.records import LogEntry, SOPRecord, SOPSummary, StoredSOP, Timer
from sopy_actors.runtime.versions import VersionInfo, first_version_row, prune_from, version_info, versions_upto
from sopy_actors.state.compression import deflate, inflate

__all__ = [
    "CHECKPOINT_COMPRESS_BYTES",
    "SCHEMA_VERSION",
    "SQLiteStore",
    "Store",
    "open_store",
    "redact_location",
    "refuse_newer_schema",
]


class Store(Protocol):
    """What the Store actor needs from a durable backend (`store_actor.open_backend` picks one).

    Calls block; the Store actor makes them from its one I/O thread. `write` is the group
    commit: every commit of the list in one transaction, an event id already logged for its
    SOP skipped (exactly-once), a commit whose version does not follow the stored one refused
    (`VersionConflict`, see `plan_writes`). `location` says where it writes, without secrets.
    """

    @property
    def location(self) -> str: ...

    def close(self) -> None: ...

    def create(self, record: SOPRecord) -> bool: ...

    def create_many(self, records: list[SOPRecord]) -> list[bool]: ...

    def write(self, commits: list[CommitRows]) -> list[WriteResult]: ...

    def logged(self, sop_id: str, event_id: str) -> LogEntry | None: ...

    def load(self, sop_id: str, recent: int = 256) -> StoredSOP | None: ...

    def load_many(self, sop_ids: list[str], recent: int = 256) -> list[StoredSOP | None]: ...

    def history(self, sop_id: str) -> list[LogEntry]: ...

    def children(self, sop_id: str) -> list[str]: ...

    def pending_notifications(self, host: str) -> list[SOPRecord]: ...

    def list_sops(self, phase: str | None = None, limit: int = 1000) -> list[SOPSummary]: ...

    def unfinished_hosts(self) -> list[str]: ...

    def add_timer(self, timer: Timer) -> bool: ...

    def timers(self, host: str) -> list[Timer]: ...

    def delete_timer(self, timer_id: str) -> None: ...

    def config(self, key: str, default: str) -> str: ...

    def versions(self, sop_id: str) -> list[VersionInfo]: ...

    def version(self, sop_id: str, version: int) -> dict[str, Any] | None: ...

    def put_blobs(self, blobs: dict[str, bytes]) -> None: ...

    def blob(self, digest: str) -> bytes | None: ...


_LOOKUP_CHUNK = 5000  # (sop id, event id) pairs per query: under SQLite's parameter limit

def _create_tables(db: sqlite3.Connection) -> None:
    """Schema 1: SOP records, the event log, settings, timers."""
    for statement in (
        """CREATE TABLE IF NOT EXISTS sops (
            sop_id TEXT PRIMARY KEY NOT NULL,
            name TEXT NOT NULL,
            parent_id TEXT,
            phase TEXT NOT NULL,
            procedure_name TEXT NOT NULL,
            version INTEGER NOT NULL,
            record TEXT NOT NULL,
            updated REAL NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS sops_parent ON sops(parent_id)",
        """CREATE TABLE IF NOT EXISTS events (
            sop_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            entry TEXT NOT NULL,
            PRIMARY KEY (sop_id, version),
            UNIQUE (sop_id, event_id)
        )""",
        "CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS timers (
            timer_id TEXT PRIMARY KEY NOT NULL,
            sop_id TEXT NOT NULL,
            host TEXT NOT NULL,
            due REAL NOT NULL,
            event TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS timers_host_due ON timers(host, due)",
    ):
        db.execute(statement)


def _add_parent_pending(db: sqlite3.Connection) -> None:
    """Schema 2: finished children whose parent is not told yet, indexed."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(sops)")}
    if "parent_pending" not in columns:  # a store written before versioning may have it
        db.execute("ALTER TABLE sops ADD COLUMN parent_pending INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX IF NOT EXISTS sops_parent_pending ON sops(parent_pending) WHERE parent_pending = 1")


def _add_versions(db: sqlite3.Connection) -> None:
    """Schema 3: every version's procedure and state (snapshot or delta, see `version_row`)."""
    db.execute(
        """CREATE TABLE IF NOT EXISTS versions (
            sop_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            event TEXT NOT NULL,
            procedure_name TEXT NOT NULL,
            description TEXT NOT NULL,
            body BLOB NOT NULL,
            PRIMARY KEY (sop_id, version)
        )"""
    )


def _add_blobs(db: sqlite3.Connection) -> None:
    """Schema 4: lazy state sections, by the SHA-256 of their JSON (see `sopy_actors.state.lazy`)."""
    db.execute("CREATE TABLE IF NOT EXISTS blobs (digest TEXT PRIMARY KEY NOT NULL, body BLOB NOT NULL, at REAL NOT NULL)")


def _add_host(db: sqlite3.Connection) -> None:
    """Schema 5: each SOP's host as a column, so that a checkpoint may be stored compressed."""
    if "host" not in {row[1] for row in db.execute("PRAGMA table_info(sops)")}:
        db.execute("ALTER TABLE sops ADD COLUMN host TEXT")
    db.execute("UPDATE sops SET host = json_extract(record, '$.host') WHERE host IS NULL")


# Migration to schema version N is _MIGRATIONS[N - 1]; each is idempotent, because a store
# written before schema versions existed has no version row and gets all of them.
_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _create_tables, _add_parent_pending, _add_versions, _add_blobs, _add_host,
)

CHECKPOINT_COMPRESS_BYTES = 4096
"""SQLite stores a checkpoint (`sops.record`) whose JSON is at least this long compressed (zstd or
zlib, `sopy_actors.state.compression`); shorter ones as JSON text. PostgreSQL compresses large
values itself (TOAST)."""
SCHEMA_VERSION = len(_MIGRATIONS)
"""The SQLite store's schema version (a `schema_version` row in its config table)."""

_UPSERT = (
    "INSERT INTO sops (sop_id, name, parent_id, phase, procedure_name, version, record, updated, parent_pending, host) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sop_id) DO UPDATE SET "
    "phase = excluded.phase, procedure_name = excluded.procedure_name, "
    "version = excluded.version, record = excluded.record, updated = excluded.updated, "
    "parent_pending = excluded.parent_pending, host = excluded.host"
)
# The same, writing only a version that follows the stored one (the last parameter: the
# commit has no event); a refused row counts 0 in `rowcount`.
_UPSERT_FOLLOWING = _UPSERT + " WHERE sops.version = excluded.version - 1 OR (? AND sops.version = excluded.version)"
_INSERT_VERSION = "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
# Drop the keyframe chains wholly before the first version a retention rule keeps (by count,
# by time; the current version is always kept): parameters sop id, first kept by count (or
# NULL), earliest time kept (or NULL), current version, sop id.
_PRUNE = (
    "DELETE FROM versions WHERE sop_id = ?4 AND version < ("
    "SELECT max(version) FROM versions WHERE sop_id = ?4 AND kind = 's' AND version <= "
    "coalesce(?1, (SELECT min(version) FROM versions WHERE sop_id = ?4 AND at >= ?2), ?3))"
)


def refuse_newer_schema(location: str, found: int, supported: int) -> None:
    """Raise if a store's schema is newer than this code's.

    Raises:
        StateError: `found` > `supported`; the message names both versions.
    """
    if found > supported:
        raise StateError(
            f"the store at {location} has schema version {found}, newer than schema version {supported} "
            "that this sopy_actors writes; upgrade sopy_actors on every node (a newer release wrote this "
            "store) or give another store"
        )


BUSY_SECONDS = 30.0  # how long a SQLite writer waits for another process's transaction


class SQLiteStore:
    """The embedded store: one SQLite file in WAL mode.

    Several processes of one machine may open the same file (the Store actor, and the hosts
    on its node writing their commits): every write is a `BEGIN IMMEDIATE` transaction, and a
    writer waits up to `BUSY_SECONDS` for another's to end.

    Args:
        path: the database file; its directory is created if missing.
        existing: open the file only if it exists (sqlite3.OperationalError if not), never
            create an empty store in its place.
    """

    def __init__(self, path: str | Path, *, existing: bool = False) -> None:
        self.path = Path(path)
        if not existing:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        mode = "rw" if existing else "rwc"  # rw: refuse a missing file instead of creating it
        uri = f"file:{quote(str(self.path.resolve()))}?mode={mode}"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None, timeout=BUSY_SECONDS)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def _migrate(self) -> None:
        """Bring the schema to `SCHEMA_VERSION` in one transaction.

        Raises:
            StateError: a newer sopy_actors wrote this store.
        """
        with self._transaction():
            found = self.schema_version()
            refuse_newer_schema(self.location, found, SCHEMA_VERSION)
            for migration in _MIGRATIONS[found:]:
                migration(self._db)
            if found != SCHEMA_VERSION:
                self._db.execute(
                    "INSERT INTO config VALUES ('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (str(SCHEMA_VERSION),),
                )

    def schema_version(self) -> int:
        """The store's schema version: 0 for a new file or one written before versions existed."""
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "config" not in tables:
            return 0
        row = self._db.execute("SELECT value FROM config WHERE key = 'schema_version'").fetchone()
        return 0 if row is None else int(row[0])

    @property
    def location(self) -> str:
        """The database file."""
        return str(self.path)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def create(self, record: SOPRecord) -> bool:
        """Insert a new SOP; False if the id is taken."""
        return self.create_many([record])[0]

    def create_many(self, records: list[SOPRecord]) -> list[bool]:
        """Insert new SOPs in one transaction; per record, False if its id is taken."""
        created = []
        with self._transaction():
            for record in records:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO sops (sop_id, name, parent_id, phase, procedure_name, version, record, "
                    "updated, parent_pending, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _packed(record_row(record)),
                )
                if cursor.rowcount == 1:
                    self._db.execute(_INSERT_VERSION, first_version_row(record)[:8])
                created.append(cursor.rowcount == 1)
        return created

    def write(self, commits: list[CommitRows]) -> list[WriteResult]:
        """Write rendered commits (`Commit.rows()`) in one transaction, each event id once.

        Returns:
            Per commit (see `plan_writes`): None when written; the stored entry (JSON) of an
            event whose id the SOP had committed already; or a `VersionConflict` when its
            version does not follow the stored one. Skipped and refused commits write nothing.
        """
        events = [rows[1] for rows in commits if rows[1] is not None]
        results: list[WriteResult] = [None] * len(commits)
        fresh = commits
        with self._transaction():
            # The common case costs no lookup: insert the log rows (the unique index refuses a
            # logged id) and the records (only where the version follows); only when something
            # was refused, look up what is stored and apply `plan_writes`.
            self._db.execute("SAVEPOINT fast")
            try:
                self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", events)
                written = self._db.executemany(_UPSERT_FOLLOWING, [(*_packed(rows[0]), rows[1] is None) for rows in commits])
                refused = written.rowcount != len(commits)
                if not refused:
                    self._write_versions(commits)
            except sqlite3.IntegrityError:
                refused = True
            if refused:
                self._db.execute("ROLLBACK TO fast")
            self._db.execute("RELEASE fast")
            if refused:
                stored = self._versions_of(sorted({rows[0][0] for rows in commits}))
                results, fresh = plan_writes(commits, stored, self._logged_among(events))
                self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", [rows[1] for rows in fresh if rows[1] is not None])
                self._db.executemany(_UPSERT, [_packed(rows[0]) for rows in fresh])
                self._write_versions(fresh)
            timers = [timer for rows in fresh for timer in rows[2]]
            if timers:
                self._db.executemany("INSERT OR IGNORE INTO timers VALUES (?, ?, ?, ?, ?)", timers)
        return results

    def _write_versions(self, commits: list[CommitRows]) -> None:
        """Insert the commits' version rows; prune where a snapshot carries a retention rule."""
        rows = [commit[3] for commit in commits if commit[3] is not None]
        self._db.executemany(_INSERT_VERSION, [row[:8] for row in rows])
        for row in rows:
            if row[8] is not None:
                first, since = prune_from(row[8], row[1], row[2])
                self._db.execute(_PRUNE, (first, since, row[1], row[0]))

    def versions(self, sop_id: str) -> list[VersionInfo]:
        """The stored versions of the SOP, oldest first (empty for an unknown SOP)."""
        rows = self._db.execute(
            "SELECT version, at, kind, event, procedure_name, description, length(body) FROM versions "
            "WHERE sop_id = ? ORDER BY version",
            (sop_id,),
        ).fetchall()
        return [version_info(sop_id, row) for row in rows]

    def version(self, sop_id: str, version: int) -> dict[str, Any] | None:
        """Version `version`'s `{"procedure", "state"}`, or None if it was pruned or never existed."""
        rows = self._db.execute(
            "SELECT version, kind, body FROM versions WHERE sop_id = ?1 AND version <= ?2 AND version >= "
            "(SELECT max(version) FROM versions WHERE sop_id = ?1 AND kind = 's' AND version <= ?2) ORDER BY version",
            (sop_id, version),
        ).fetchall()
        return versions_upto(rows, version)

    def put_blobs(self, blobs: dict[str, bytes]) -> None:
        """Store lazy sections by digest in one transaction (a digest stored already is kept)."""
        now = time.time()
        with self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO blobs VALUES (?, ?, ?)", [(d, b, now) for d, b in blobs.items()])

    def blob(self, digest: str) -> bytes | None:
        """The lazy section stored under `digest`, or None."""
        row = self._db.execute("SELECT body FROM blobs WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    def _versions_of(self, sop_ids: list[str]) -> dict[str, int]:
        """The stored version of each of these SOPs that the store holds."""
        found: dict[str, int] = {}
        for start in range(0, len(sop_ids), _LOOKUP_CHUNK):
            chunk = sop_ids[start : start + _LOOKUP_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows = self._db.execute(f"SELECT sop_id, version FROM sops WHERE sop_id IN ({marks})", chunk)
            found.update({sop_id: int(version) for sop_id, version in rows.fetchall()})
        return found

    def _logged_among(self, events: list[tuple[Any, ...]]) -> dict[tuple[str, str], str]:
        """The stored entries of those (sop id, event id) pairs that are logged already."""
        found: dict[tuple[str, str], str] = {}
        for start in range(0, len(events), _LOOKUP_CHUNK):
            chunk = events[start : start + _LOOKUP_CHUNK]
            pairs = ", ".join("(?, ?)" for _ in chunk)
            rows = self._db.execute(
                f"SELECT sop_id, event_id, entry FROM events WHERE (sop_id, event_id) IN (VALUES {pairs})",
                [value for event in chunk for value in (event[0], event[2])],
            )
            found.update({(sop_id, event_id): entry for sop_id, event_id, entry in rows.fetchall()})
        return found

    def logged(self, sop_id: str, event_id: str) -> LogEntry | None:
        """The log entry of `event_id` if the SOP committed it (an indexed lookup), else None."""
        row = self._db.execute(
            "SELECT entry FROM events WHERE sop_id = ? AND event_id = ?", (sop_id, event_id)
        ).fetchone()
        return None if row is None else LogEntry.model_validate_json(row[0])

    def load(self, sop_id: str, recent: int = 256) -> StoredSOP | None:
        """The SOP's record and its `recent` latest log entries, or None."""
        row = self._db.execute("SELECT record FROM sops WHERE sop_id = ?", (sop_id,)).fetchone()
        if row is None:
            return None
        entries = self._db.execute(
            "SELECT entry FROM events WHERE sop_id = ? ORDER BY version DESC LIMIT ?",
            (sop_id, recent),
        ).fetchall()
        ids = self._db.execute("SELECT event_id FROM events WHERE sop_id = ?", (sop_id,)).fetchall()
        return StoredSOP(
            record=SOPRecord.model_validate_json(_unpacked(row[0])),
            recent=[LogEntry.model_validate_json(e[0]) for e in reversed(entries)],
            event_ids=[event_id for (event_id,) in ids],
        )

    def load_many(self, sop_ids: list[str], recent: int = 256) -> list[StoredSOP | None]:
        """`load` of each SOP, in order: a host reloading many passivated SOPs asks once."""
        return [self.load(sop_id, recent) for sop_id in sop_ids]

    def history(self, sop_id: str) -> list[LogEntry]:
        """Every log entry of the SOP, oldest first."""
        rows = self._db.execute(
            "SELECT entry FROM events WHERE sop_id = ? ORDER BY version", (sop_id,)
        ).fetchall()
        return [LogEntry.model_validate_json(r[0]) for r in rows]

    def pending_notifications(self, host: str) -> list[SOPRecord]:
        """Finished children on `host` whose parents have not been told of their end yet."""
        rows = self._db.execute("SELECT record FROM sops WHERE parent_pending = 1 AND host = ?", (host,)).fetchall()
        return [SOPRecord.model_validate_json(_unpacked(r[0])) for r in rows]

    def children(self, sop_id: str) -> list[str]:
        """Ids of the SOPs started by this one."""
        rows = self._db.execute(
            "SELECT sop_id FROM sops WHERE parent_id = ? ORDER BY rowid", (sop_id,)
        ).fetchall()
        return [r[0] for r in rows]

    def list_sops(self, phase: str | None = None, limit: int = 1000) -> list[SOPSummary]:
        """Summaries of SOPs (of one phase, or all), newest first."""
        query = "SELECT sop_id, name, phase, procedure_name, version, parent_id, host FROM sops"
        params: tuple[Any, ...] = ()
        if phase is not None:
            query += " WHERE phase = ?"
            params = (phase,)
        rows = self._db.execute(query + " ORDER BY updated DESC LIMIT ?", (*params, limit))
        keys = ("sop_id", "name", "phase", "procedure", "version", "parent_id", "host")
        return [SOPSummary.model_validate(dict(zip(keys, row, strict=True))) for row in rows.fetchall()]

    def add_timer(self, timer: Timer) -> bool:
        """Store a timer; False if its id is taken (a retried schedule adds nothing)."""
        with self._transaction():
            cursor = self._db.execute("INSERT OR IGNORE INTO timers VALUES (?, ?, ?, ?, ?)", timer_row(timer))
        return cursor.rowcount == 1

    def timers(self, host: str) -> list[Timer]:
        """The pending timers of `host`'s SOPs, soonest first."""
        rows = self._db.execute(
            "SELECT timer_id, sop_id, host, due, event FROM timers WHERE host = ? ORDER BY due", (host,)
        ).fetchall()
        keys = ("timer_id", "sop_id", "host", "due")
        return [Timer(**dict(zip(keys, row[:4], strict=True)), event=json.loads(row[4])) for row in rows]

    def delete_timer(self, timer_id: str) -> None:
        """Forget a timer (it fired, or its SOP ended)."""
        with self._transaction():
            self._db.execute("DELETE FROM timers WHERE timer_id = ?", (timer_id,))

    def unfinished_hosts(self) -> list[str]:
        """Names of the hosts that still have work: SOPs running or waiting for a person, SOPs
        ended with a parent not told, timers.

        A new cluster on this store creates these hosts so that their SOPs continue.
        """
        rows = self._db.execute(
            "SELECT DISTINCT host FROM sops "
            "WHERE phase IN ('running', 'waiting_for_human') OR parent_pending = 1 "
            "UNION SELECT host FROM timers ORDER BY 1"
        ).fetchall()
        return [str(row[0]) for row in rows if row[0]]

    def config(self, key: str, default: str) -> str:
        """The value stored under `key`, storing `default` first if there is none."""
        with self._transaction():
            self._db.execute("INSERT OR IGNORE INTO config VALUES (?, ?)", (key, default))
        row = self._db.execute("SELECT value FROM config WHERE key = ?", (key,)).fetchone()
        return str(row[0])

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


POSTGRES_SCHEMES = ("postgresql", "postgres")
_SECRET_KEYS = ("password", "sslpassword")


def redact_location(location: str) -> str:
    """A store location fit to show: a URL's password (user part or query) replaced by `***`.

    A file path is returned as it is.
    """
    if "://" not in location:
        return location
    try:
        parts = urlsplit(location)
    except ValueError:
        return "<a malformed store URL>"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:***@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(key, "***" if key in _SECRET_KEYS else value) for key, value in pairs], safe="*/:,")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def open_store(location: str) -> Store:
    """The SQLite backend for `location`: a file path or a `sqlite:///path` URL.

    Database URLs (`postgresql://...`) are opened by `store_actor.open_backend`, which picks
    the backend by scheme (it sits above both backends: `store_postgres` builds on this module).

    Raises:
        InputError: a URL of another backend.
        StateError: the store's schema is newer than this code's.
    """
    scheme, separator, rest = location.partition("://")
    if not separator:
        return SQLiteStore(location)
    if scheme == "sqlite":
        return SQLiteStore(rest)
    if scheme in POSTGRES_SCHEMES:
        raise InputError(f"store {scheme}://... is opened by store_actor.open_backend, not open_store", fields=("store",))
    raise InputError(
        f"store {scheme}://... is not supported; give a SQLite file path or a postgresql:// URL", fields=("store",)
    )


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _packed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A `sops` row as SQLite stores it: the checkpoint compressed when it is large."""
    record: str = row[6]
    if len(record) < CHECKPOINT_COMPRESS_BYTES:
        return row
    return (*row[:6], deflate(record.encode(), threshold=CHECKPOINT_COMPRESS_BYTES), *row[7:])


def _unpacked(record: str | bytes) -> str | bytes:
    """A stored checkpoint as JSON: compressed ones are BLOBs, the others TEXT."""
    return inflate(record) if isinstance(record, bytes) else record
