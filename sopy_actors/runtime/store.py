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
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from sopy_actors.core.options import Semantics
from sopy_actors.errors import InputError, StateError, VersionConflict

__all__ = [
    "Commit",
    "CommitRows",
    "LogEntry",
    "SOPRecord",
    "SOPSummary",
    "SQLiteStore",
    "Store",
    "StoredSOP",
    "Timer",
    "WriteResult",
    "open_store",
    "plan_writes",
    "redact_location",
]

Phase = Literal["running", "waiting_for_human", "done", "failed", "cancelled"]
"""A stored SOP's phase; `error` holds the failure (wire form) of a failed or cancelled one;
`waiting` says what a person is asked while the SOP is `waiting_for_human`."""


def _rebuild(cls: type[BaseModel], fields: dict[str, Any]) -> BaseModel:
    return cls.model_construct(**fields)


class _Transported(BaseModel):
    """Crosses actor boundaries in every commit: pickled as its field dict, rebuilt unvalidated.

    Pydantic's own pickling is several times slower than a dict's; these models are valid by
    construction and only travel between the runtime's actors.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self.__dict__)))


class SOPRecord(_Transported):
    """One SOP's checkpoint: everything needed to resume it after a crash."""

    model_config = ConfigDict(frozen=True)

    sop_id: str
    name: str
    host: str
    start_token: str = ""  # tells a retried start() apart from a second SOP with the same id
    parent_id: str | None = None
    phase: Phase = "running"
    procedure: dict[str, Any]
    state: dict[str, Any]
    version: int = 0
    retries: int = 0
    retry_limits: int = 3
    semantics: Semantics = Field(default_factory=Semantics)
    filters: dict[str, Any] = Field(default_factory=dict)
    senders: dict[str, int] = Field(default_factory=dict)
    runtime_env: dict[str, Any] | None = None
    last_prompt: str | None = None
    error: dict[str, Any] | None = None
    parent_notified: bool = False  # the parent has been told of this child's end
    entered_version: int = 0  # the version at which the SOP entered its current procedure
    recovery: dict[str, Any] | None = None  # the SOP's RecoveryPolicy (JSON), if it declares one
    recovery_history: list[dict[str, Any]] = Field(default_factory=list)  # RecoveryEntry data
    waiting: dict[str, Any] | None = None  # while waiting_for_human: reason, choices, cause, event, since
    agent_substitutes: dict[str, dict[str, Any]] = Field(default_factory=dict)  # failed agent -> fallback spec

    @property
    def active(self) -> bool:
        """Not ended: running, or waiting for a person."""
        return self.phase in ("running", "waiting_for_human")

    @property
    def parent_pending(self) -> bool:
        """A finished child whose parent has not been told yet."""
        return self.parent_id is not None and self.phase != "running" and not self.parent_notified


class LogEntry(_Transported):
    """One committed event of an SOP.

    `sender` is the event's own `sender` field (an agent's name for its tool events), if set.
    """

    model_config = ConfigDict(frozen=True)

    sop_id: str
    version: int
    event_id: str
    event_type: str
    sender: str | None = None
    outcome: str
    from_procedure: str
    to_procedure: str
    prompt: str | None = None
    at: float = Field(default_factory=time.time)


class Timer(BaseModel):
    """A durable timer: send `event` (wire form) to an SOP at `due` (Unix time), once."""

    model_config = ConfigDict(frozen=True)

    timer_id: str
    sop_id: str
    host: str
    due: float
    event: dict[str, Any]


class Commit(_Transported):
    """An atomic write: the new checkpoint, the log entry of the event that caused it (if one
    did) and the timers it arms (a recovery retry, a procedure's timeout)."""

    model_config = ConfigDict(frozen=True)

    record: SOPRecord
    entry: LogEntry | None = None
    timers: tuple[Timer, ...] = ()

    def rows(self) -> CommitRows:
        """The commit rendered as rows; done where the commit is made, so only strings travel."""
        entry = self.entry
        event = None if entry is None else (entry.sop_id, entry.version, entry.event_id, entry.model_dump_json())
        if not self.timers:
            return _row(self.record), event
        return _row(self.record), event, tuple(_timer_row(timer) for timer in self.timers)


# A rendered commit: the `sops` row (id, name, parent, phase, procedure, version, record JSON,
# time), the `events` row (id, version, event id, entry JSON) if an event caused it, and
# optionally the `timers` rows it arms.
CommitRows = tuple[tuple[Any, ...], tuple[Any, ...] | None] | tuple[
    tuple[Any, ...], tuple[Any, ...] | None, tuple[tuple[Any, ...], ...]
]


class SOPSummary(BaseModel):
    """One line of `list_sops()`: which SOP, where it is."""

    model_config = ConfigDict(frozen=True)

    sop_id: str
    name: str
    phase: Phase
    procedure: str
    version: int
    parent_id: str | None = None
    host: str = ""


class StoredSOP(BaseModel):
    """A record with its most recent events (their replies) and every committed event id.

    Attributes:
        record: the last checkpoint.
        recent: the latest log entries, oldest first (a redelivered event gets its reply).
        event_ids: the id of every event the SOP ever committed (for its `SeenIds` filter).
    """

    record: SOPRecord
    recent: list[LogEntry]
    event_ids: list[str] = Field(default_factory=list)


WriteResult = str | VersionConflict | None
"""What `Store.write` says of one commit: None (written), the stored entry (JSON) of its event
id, logged before (skipped: exactly-once), or a `VersionConflict` (refused, nothing written)."""


def plan_writes(
    commits: list[CommitRows], stored: dict[str, int], logged: dict[tuple[str, str], str]
) -> tuple[list[WriteResult], list[CommitRows]]:
    """Which commits of a batch to write, in order; the one rule both backends apply.

    A commit whose event id is logged for its SOP (before, or earlier in this batch) is
    skipped with that entry. Otherwise its version must follow the SOP's: stored + 1 with an
    event; stored or stored + 1 without one (such commits, e.g. "the parent was told", rewrite
    the current version). A commit for an SOP the store does not hold is written as it is.

    Args:
        commits: the batch, in commit order.
        stored: the stored version of the batch's SOPs (those the store holds).
        logged: the stored entry (JSON) of each (sop id, event id) of the batch already logged.

    Returns:
        The result of each commit and the commits to write, in order.
    """
    versions = dict(stored)
    entries = dict(logged)
    results: list[WriteResult] = []
    fresh: list[CommitRows] = []
    for rows in commits:
        sop_id, version, event = rows[0][0], rows[0][5], rows[1]
        if event is not None and (entry := entries.get((event[0], event[2]))) is not None:
            results.append(entry)
            continue
        current = versions.get(sop_id)
        if current is not None and version != current + 1 and not (event is None and version == current):
            results.append(VersionConflict(sop_id, stored=current, attempted=version))
            continue
        versions[sop_id] = version
        if event is not None:
            entries[(event[0], event[2])] = event[3]
        results.append(None)
        fresh.append(rows)
    return results, fresh


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

    def write(self, commits: list[CommitRows]) -> list[WriteResult]: ...

    def logged(self, sop_id: str, event_id: str) -> LogEntry | None: ...

    def load(self, sop_id: str, recent: int = 256) -> StoredSOP | None: ...

    def history(self, sop_id: str) -> list[LogEntry]: ...

    def children(self, sop_id: str) -> list[str]: ...

    def pending_notifications(self, host: str) -> list[SOPRecord]: ...

    def list_sops(self, phase: str | None = None, limit: int = 1000) -> list[SOPSummary]: ...

    def unfinished_hosts(self) -> list[str]: ...

    def add_timer(self, timer: Timer) -> bool: ...

    def timers(self, host: str) -> list[Timer]: ...

    def delete_timer(self, timer_id: str) -> None: ...

    def config(self, key: str, default: str) -> str: ...


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


# Migration to schema version N is _MIGRATIONS[N - 1]; each is idempotent, because a store
# written before schema versions existed has no version row and gets all of them.
_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_create_tables, _add_parent_pending)
SCHEMA_VERSION = len(_MIGRATIONS)
"""The SQLite store's schema version (a `schema_version` row in its config table)."""

_UPSERT = (
    "INSERT INTO sops (sop_id, name, parent_id, phase, procedure_name, version, record, updated, parent_pending) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sop_id) DO UPDATE SET "
    "phase = excluded.phase, procedure_name = excluded.procedure_name, "
    "version = excluded.version, record = excluded.record, updated = excluded.updated, "
    "parent_pending = excluded.parent_pending"
)
# The same, writing only a version that follows the stored one (the last parameter: the
# commit has no event); a refused row counts 0 in `rowcount`.
_UPSERT_FOLLOWING = _UPSERT + " WHERE sops.version = excluded.version - 1 OR (? AND sops.version = excluded.version)"


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


class SQLiteStore:
    """The embedded store: one SQLite file in WAL mode.

    Args:
        path: the database file; its directory is created if missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
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
        with self._transaction():
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO sops (sop_id, name, parent_id, phase, procedure_name, version, record, "
                "updated, parent_pending) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _row(record),
            )
        return cursor.rowcount == 1

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
                written = self._db.executemany(_UPSERT_FOLLOWING, [(*rows[0], rows[1] is None) for rows in commits])
                refused = written.rowcount != len(commits)
            except sqlite3.IntegrityError:
                refused = True
            if refused:
                self._db.execute("ROLLBACK TO fast")
            self._db.execute("RELEASE fast")
            if refused:
                stored = self._versions_of(sorted({rows[0][0] for rows in commits}))
                results, fresh = plan_writes(commits, stored, self._logged_among(events))
                self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", [rows[1] for rows in fresh if rows[1] is not None])
                self._db.executemany(_UPSERT, [rows[0] for rows in fresh])
            timers = [timer for rows in fresh if len(rows) == 3 for timer in rows[2]]
            if timers:
                self._db.executemany("INSERT OR IGNORE INTO timers VALUES (?, ?, ?, ?, ?)", timers)
        return results

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
            record=SOPRecord.model_validate_json(row[0]),
            recent=[LogEntry.model_validate_json(e[0]) for e in reversed(entries)],
            event_ids=[event_id for (event_id,) in ids],
        )

    def history(self, sop_id: str) -> list[LogEntry]:
        """Every log entry of the SOP, oldest first."""
        rows = self._db.execute(
            "SELECT entry FROM events WHERE sop_id = ? ORDER BY version", (sop_id,)
        ).fetchall()
        return [LogEntry.model_validate_json(r[0]) for r in rows]

    def pending_notifications(self, host: str) -> list[SOPRecord]:
        """Finished children on `host` whose parents have not been told of their end yet."""
        rows = self._db.execute("SELECT record FROM sops WHERE parent_pending = 1").fetchall()
        records = [SOPRecord.model_validate_json(r[0]) for r in rows]
        return [record for record in records if record.host == host]

    def children(self, sop_id: str) -> list[str]:
        """Ids of the SOPs started by this one."""
        rows = self._db.execute(
            "SELECT sop_id FROM sops WHERE parent_id = ? ORDER BY rowid", (sop_id,)
        ).fetchall()
        return [r[0] for r in rows]

    def list_sops(self, phase: str | None = None, limit: int = 1000) -> list[SOPSummary]:
        """Summaries of SOPs (of one phase, or all), newest first."""
        query = "SELECT sop_id, name, phase, procedure_name, version, parent_id, json_extract(record, '$.host') FROM sops"
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
            cursor = self._db.execute("INSERT OR IGNORE INTO timers VALUES (?, ?, ?, ?, ?)", _timer_row(timer))
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
            "SELECT DISTINCT json_extract(record, '$.host') FROM sops "
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


def _row(record: SOPRecord) -> tuple[Any, ...]:
    return (
        record.sop_id,
        record.name,
        record.parent_id,
        record.phase,
        record.procedure.get("name", "?"),
        record.version,
        record.model_dump_json(),
        time.time(),
        int(record.parent_pending),
    )


def _timer_row(timer: Timer) -> tuple[Any, ...]:
    return (timer.timer_id, timer.sop_id, timer.host, timer.due, json.dumps(timer.event))
