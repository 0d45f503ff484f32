"""The Store actor: one per cluster, on the head node; group-commits checkpoints to its backend
(SQLite by default, PostgreSQL for a `postgresql://` location)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ray

from sopy_actors.errors import InputError, SopyError, StateError, error_to_wire
from sopy_actors.runtime.commits import CommitRows, WriteResult
from sopy_actors.runtime.group_commit import GroupCommit, commit_seconds
from sopy_actors.runtime.heap import settle
from sopy_actors.runtime.records import LogEntry, SOPRecord, SOPSummary, StoredSOP, Timer
from sopy_actors.runtime.store import POSTGRES_SCHEMES, SQLiteStore, Store, open_store, redact_location
from sopy_actors.runtime.versions import VersionInfo
from sopy_actors.telemetry.reporter import MetricsReporter, actor_restarted

__all__ = ["StoreActor", "open_backend"]

logger = logging.getLogger(__name__)


def open_backend(location: str) -> Store:
    """The Store backend for `location`, by its scheme: a SQLite file path (or `sqlite:///path`),
    or a PostgreSQL URL (`postgresql://user:password@host:port/database`, needs the `postgres` extra).

    Raises:
        InputError: a URL of a backend this version does not have, a malformed URL, or
            psycopg is not installed.
        RuntimeUnavailable: the database cannot be reached (the message names the host, never
            the password).
        StateError: the store's schema is newer than this code's.
    """
    scheme, separator, _ = location.partition("://")
    if not (separator and scheme in POSTGRES_SCHEMES):
        return open_store(location)
    try:
        from sopy_actors.runtime.store_postgres import PostgresStore
    except ImportError as error:
        raise InputError(
            f"store {scheme}://... needs psycopg ({error}); install it with pip install 'sopy-actors[postgres]'",
            fields=("store",),
        ) from None
    return PostgresStore(location)


@ray.remote
class StoreActor:
    """Async actor owning the Store backend (`open_backend`); every method runs on its event loop.

    Commits arriving while a batch is being written wait and go together in the next
    transaction (`GroupCommit`). Hosts on this actor's node write their commits to a SQLite
    backend directly (`local_file`, `runtime/local_commits.py`).
    Hosts send commits already rendered as rows (`Commit.rows()`), so no model crosses.

    A backend that cannot be opened (a database down) does not kill the actor: `opened()`
    says why, and every call tries to open it again before it fails with that error.
    """

    def __init__(self, location: str, local_dir: str | None = None) -> None:
        # One thread owns the connection: backend calls never block the event loop.
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sopy-store")
        self._location = location
        self._local_dir = local_dir or str(Path(location).parent)
        self._shown = redact_location(location)  # the only form that is logged or returned
        self._store: Store | None = None
        self._ever_opened = False
        self._metrics = MetricsReporter(ray.get_runtime_context().namespace, kind="store")
        self._commits = GroupCommit(self._write, commit_seconds(self._metrics))
        self._restarted = actor_restarted()  # a restarted Store must find its SQLite file
        with contextlib.suppress(SopyError):  # logged; `opened()` and every call try again
            self._open()
        settle()

    def _open(self) -> Store:
        """The backend, opened now if it is not (on the I/O thread, or in __init__).

        Raises:
            SopyError: it cannot be opened (RuntimeUnavailable, StateError, InputError).
        """
        if self._store is not None:
            return self._store
        if self._restarted and "://" not in self._location and not Path(self._location).exists():
            error = StateError(
                f"the Store restarted and its SQLite file {self._location} is gone (a head node replaced "
                "without its disk?): not starting an empty store in its place; bring the file back (the "
                "same store_dir on the new head), or keep SOPs in PostgreSQL to survive losing the head"
            )
            logger.error("store=<%s> | %s", self._shown, error)
            raise error
        try:
            self._store = open_backend(self._location)
        except SopyError as error:
            logger.error("store=<%s> | cannot open the store: %s", self._shown, error)
            raise
        self._ever_opened = True
        logger.info("store=<%s> | store ready", self._store.location)
        return self._store

    async def _run(self, method: str, *args: Any) -> Any:
        def call() -> Any:
            return getattr(self._open(), method)(*args)

        return await asyncio.get_running_loop().run_in_executor(self._io, call)

    async def opened(self) -> dict[str, Any] | None:
        """None when the backend is open (opening it now if needed); else `{"error": wire,
        "never_opened": bool}`, `never_opened` when no call of this actor could have used it."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._io, self._open)
        except SopyError as error:
            reconstructed = ray.get_runtime_context().was_current_actor_reconstructed
            return {"error": error_to_wire(error), "never_opened": not (self._ever_opened or reconstructed)}
        return None

    async def create_many(self, records: list[SOPRecord]) -> list[bool]:
        """Insert new SOP records in one transaction; per record, False if its id exists."""
        created: list[bool] = await self._run("create_many", records)
        return created

    async def commit_batch(self, commits: list[CommitRows]) -> list[str | None]:
        """Durably write rendered commits (`Commit.rows()`); returns once they are on disk.

        Returns:
            Per commit: None when written; or JSON: the stored entry of an event the SOP had
            committed already (the commit was skipped, see `Store.write`), or `{"error": wire}`
            of a `VersionConflict` (the commit's version does not follow the stored one;
            nothing of it was written).
        """
        return await self._commits.commit(commits)

    async def _write(self, commits: list[CommitRows]) -> list[WriteResult]:
        written: list[WriteResult] = await self._run("write", commits)
        return written

    async def load(self, sop_id: str, recent: int = 256) -> StoredSOP | None:
        """The SOP's checkpoint and recent log entries, or None."""
        result: StoredSOP | None = await self._run("load", sop_id, recent)
        return result

    async def load_many(self, sop_ids: list[str], recent: int = 256) -> list[StoredSOP | None]:
        """`load` of several SOPs in one call (a host reloading passivated SOPs)."""
        result: list[StoredSOP | None] = await self._run("load_many", sop_ids, recent)
        return result

    async def add_timer(self, timer: Timer) -> bool:
        """Store a timer durably; False if its id is taken."""
        return bool(await self._run("add_timer", timer))

    async def timers(self, host: str) -> list[Timer]:
        """The pending timers of a host's SOPs, soonest first."""
        result: list[Timer] = await self._run("timers", host)
        return result

    async def delete_timer(self, timer_id: str) -> None:
        """Forget a timer."""
        await self._run("delete_timer", timer_id)

    async def logged(self, sop_id: str, event_id: str) -> LogEntry | None:
        """The log entry of an event the SOP committed, or None (an indexed lookup)."""
        result: LogEntry | None = await self._run("logged", sop_id, event_id)
        return result

    async def history(self, sop_id: str) -> list[LogEntry]:
        """Every log entry of an SOP, oldest first."""
        result: list[LogEntry] = await self._run("history", sop_id)
        return result

    async def versions(self, sop_id: str) -> list[VersionInfo]:
        """The stored versions of an SOP, oldest first."""
        result: list[VersionInfo] = await self._run("versions", sop_id)
        return result

    async def version(self, sop_id: str, version: int) -> dict[str, Any] | None:
        """One stored version's `{"procedure", "state"}`, or None (pruned, or never existed)."""
        result: dict[str, Any] | None = await self._run("version", sop_id, version)
        return result

    async def put_blobs(self, blobs: dict[str, bytes]) -> None:
        """Store lazy state sections durably (digest → blob); returns once they are on disk."""
        await self._run("put_blobs", blobs)

    async def blob(self, digest: str) -> bytes | None:
        """The lazy state section stored under `digest`, or None."""
        result: bytes | None = await self._run("blob", digest)
        return result

    async def pending_notifications(self, host: str) -> list[SOPRecord]:
        """Finished children on `host` whose parents have not been told yet (see SOPHostActor)."""
        result: list[SOPRecord] = await self._run("pending_notifications", host)
        return result

    async def children(self, sop_id: str) -> list[str]:
        """Ids of an SOP's children."""
        result: list[str] = await self._run("children", sop_id)
        return result

    async def list_sops(self, phase: str | None = None, limit: int = 1000) -> list[SOPSummary]:
        """Summaries of the stored SOPs, newest first."""
        result: list[SOPSummary] = await self._run("list_sops", phase, limit)
        return result

    async def unfinished_hosts(self) -> list[str]:
        """Names of the hosts of SOPs still running or with a parent not told of their end."""
        result: list[str] = await self._run("unfinished_hosts")
        return result

    async def config(self, key: str, default: str) -> str:
        """A deployment-wide setting, set to `default` by the first caller."""
        result: str = await self._run("config", key, default)
        return result

    async def local_directory(self) -> str:
        """The head node's directory for local files (the Monitor's, agents' sessions): the
        SQLite file's directory, or the store directory given with a database URL."""
        return self._local_dir

    async def local_file(self) -> dict[str, str] | None:
        """The SQLite file and the Ray node it is on (`{"path", "node"}`), for hosts on that node
        to write their commits to it directly; None with a database server, or while the
        backend is not open."""
        if not isinstance(self._store, SQLiteStore):
            return None
        return {"path": self._store.location, "node": ray.get_runtime_context().get_node_id()}

    async def location(self) -> dict[str, str | int]:
        """Where this actor runs: its process id and Ray node id."""
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}

    async def path(self) -> str:
        """Where this store writes (its database file, or its URL without the password)."""
        return self._shown if self._store is None else self._store.location
