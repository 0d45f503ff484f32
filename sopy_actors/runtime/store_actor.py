"""The Store actor: one per cluster, on the head node; group-commits checkpoints to SQLite."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray

from sopy_actors.runtime.store import Commit, LogEntry, SOPRecord, SQLiteStore, StoredSOP

logger = logging.getLogger(__name__)

_MAX_BATCH = 512


@ray.remote
class StoreActor:
    """Async actor owning the SQLite store; every method runs on its event loop.

    Commits arriving while a batch is being written wait and go together in the next
    transaction, so a thousand concurrent SOPs cost a few transactions, not a thousand.
    """

    def __init__(self, path: str) -> None:
        # One thread owns the connection: SQLite calls never block the event loop.
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sopy-store")
        self._store = SQLiteStore(path)
        self._pending: list[tuple[Commit, asyncio.Future[None]]] = []
        self._wakeup: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        logger.info("path=<%s> | store ready", path)

    async def _run(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io, function, *args)

    async def create(self, record: SOPRecord) -> bool:
        """Insert a new SOP record; False if the id exists."""
        return bool(await self._run(self._store.create, record))

    async def commit(self, commit: Commit) -> None:
        """Durably write one checkpoint (with its log entry); returns once it is on disk."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((commit, future))
        self._ensure_writer()
        assert self._wakeup is not None
        self._wakeup.set()
        await future

    async def commit_batch(self, commits: list[Commit]) -> None:
        """Durably write several checkpoints in one go."""
        await asyncio.gather(*(self.commit(c) for c in commits))

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
                batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
                try:
                    await self._run(self._store.commit_many, [c for c, _ in batch])
                except Exception as error:  # noqa: BLE001 - each waiter gets the failure
                    logger.exception("commits=<%d> | store write failed", len(batch))
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def load(self, sop_id: str, recent: int = 256) -> StoredSOP | None:
        """The SOP's checkpoint and recent log entries, or None."""
        result: StoredSOP | None = await self._run(self._store.load, sop_id, recent)
        return result

    async def history(self, sop_id: str) -> list[LogEntry]:
        """Every log entry of an SOP, oldest first."""
        result: list[LogEntry] = await self._run(self._store.history, sop_id)
        return result

    async def children(self, sop_id: str) -> list[str]:
        """Ids of an SOP's children."""
        result: list[str] = await self._run(self._store.children, sop_id)
        return result

    async def list_sops(self, phase: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Summaries of the stored SOPs, newest first."""
        result: list[dict[str, Any]] = await self._run(self._store.list_sops, phase, limit)
        return result

    async def config(self, key: str, default: str) -> str:
        """A deployment-wide setting, set to `default` by the first caller."""
        result: str = await self._run(self._store.config, key, default)
        return result

    async def path(self) -> str:
        """The database file this store writes."""
        return str(self._store.path)

    async def ping(self) -> str:
        """Liveness check."""
        return "ok"
