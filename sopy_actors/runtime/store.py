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
from sopy_actors.state.compression import compress_json, decompress_json, deflate, inflate
from sopy_actors.state.deltas import apply_delta, json_delta

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
    "VersionInfo",
    "VersionRetention",
    "WriteResult",
    "open_store",
    "plan_writes",
    "redact_location",
    "version_row",
    "versions_upto",
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
    version_retention: dict[str, Any] | None = None  # VersionRetention data; None keeps every version
    forked_from: dict[str, Any] | None = None  # {"sop_id", "version"} of the SOP version it was forked from

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

    def rows(self, previous: SOPRecord | None = None) -> CommitRows:
        """The commit rendered as rows; done where the commit is made, so only strings travel.

        Args:
            previous: the SOP's record before this commit: a new version is stored as a delta
                against it when it is the version just before (see `version_row`).
        """
        entry = self.entry
        event = None if entry is None else (entry.sop_id, entry.version, entry.event_id, entry.model_dump_json())
        timers = tuple(_timer_row(timer) for timer in self.timers)
        row = _row(self.record)
        version = None if entry is None else version_row(self.record, previous, entry=entry, size_hint=len(row[6]))
        return row, event, timers, version


# A rendered commit: the `sops` row (id, name, parent, phase, procedure, version, record JSON,
# time, parent pending, host), the `events` row (id, version, event id, entry JSON) if an event caused it, the
# `timers` rows it arms, and the `versions` row of the new version (with an event; see
# `version_row`: its last item, the retention rule to apply, is not a column).
CommitRows = tuple[tuple[Any, ...], tuple[Any, ...] | None, tuple[tuple[Any, ...], ...], tuple[Any, ...] | None]


# -- versions (time travel) --------------------------------------------------------------------

KEYFRAME_EVERY = 16
"""Every 16th version (and the first, and any whose delta is not smaller) is a full snapshot;
the others are deltas against the version before. Reading version v replays at most 15 deltas."""

_VERSION_THRESHOLD = 256  # bytes of JSON below which a version's body is stored raw
_SNAPSHOT, _DELTA = "s", "d"


class VersionRetention(BaseModel):
    """Which old versions of an SOP the store keeps; the default (no field set) keeps all.

    Old versions are dropped in whole keyframe chains (a snapshot and the deltas built on it),
    when a new snapshot is written: the store keeps at least what the rule asks, and at most
    `KEYFRAME_EVERY - 1` versions more. The current version is always kept; the event log
    (`history()`) is never pruned.

    Attributes:
        last: keep the newest `last` versions.
        newer_than: keep the versions committed within the last `newer_than` seconds.
    """

    model_config = ConfigDict(frozen=True)

    last: int | None = Field(default=None, ge=1)
    newer_than: float | None = Field(default=None, gt=0)

    def model_post_init(self, context: Any) -> None:
        if self.last is not None and self.newer_than is not None:
            raise InputError("a version retention takes one of last= and newer_than=, not both", fields=("retention",))

    @property
    def keeps_all(self) -> bool:
        """No rule: every version is kept."""
        return self.last is None and self.newer_than is None


class VersionInfo(BaseModel):
    """One stored version of an SOP (`SOPHandle.versions()`).

    Attributes:
        version: the SOP's version number.
        event: the type of the event (or runtime step: `Rollback`, `Started`, `Forked`...) that made it.
        procedure: the procedure the SOP was in at that version.
        at: when it was committed (Unix time).
        description: what happened (the event's outcome, a rollback's reason).
        kind: "snapshot" or "delta" (against the version before).
        size: the bytes stored for it.
    """

    model_config = ConfigDict(frozen=True)

    sop_id: str
    version: int
    event: str
    procedure: str
    at: float
    description: str
    kind: Literal["snapshot", "delta"]
    size: int


def _content(record: SOPRecord) -> dict[str, Any]:
    return {"procedure": record.procedure, "state": record.state}


def version_row(
    record: SOPRecord,
    previous: SOPRecord | None,
    *,
    entry: LogEntry | None = None,
    event: str | None = None,
    description: str | None = None,
    size_hint: int = 0,
) -> tuple[Any, ...]:
    """The `versions` row of `record`'s version (procedure and state), compact.

    A delta against `previous` when that is the version just before and the version is not a
    keyframe (`KEYFRAME_EVERY`) and the delta is smaller than the snapshot (taken at once when
    under half of `size_hint`, the record's JSON length); else a snapshot. Bodies go through
    `compress_json` (raw under 256 bytes). Pure: computed on the host, where the commit is made.

    Returns:
        (sop id, version, time, kind, event, procedure name, description, body, retention):
        the last item is the SOP's retention rule `(last, newer_than)`, set on a snapshot row
        when the SOP has one (the store prunes then), else None; it is not a column.
    """
    content = _content(record)
    kind, body = _SNAPSHOT, b""
    if previous is not None and previous.version == record.version - 1 and record.version % KEYFRAME_EVERY:
        kind, body = _DELTA, compress_json(json_delta(_content(previous), content), threshold=_VERSION_THRESHOLD)
    # A delta under half the record's JSON is kept without encoding the snapshot (the common
    # case, and the costly half of this function); else the smaller of the two.
    if kind == _SNAPSHOT or len(body) * 2 >= size_hint:
        snapshot = compress_json(content, threshold=_VERSION_THRESHOLD)
        if kind == _SNAPSHOT or len(snapshot) <= len(body):
            kind, body = _SNAPSHOT, snapshot
    if entry is not None:
        event = event or entry.event_type
        if description is None:
            description = entry.outcome if entry.prompt is None else f"{entry.outcome}: {entry.prompt}"
    retention = VersionRetention.model_validate(record.version_retention or {})
    prune = None if kind == _DELTA or retention.keeps_all else (retention.last, retention.newer_than)
    at = entry.at if entry is not None else time.time()
    return (
        record.sop_id, record.version, at, kind, event or "?", str(record.procedure.get("name", "?")),
        description or "", body, prune,
    )


def versions_upto(rows: list[tuple[int, str, bytes]], version: int) -> dict[str, Any] | None:
    """Version `version`'s `{"procedure", "state"}` from its chain: rows (version, kind, body)
    from its snapshot up to it, in order; None when the chain is not whole (pruned or never
    written). Pure."""
    if not rows or rows[0][1] != _SNAPSHOT or rows[-1][0] != version:
        return None
    content: dict[str, Any] | None = None
    expected = rows[0][0]
    for number, kind, body in rows:
        if number != expected:
            return None
        value = decompress_json(bytes(body))
        content = value if kind == _SNAPSHOT else apply_delta(content, value)
        expected += 1
    return content


def version_info(sop_id: str, row: tuple[Any, ...]) -> VersionInfo:
    """A `VersionInfo` from the columns (version, at, kind, event, procedure, description, size)."""
    version, at, kind, event, procedure, description, size = row
    return VersionInfo(
        sop_id=sop_id, version=int(version), at=float(at), kind="snapshot" if kind == _SNAPSHOT else "delta",
        event=str(event), procedure=str(procedure), description=str(description), size=int(size),
    )


def first_version_row(record: SOPRecord) -> tuple[Any, ...]:
    """The `versions` row of a new SOP's first checkpoint (started, or forked from another)."""
    origin = record.forked_from
    if origin is None:
        return version_row(record, None, event="Started", description="started")
    described = f"forked from {origin.get('sop_id')} at version {origin.get('version')}"
    return version_row(record, None, event="Forked", description=described)


def prune_from(retention: tuple[int | None, float | None], version: int, now: float) -> tuple[int | None, float | None]:
    """The retention rule as the store applies it: (first version kept by count, earliest time kept)."""
    last, newer_than = retention
    return (None if last is None else version - last + 1), (None if newer_than is None else now - newer_than)


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

    def create_many(self, records: list[SOPRecord]) -> list[bool]: ...

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
        return self.create_many([record])[0]

    def create_many(self, records: list[SOPRecord]) -> list[bool]:
        """Insert new SOPs in one transaction; per record, False if its id is taken."""
        created = []
        with self._transaction():
            for record in records:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO sops (sop_id, name, parent_id, phase, procedure_name, version, record, "
                    "updated, parent_pending, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _packed(_row(record)),
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
        record.host,
    )


def _packed(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A `sops` row as SQLite stores it: the checkpoint compressed when it is large."""
    record: str = row[6]
    if len(record) < CHECKPOINT_COMPRESS_BYTES:
        return row
    return (*row[:6], deflate(record.encode(), threshold=CHECKPOINT_COMPRESS_BYTES), *row[7:])


def _unpacked(record: str | bytes) -> str | bytes:
    """A stored checkpoint as JSON: compressed ones are BLOBs, the others TEXT."""
    return inflate(record) if isinstance(record, bytes) else record


def _timer_row(timer: Timer) -> tuple[Any, ...]:
    return (timer.timer_id, timer.sop_id, timer.host, timer.due, json.dumps(timer.event))
