"""The PostgreSQL Store backend: SOP records and the event log in a database any node can reach.

`PostgresStore` keeps `SQLiteStore`'s rules (see `store.py`): a group commit is one
transaction; an event id is logged once per SOP; a commit whose version does not follow the
stored one is refused (`VersionConflict`). Writers of one database serialize per SOP: a write
locks the rows of its SOPs (`SELECT ... FOR UPDATE`, in id order, so two writers cannot
deadlock) before it reads their versions and logged event ids, so two Store actors on one
database (a split cluster) cannot both commit a version.

Connections come from a small psycopg_pool pool (checked before use, so a restarted server
costs one failed call, not a dead Store). The URL's password is never shown: `location`, log
lines and error messages carry the URL with the password replaced by `***`.

Tables are prefixed `sopy_` (the database may hold others); one database (or one schema, with
`?options=-csearch_path%3Dname` in the URL) holds one deployment's store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from sopy_actors.errors import InputError, RuntimeUnavailable
from sopy_actors.runtime.commits import Commit, CommitRows, WriteResult, plan_writes
from sopy_actors.runtime.records import LogEntry, SOPRecord, SOPSummary, StoredSOP, Timer
from sopy_actors.runtime.store import redact_location, refuse_newer_schema
from sopy_actors.runtime.versions import VersionInfo, first_version_row, prune_from, version_info, versions_upto

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

logger = logging.getLogger(__name__)

_CONNECT_TIMEOUT = 10  # seconds; libpq's connect_timeout (whole seconds)
_POOL_SIZE = 4
_WRITE_ATTEMPTS = 3  # a unique violation means a concurrent writer won a race: read again
_SECRET_KEYS = ("password", "sslpassword")  # libpq parameters that hold secrets
_LOCK_KEY = 0x50_4F_50_59  # pg_advisory_xact_lock key: one migration at a time per database

# Migration to schema version N is _MIGRATIONS[N - 1]: statements run in one transaction.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS sopy_config (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS sopy_sops (
            sop_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            parent_id TEXT,
            phase TEXT NOT NULL,
            procedure_name TEXT NOT NULL,
            version BIGINT NOT NULL,
            record TEXT NOT NULL,
            updated DOUBLE PRECISION NOT NULL,
            parent_pending INTEGER NOT NULL DEFAULT 0,
            host TEXT GENERATED ALWAYS AS (record::jsonb ->> 'host') STORED,
            created BIGSERIAL
        )""",
        "CREATE INDEX IF NOT EXISTS sopy_sops_parent ON sopy_sops (parent_id, created)",
        "CREATE INDEX IF NOT EXISTS sopy_sops_phase ON sopy_sops (phase, updated)",
        "CREATE INDEX IF NOT EXISTS sopy_sops_parent_pending ON sopy_sops (host) WHERE parent_pending = 1",
        """CREATE TABLE IF NOT EXISTS sopy_events (
            sop_id TEXT NOT NULL,
            version BIGINT NOT NULL,
            event_id TEXT NOT NULL,
            entry TEXT NOT NULL,
            PRIMARY KEY (sop_id, version),
            UNIQUE (sop_id, event_id)
        )""",
        """CREATE TABLE IF NOT EXISTS sopy_timers (
            timer_id TEXT PRIMARY KEY,
            sop_id TEXT NOT NULL,
            host TEXT NOT NULL,
            due DOUBLE PRECISION NOT NULL,
            event TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS sopy_timers_host_due ON sopy_timers (host, due)",
    ),
    (  # 2: every version's procedure and state (snapshot or delta, see runtime.versions.version_row)
        """CREATE TABLE IF NOT EXISTS sopy_versions (
            sop_id TEXT NOT NULL,
            version BIGINT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL,
            event TEXT NOT NULL,
            procedure_name TEXT NOT NULL,
            description TEXT NOT NULL,
            body BYTEA NOT NULL,
            PRIMARY KEY (sop_id, version)
        )""",
    ),
    (  # 3: lazy state sections, by the SHA-256 of their JSON (see sopy_actors.state.lazy)
        """CREATE TABLE IF NOT EXISTS sopy_blobs (
            digest TEXT PRIMARY KEY,
            body BYTEA NOT NULL,
            at DOUBLE PRECISION NOT NULL
        )""",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)
"""The PostgreSQL store's schema version (a `schema_version` row in `sopy_config`)."""

_SOP_COLUMNS = "sop_id, name, parent_id, phase, procedure_name, version, record, updated, parent_pending"
_UPSERT = (
    f"INSERT INTO sopy_sops ({_SOP_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (sop_id) DO UPDATE SET phase = excluded.phase, procedure_name = excluded.procedure_name, "
    "version = excluded.version, record = excluded.record, updated = excluded.updated, "
    "parent_pending = excluded.parent_pending"
)
_INSERT_VERSION = "INSERT INTO sopy_versions VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
# See runtime.store._PRUNE (SQLite): the keyframe chains wholly before the first version the rule keeps.
_PRUNE = (
    "DELETE FROM sopy_versions WHERE sop_id = %(sop)s AND version < ("
    "SELECT max(version) FROM sopy_versions WHERE sop_id = %(sop)s AND kind = 's' AND version <= "
    "coalesce(%(first)s::bigint, (SELECT min(version) FROM sopy_versions WHERE sop_id = %(sop)s "
    "AND at >= %(since)s::double precision), %(current)s::bigint))"
)


class PostgresStore:
    """The Store in PostgreSQL (psycopg 3, a small connection pool).

    Opening connects once, migrates the schema (one transaction, under an advisory lock) and
    opens the pool. Calls block; the Store actor makes them from its one I/O thread.

    Args:
        url: `postgresql://user:password@host:port/database` (libpq URL syntax, query
            parameters allowed).

    Raises:
        InputError: the URL is malformed.
        RuntimeUnavailable: the database cannot be reached or refuses the login (the message
            names the host, never the password).
        StateError: the store's schema is newer than this code's.
    """

    def __init__(self, url: str) -> None:
        self._location = redact_location(url)
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as error:
            raise InputError(
                f"store URL {self._location} is malformed: {self._scrub(str(error), [])}", fields=("store",)
            ) from None
        self._secrets = [str(params[key]) for key in _SECRET_KEYS if params.get(key)]
        userinfo = urlsplit(url).netloc.rpartition("@")[0]
        if ":" in userinfo:  # the password as written (percent-encoded) too
            self._secrets.append(userinfo.partition(":")[2])
        try:
            with psycopg.connect(url, connect_timeout=_CONNECT_TIMEOUT) as connection:
                self._migrate(connection)
        except psycopg.Error as error:
            raise self._unavailable("cannot open", error) from None
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            url,
            min_size=1,
            max_size=_POOL_SIZE,
            open=False,
            name="sopy-store",
            kwargs={"connect_timeout": _CONNECT_TIMEOUT},
            check=ConnectionPool.check_connection,
            timeout=30.0,
        )
        try:
            self._pool.open(wait=True, timeout=float(_CONNECT_TIMEOUT))
        except PoolTimeout as error:
            self._pool.close()
            raise self._unavailable("cannot open a connection pool to", error) from None

    @property
    def location(self) -> str:
        """The database URL, its password replaced by `***`."""
        return self._location

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()

    # -- schema ------------------------------------------------------------------------------

    def _migrate(self, connection: psycopg.Connection[tuple[Any, ...]]) -> None:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            found = self._schema_version(connection)
            refuse_newer_schema(self._location, found, SCHEMA_VERSION)
            for statements in _MIGRATIONS[found:]:
                for statement in statements:
                    connection.execute(statement)
            if found != SCHEMA_VERSION:
                connection.execute(
                    "INSERT INTO sopy_config VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(SCHEMA_VERSION),),
                )
                logger.info("store=<%s>, schema=<%d→%d> | schema migrated", self._location, found, SCHEMA_VERSION)

    @staticmethod
    def _schema_version(connection: psycopg.Connection[tuple[Any, ...]]) -> int:
        exists = connection.execute("SELECT to_regclass('sopy_config') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return 0
        row = connection.execute("SELECT value FROM sopy_config WHERE key = 'schema_version'").fetchone()
        return 0 if row is None else int(row[0])

    def schema_version(self) -> int:
        """The store's schema version (0: an empty database)."""
        with self._connection() as connection:
            return self._schema_version(connection)

    # -- errors ------------------------------------------------------------------------------

    def _scrub(self, text: str, secrets: list[str] | None = None) -> str:
        for secret in self._secrets if secrets is None else secrets:
            text = text.replace(secret, "***")
        return text

    def _unavailable(self, doing: str, error: BaseException) -> RuntimeUnavailable:
        detail = self._scrub(" ".join(str(error).split()))
        return RuntimeUnavailable(f"{doing} the PostgreSQL store at {self._location}: {detail}")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """A pooled connection; its transaction commits at the end of the block.

        Raises:
            RuntimeUnavailable: the database cannot be reached (lost, or no connection in time).
        """
        try:
            with self._pool.connection() as connection:
                yield connection
        except (psycopg.OperationalError, PoolTimeout) as error:
            raise self._unavailable("lost", error) from None

    # -- writes ------------------------------------------------------------------------------

    def create(self, record: SOPRecord) -> bool:
        """Insert a new SOP; False if the id is taken."""
        return self.create_many([record])[0]

    def create_many(self, records: list[SOPRecord]) -> list[bool]:
        """Insert new SOPs in one transaction; per record, False if its id is taken."""
        created = []
        with self._connection() as connection, connection.transaction():
            for record in records:
                cursor = connection.execute(
                    f"INSERT INTO sopy_sops ({_SOP_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (sop_id) DO NOTHING",
                    Commit(record=record).rows()[0][:9],  # its host is a generated column here
                )
                if cursor.rowcount == 1:
                    connection.execute(_INSERT_VERSION, first_version_row(record)[:8])
                created.append(cursor.rowcount == 1)
        return created

    def write(self, commits: list[CommitRows]) -> list[WriteResult]:
        """Write rendered commits (`Commit.rows()`) in one transaction, each event id once.

        Returns:
            Per commit, as `SQLiteStore.write` (see `plan_writes`): None when written, the
            stored entry (JSON) of an event id logged before, or a `VersionConflict`.
        """
        if not commits:
            return []
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                return self._write_once(commits)
            except psycopg.errors.UniqueViolation:
                if attempt == _WRITE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _write_once(self, commits: list[CommitRows]) -> list[WriteResult]:
        sop_ids = sorted({rows[0][0] for rows in commits})
        events = [rows[1] for rows in commits if rows[1] is not None]
        with self._connection() as connection, connection.transaction(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT sop_id, version FROM sopy_sops WHERE sop_id = ANY(%s) ORDER BY sop_id FOR UPDATE", (sop_ids,)
            )
            stored = {str(sop_id): int(version) for sop_id, version in cursor.fetchall()}
            logged: dict[tuple[str, str], str] = {}
            if events:
                cursor.execute(
                    "SELECT e.sop_id, e.event_id, e.entry FROM sopy_events e "
                    "JOIN unnest(%s::text[], %s::text[]) AS wanted(sop_id, event_id) "
                    "ON e.sop_id = wanted.sop_id AND e.event_id = wanted.event_id",
                    ([event[0] for event in events], [event[2] for event in events]),
                )
                logged = {(str(sop_id), str(event_id)): str(entry) for sop_id, event_id, entry in cursor.fetchall()}
            results, fresh = plan_writes(commits, stored, logged)
            fresh_events = [rows[1] for rows in fresh if rows[1] is not None]
            if fresh_events:
                cursor.executemany("INSERT INTO sopy_events VALUES (%s, %s, %s, %s)", fresh_events)
            if fresh:
                cursor.executemany(_UPSERT, [rows[0][:9] for rows in fresh])  # host: generated
            timers = [timer for rows in fresh for timer in rows[2]]
            if timers:
                cursor.executemany("INSERT INTO sopy_timers VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", timers)
            versions = [rows[3] for rows in fresh if rows[3] is not None]
            if versions:
                cursor.executemany(_INSERT_VERSION, [row[:8] for row in versions])
            for row in versions:
                if row[8] is not None:
                    first, since = prune_from(row[8], row[1], row[2])
                    cursor.execute(_PRUNE, {"sop": row[0], "first": first, "since": since, "current": row[1]})
        return results

    def versions(self, sop_id: str) -> list[VersionInfo]:
        """The stored versions of the SOP, oldest first (empty for an unknown SOP)."""
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT version, at, kind, event, procedure_name, description, octet_length(body) FROM sopy_versions "
                "WHERE sop_id = %s ORDER BY version",
                (sop_id,),
            ).fetchall()
        return [version_info(sop_id, row) for row in rows]

    def version(self, sop_id: str, version: int) -> dict[str, Any] | None:
        """Version `version`'s `{"procedure", "state"}`, or None if it was pruned or never existed."""
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT version, kind, body FROM sopy_versions WHERE sop_id = %(sop)s AND version <= %(v)s "
                "AND version >= (SELECT max(version) FROM sopy_versions WHERE sop_id = %(sop)s AND kind = 's' "
                "AND version <= %(v)s) ORDER BY version",
                {"sop": sop_id, "v": version},
            ).fetchall()
        return versions_upto([(int(number), str(kind), bytes(body)) for number, kind, body in rows], version)

    def put_blobs(self, blobs: dict[str, bytes]) -> None:
        """Store lazy sections by digest in one transaction (a digest stored already is kept)."""
        now = time.time()
        with self._connection() as connection, connection.transaction(), connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO sopy_blobs VALUES (%s, %s, %s) ON CONFLICT (digest) DO NOTHING",
                [(digest, body, now) for digest, body in blobs.items()],
            )

    def blob(self, digest: str) -> bytes | None:
        """The lazy section stored under `digest`, or None."""
        with self._connection() as connection:
            row = connection.execute("SELECT body FROM sopy_blobs WHERE digest = %s", (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    # -- reads -------------------------------------------------------------------------------

    def logged(self, sop_id: str, event_id: str) -> LogEntry | None:
        """The log entry of `event_id` if the SOP committed it (an indexed lookup), else None."""
        with self._connection() as connection:
            row = connection.execute(
                "SELECT entry FROM sopy_events WHERE sop_id = %s AND event_id = %s", (sop_id, event_id)
            ).fetchone()
        return None if row is None else LogEntry.model_validate_json(row[0])

    def load(self, sop_id: str, recent: int = 256) -> StoredSOP | None:
        """The SOP's record and its `recent` latest log entries, or None."""
        (stored,) = self.load_many([sop_id], recent)
        return stored

    def load_many(self, sop_ids: list[str], recent: int = 256) -> list[StoredSOP | None]:
        """`load` of each SOP, in order, on one connection."""
        with self._connection() as connection:
            return [_load(connection, sop_id, recent) for sop_id in sop_ids]

    def history(self, sop_id: str) -> list[LogEntry]:
        """Every log entry of the SOP, oldest first."""
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT entry FROM sopy_events WHERE sop_id = %s ORDER BY version", (sop_id,)
            ).fetchall()
        return [LogEntry.model_validate_json(entry) for (entry,) in rows]

    def children(self, sop_id: str) -> list[str]:
        """Ids of the SOPs started by this one, in the order they were created."""
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT sop_id FROM sopy_sops WHERE parent_id = %s ORDER BY created", (sop_id,)
            ).fetchall()
        return [str(child) for (child,) in rows]

    def pending_notifications(self, host: str) -> list[SOPRecord]:
        """Finished children on `host` whose parents have not been told of their end yet."""
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT record FROM sopy_sops WHERE parent_pending = 1 AND host = %s ORDER BY created", (host,)
            ).fetchall()
        return [SOPRecord.model_validate_json(record) for (record,) in rows]

    def list_sops(self, phase: str | None = None, limit: int = 1000) -> list[SOPSummary]:
        """Summaries of SOPs (of one phase, or all), newest first."""
        query = "SELECT sop_id, name, phase, procedure_name, version, parent_id, host FROM sopy_sops"
        params: tuple[Any, ...] = ()
        if phase is not None:
            query += " WHERE phase = %s"
            params = (phase,)
        with self._connection() as connection:
            rows = connection.execute(query + " ORDER BY updated DESC LIMIT %s", (*params, limit)).fetchall()
        keys = ("sop_id", "name", "phase", "procedure", "version", "parent_id", "host")
        return [SOPSummary.model_validate(dict(zip(keys, row, strict=True))) for row in rows]

    def unfinished_hosts(self) -> list[str]:
        """Names of the hosts that still have work (see `SQLiteStore.unfinished_hosts`)."""
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT host FROM sopy_sops WHERE phase IN ('running', 'waiting_for_human') OR parent_pending = 1 "
                "UNION SELECT host FROM sopy_timers ORDER BY 1"
            ).fetchall()
        return [str(host) for (host,) in rows if host]

    # -- timers and settings -----------------------------------------------------------------

    def add_timer(self, timer: Timer) -> bool:
        """Store a timer; False if its id is taken (a retried schedule adds nothing)."""
        with self._connection() as connection:
            cursor = connection.execute(
                "INSERT INTO sopy_timers VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (timer.timer_id, timer.sop_id, timer.host, timer.due, json.dumps(timer.event)),
            )
            return cursor.rowcount == 1

    def timers(self, host: str) -> list[Timer]:
        """The pending timers of `host`'s SOPs, soonest first."""
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT timer_id, sop_id, host, due, event FROM sopy_timers WHERE host = %s ORDER BY due", (host,)
            ).fetchall()
        return [
            Timer(timer_id=timer_id, sop_id=sop_id, host=owner, due=due, event=json.loads(event))
            for timer_id, sop_id, owner, due, event in rows
        ]

    def delete_timer(self, timer_id: str) -> None:
        """Forget a timer (it fired, or its SOP ended)."""
        with self._connection() as connection:
            connection.execute("DELETE FROM sopy_timers WHERE timer_id = %s", (timer_id,))

    def config(self, key: str, default: str) -> str:
        """The value stored under `key`, storing `default` first if there is none."""
        with self._connection() as connection:
            connection.execute("INSERT INTO sopy_config VALUES (%s, %s) ON CONFLICT DO NOTHING", (key, default))
            row = connection.execute("SELECT value FROM sopy_config WHERE key = %s", (key,)).fetchone()
        assert row is not None
        return str(row[0])


def _load(connection: psycopg.Connection[tuple[Any, ...]], sop_id: str, recent: int) -> StoredSOP | None:
    row = connection.execute("SELECT record FROM sopy_sops WHERE sop_id = %s", (sop_id,)).fetchone()
    if row is None:
        return None
    entries = connection.execute(
        "SELECT entry FROM sopy_events WHERE sop_id = %s ORDER BY version DESC LIMIT %s", (sop_id, recent)
    ).fetchall()
    ids = connection.execute("SELECT event_id FROM sopy_events WHERE sop_id = %s", (sop_id,)).fetchall()
    return StoredSOP(
        record=SOPRecord.model_validate_json(row[0]),
        recent=[LogEntry.model_validate_json(entry) for (entry,) in reversed(entries)],
        event_ids=[str(event_id) for (event_id,) in ids],
    )
