"""The Store actor: one per cluster, on the head node; group-commits checkpoints to SQLite."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray

from sopy_actors.runtime.store import CommitRows, LogEntry, SOPRecord, SOPSummary, Store, StoredSOP, Timer, open_store
from sopy_actors.telemetry import names
from sopy_actors.telemetry.reporter import MetricsReporter

logger = logging.getLogger(__name__)

_MAX_BATCHES = 64  # commit_batch calls written in one transaction


@ray.remote
class StoreActor:
    """Async actor owning the Store backend (`open_store`); every method runs on its event loop.

    Commits arriving while a batch is being written wait and go together in the next
    transaction, so a thousand concurrent SOPs cost a few transactions, not a thousand.
    Hosts send commits already rendered as rows (`Commit.rows()`), so no model crosses.
    """

    def __init__(self, path: str) -> None:
        # One thread owns the connection: backend calls never block the event loop.
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sopy-store")
        self._store: Store = open_store(path)
        self._pending: list[tuple[list[CommitRows], asyncio.Future[list[str | None]]]] = []
        self._wakeup: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._metrics = MetricsReporter(ray.get_runtime_context().namespace, kind="store")
        logger.info("path=<%s> | store ready", path)

    async def _run(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io, function, *args)

    async def create(self, record: SOPRecord) -> bool:
        """Insert a new SOP record; False if the id exists."""
        return bool(await self._run(self._store.create, record))

    async def commit_batch(self, commits: list[CommitRows]) -> list[str | None]:
        """Durably write rendered commits (`Commit.rows()`); returns once they are on disk.

        Returns:
            Per commit: None, or the stored entry (JSON) of an event the SOP had committed
            already, whose commit was skipped (see `Store.write`).
        """
        future: asyncio.Future[list[str | None]] = asyncio.get_running_loop().create_future()
        self._pending.append((commits, future))
        self._ensure_writer()
        assert self._wakeup is not None
        self._wakeup.set()
        return await future

    def _ensure_writer(self) -> None:
        if self._writer is None or self._writer.done():
            self._wakeup = asyncio.Event()
            self._writer = asyncio.get_running_loop().create_task(self._write_forever())

    async def _write_forever(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending[:_MAX_BATCHES], self._pending[_MAX_BATCHES:]
                started = time.perf_counter()
                try:
                    results: list[str | None] = await self._run(
                        self._store.write, [rows for commits, _ in batch for rows in commits]
                    )
                    self._metrics.observe(names.STORE_COMMIT_DURATION, (), time.perf_counter() - started)
                except Exception as error:
                    logger.exception("commits=<%d> | store write failed", len(batch))
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                start = 0
                for commits, future in batch:
                    if not future.done():
                        future.set_result(results[start : start + len(commits)])
                    start += len(commits)

    async def load(self, sop_id: str, recent: int = 256) -> StoredSOP | None:
        """The SOP's checkpoint and recent log entries, or None."""
        result: StoredSOP | None = await self._run(self._store.load, sop_id, recent)
        return result

    async def add_timer(self, timer: Timer) -> bool:
        """Store a timer durably; False if its id is taken."""
        return bool(await self._run(self._store.add_timer, timer))

    async def timers(self, host: str) -> list[Timer]:
        """The pending timers of a host's SOPs, soonest first."""
        result: list[Timer] = await self._run(self._store.timers, host)
        return result

    async def delete_timer(self, timer_id: str) -> None:
        """Forget a timer."""
        await self._run(self._store.delete_timer, timer_id)

    async def logged(self, sop_id: str, event_id: str) -> LogEntry | None:
        """The log entry of an event the SOP committed, or None (an indexed lookup)."""
        result: LogEntry | None = await self._run(self._store.logged, sop_id, event_id)
        return result

    async def history(self, sop_id: str) -> list[LogEntry]:
        """Every log entry of an SOP, oldest first."""
        result: list[LogEntry] = await self._run(self._store.history, sop_id)
        return result

    async def pending_notifications(self, host: str) -> list[SOPRecord]:
        """Finished children on `host` whose parents have not been told yet (see SOPHostActor)."""
        result: list[SOPRecord] = await self._run(self._store.pending_notifications, host)
        return result

    async def children(self, sop_id: str) -> list[str]:
        """Ids of an SOP's children."""
        result: list[str] = await self._run(self._store.children, sop_id)
        return result

    async def list_sops(self, phase: str | None = None, limit: int = 1000) -> list[SOPSummary]:
        """Summaries of the stored SOPs, newest first."""
        result: list[SOPSummary] = await self._run(self._store.list_sops, phase, limit)
        return result

    async def unfinished_hosts(self) -> list[str]:
        """Names of the hosts of SOPs still running or with a parent not told of their end."""
        result: list[str] = await self._run(self._store.unfinished_hosts)
        return result

    async def config(self, key: str, default: str) -> str:
        """A deployment-wide setting, set to `default` by the first caller."""
        result: str = await self._run(self._store.config, key, default)
        return result

    async def path(self) -> str:
        """Where this store writes (its database file)."""
        return self._store.location
