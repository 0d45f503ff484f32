"""Group commit: commits that arrive while a transaction is being written go together in the
next one, so a thousand concurrent SOPs cost a few transactions, not a thousand.

Used by whoever writes a Store backend: the Store actor, and a host writing its node's SQLite
file directly (`runtime/local_commits.py`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable

from sopy_actors.errors import VersionConflict, error_to_wire
from sopy_actors.runtime.commits import CommitRows, WriteResult
from sopy_actors.telemetry import names
from sopy_actors.telemetry.reporter import MetricsReporter

__all__ = ["GroupCommit", "commit_seconds", "reported"]

logger = logging.getLogger(__name__)

_MAX_COMMITS = 2_000  # commits written in one transaction (unless one call brings more)


def reported(result: WriteResult) -> str | None:
    """One commit's result as hosts read it: a conflict becomes its error's wire form."""
    if not isinstance(result, VersionConflict):
        return result
    logger.warning(
        "sop=<%s>, stored=<%d>, attempted=<%d> | version conflict: commit refused",
        result.sop_id, result.stored, result.attempted,
    )
    return json.dumps({"error": error_to_wire(result)})


def commit_seconds(metrics: MetricsReporter) -> Callable[[float], None]:
    """Observes a transaction's duration as `sopy_store_commit_duration_seconds` on `metrics`."""
    return functools.partial(metrics.observe, names.STORE_COMMIT_DURATION, ())


_Pending = list[tuple[list[CommitRows], "asyncio.Future[list[str | None]]"]]  # commit calls waiting


def _take(pending: _Pending, limit: int) -> tuple[_Pending, _Pending]:
    """The first calls of `pending` with up to `limit` commits in all (at least one call), and the rest."""
    count = 0
    for index, (commits, _) in enumerate(pending):
        count += len(commits)
        if count > limit and index:
            return pending[:index], pending[index:]
    return pending, []


class GroupCommit:
    """Writes batches of rendered commits through `write`, one transaction at a time.

    Args:
        write: writes commits in one transaction (`Store.write`, run off the event loop).
        observe: takes each transaction's duration in seconds (`sopy_store_commit_duration_seconds`).
        expected: failures of `write` its callers handle (raised to them, not logged here).

    Runs on the event loop of an async actor; not thread-safe.
    """

    def __init__(
        self,
        write: Callable[[list[CommitRows]], Awaitable[list[WriteResult]]],
        observe: Callable[[float], None],
        expected: tuple[type[Exception], ...] = (),
    ) -> None:
        self._write = write
        self._observe = observe
        self._expected = expected
        self._pending: _Pending = []
        self._wakeup: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None

    async def commit(self, commits: list[CommitRows]) -> list[str | None]:
        """Durably write rendered commits (`Commit.rows()`); returns once they are on disk.

        Returns:
            Per commit: None when written; or JSON: the stored entry of an event the SOP had
            committed already (skipped, see `Store.write`), or `{"error": wire}` of a
            `VersionConflict` (nothing of it was written).

        Raises:
            Exception: what the backend raised; nothing of this batch was written.
        """
        future: asyncio.Future[list[str | None]] = asyncio.get_running_loop().create_future()
        self._pending.append((commits, future))
        if self._writer is None or self._writer.done():
            self._wakeup = asyncio.Event()
            self._writer = asyncio.get_running_loop().create_task(self._write_forever(self._wakeup))
        assert self._wakeup is not None
        self._wakeup.set()
        return await future

    async def _write_forever(self, wakeup: asyncio.Event) -> None:
        while True:
            await wakeup.wait()
            wakeup.clear()
            while self._pending:
                batch, self._pending = _take(self._pending, _MAX_COMMITS)
                started = time.perf_counter()
                try:
                    written = await self._write([rows for commits, _ in batch for rows in commits])
                    results = [reported(result) for result in written]
                    self._observe(time.perf_counter() - started)
                except Exception as error:
                    if not isinstance(error, self._expected):
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
