"""Where a host's commits go: straight to the Store's SQLite file on its node, or through the
Store actor.

A host on the Store's node with a SQLite store writes the file itself (`LocalCommits`): one hop
less per event, group-committed, durable before the host replies. Otherwise, and for good once
that file is found removed or replaced, commits go to the Store actor, the calls of one
event-loop turn as one (`Coalescer`). Either way each commit keeps `Store.write`'s rules
(exactly-once by event id, versions in order).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from sopy_actors.runtime.coalesce import Coalescer
from sopy_actors.runtime.commits import CommitRows
from sopy_actors.runtime.local_commits import LocalCommits, StoreFileReplaced
from sopy_actors.runtime.records import SOPRecord
from sopy_actors.telemetry.reporter import MetricsReporter

__all__ = ["HostCommits"]

logger = logging.getLogger(__name__)


class HostCommits:
    """One host's way to the Store for commits and new SOPs' first checkpoints.

    Args:
        store: the Store actor.
        metrics: the host's reporter (commit durations of direct writes).
        host: the host's name, for logs.

    Starts with the Store actor; `open_local` switches to direct writes where it can. Runs on
    the host's event loop.
    """

    def __init__(self, store: Any, metrics: MetricsReporter, host: str) -> None:
        self._store = store
        self._metrics = metrics
        self._host = host
        self._local: LocalCommits | None = None
        self._through_store: Coalescer[CommitRows, str | None] = Coalescer(self._store_commits)
        self._creates: Coalescer[SOPRecord, bool] = Coalescer(self._send_creates)

    @property
    def direct(self) -> bool:
        """True while commits go straight to the SQLite file."""
        return self._local is not None

    async def open_local(self) -> None:
        """Write commits to the Store's SQLite file directly when it is on this node."""
        try:
            self._local = await LocalCommits.open(self._store, self._metrics, self._host)
        except Exception:  # e.g. the Store actor is unreachable now: its path works, one hop longer
            logger.warning("host=<%s> | commits go through the Store actor", self._host, exc_info=True)

    async def commit(self, rows: CommitRows) -> str | None:
        """Write one rendered commit durably (see `GroupCommit.commit` for the result)."""
        if self._local is not None:
            (written,) = await self.commit_many([rows])  # group-committed there
            return written
        return await self._through_store.call(rows)

    async def commit_many(self, commits: list[CommitRows]) -> list[str | None]:
        """Write several rendered commits durably (of different SOPs, or in order), in one
        transaction where they fit one; results in order (see `GroupCommit.commit`)."""
        if self._local is not None:
            with self._unless_replaced():
                return await self._local.commit(commits)
        written: list[str | None] = await self._store.commit_batch.remote(commits)
        return written

    async def create(self, record: SOPRecord) -> bool:
        """Store a new SOP's first checkpoint; False if its id exists."""
        created = await self._creates.call(record)
        return bool(created)

    async def _store_commits(self, commits: list[CommitRows]) -> list[str | None]:
        written: list[str | None] = await self._store.commit_batch.remote(commits)
        return written

    async def _send_creates(self, records: list[SOPRecord]) -> list[bool]:
        if self._local is not None:
            with self._unless_replaced():
                return await self._local.create_many(records)
        created: list[bool] = await self._store.create_many.remote(records)
        return created

    @contextlib.contextmanager
    def _unless_replaced(self) -> Iterator[None]:
        """The Store's file was removed or replaced: nothing was written; from now on commits go
        through the Store actor, which says what is wrong (see `StoreActor._open`)."""
        try:
            yield
        except StoreFileReplaced as error:
            if self._local is not None:  # once, not for every commit that was in flight
                logger.error("host=<%s> | %s; commits go through the Store actor", self._host, error)
            self._local = None
