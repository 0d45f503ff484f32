"""Telling a parent SOP that its child ended, durably: the child's host does it, retrying.

The Store marks a finished child whose parent is not told yet (`parent_pending`); the event's
id is fixed per child, so a resend (a retry, or a restarted host finishing what its crash
interrupted) is recognised by the parent and applied once. A parent that waits for a person is
asked again for as long as it waits; other failures (its host or procedure actor down, its
handler failing) are tried a few times, then left to the host's next start; a parent that can
never take it (it ended) is not asked again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import ray

from sopy_actors.core.events import event_to_wire
from sopy_actors.core.lifecycle import SubSOPCompleted, SubSOPError, SubSOPFailed, SubSOPResult
from sopy_actors.errors import AwaitingHuman, SOPFailed, VersionConflict, error_from_wire, error_to_wire, is_retryable
from sopy_actors.runtime.commits import Commit
from sopy_actors.runtime.host_commits import HostCommits
from sopy_actors.runtime.records import SOPRecord

__all__ = ["ParentNotifier", "child_event"]

logger = logging.getLogger(__name__)

_ATTEMPTS = 8  # failed tries, backing off to `_MAX_BACKOFF`, before leaving it to the host's next start
_MAX_BACKOFF = 30.0  # seconds between tries, at most


class _NotYet(Exception):
    """The parent's host refused the event but may take it later; `waiting`: the parent waits for a person."""

    def __init__(self, message: str, *, waiting: bool) -> None:
        super().__init__(message)
        self.waiting = waiting


def _backoff(tries: int) -> float:
    return min(2.0 ** min(tries, 8), _MAX_BACKOFF)


def child_event(record: SOPRecord) -> SubSOPCompleted | SubSOPFailed:
    """What a finished child tells its parent, from its final record alone."""
    if record.phase == "done":
        result = SubSOPResult(child_id=record.sop_id, name=record.name, state=record.state["data"])
        return SubSOPCompleted(id=f"sub-sop-completed-{record.sop_id}", payload=result)
    error = record.error or error_to_wire(SOPFailed(record.sop_id, record.phase))
    detail = SubSOPError(child_id=record.sop_id, name=record.name, error=error)
    return SubSOPFailed(id=f"sub-sop-failed-{record.sop_id}", payload=detail)


class ParentNotifier:
    """Runs in an SOP host: sends finished children's events to their parents' hosts.

    Args:
        namespace: the deployment's namespace.
        store: the Store actor.
        commits: the host's way to the Store (records that the parent was told).
        spawn: runs a coroutine in the background on the host's loop.
        on_notified: called with the child's record once its parent was told.
    """

    def __init__(
        self,
        namespace: str,
        store: Any,
        commits: HostCommits,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        on_notified: Callable[[SOPRecord], None],
    ) -> None:
        self._namespace = namespace
        self._store = store
        self._commits = commits
        self._spawn = spawn
        self._on_notified = on_notified

    async def notify(self, record: SOPRecord) -> None:
        """Tell the parent that this child ended, retrying; then record that it was told."""
        if not record.parent_pending:
            return
        if not await self._send_retrying(record, event_to_wire(child_event(record))):
            logger.error(
                "sop=<%s>, parent=<%s> | parent not told; the next start of this host retries", record.sop_id, record.parent_id
            )
            return
        told = record.model_copy(update={"parent_notified": True})
        await self._commits.commit(Commit(record=told).rows())
        self._on_notified(told)

    async def tell(self, record: SOPRecord, event: dict[str, Any]) -> None:
        """Send the parent (if any) an event about this child, retrying for a while (best effort:
        what this host's crash interrupts is not sent again)."""
        if record.parent_id is not None and not await self._send_retrying(record, event):
            logger.error("sop=<%s>, parent=<%s> | parent not told of %s", record.sop_id, record.parent_id, event.get("type"))

    async def _send_retrying(self, record: SOPRecord, wire: dict[str, Any]) -> bool:
        """Send until the parent's host takes it or refuses it for good (True), or `_ATTEMPTS`
        tries failed (False), backing off between tries. While the parent waits for a person
        it is asked again for as long as it waits: that is no failed try."""
        failures = tries = 0
        while failures < _ATTEMPTS:
            try:
                await self._send(record, wire)
                return True
            except (ray.exceptions.RayError, ValueError, _NotYet) as error:  # ValueError: no such actor yet
                if not (isinstance(error, _NotYet) and error.waiting):
                    failures += 1
                logger.warning("sop=<%s>, parent=<%s> | telling the parent failed: %s", record.sop_id, record.parent_id, error)
                await asyncio.sleep(_backoff(tries))
                tries += 1
        return False

    async def resend_pending(self, host: str) -> None:
        """Tell the parents of `host`'s finished children that a crash left untold."""
        for record in await self._store.pending_notifications.remote(host):
            logger.info("sop=<%s>, parent=<%s> | telling the parent after a restart", record.sop_id, record.parent_id)
            self._spawn(self.notify(record))

    async def _send(self, record: SOPRecord, wire: dict[str, Any]) -> None:
        assert record.parent_id is not None
        stored = await self._store.load.remote(record.parent_id, 0)
        if stored is None:
            logger.warning("sop=<%s>, parent=<%s> | parent is gone", record.sop_id, record.parent_id)
            return
        parent_host = ray.get_actor(stored.record.host, namespace=self._namespace)
        reply = await parent_host.send.remote(record.parent_id, wire, None, None)
        if "error" in reply:
            error = error_from_wire(reply["error"])
            if is_retryable(error) or isinstance(error, VersionConflict):  # the parent applied nothing yet
                raise _NotYet(str(error), waiting=isinstance(error, AwaitingHuman))
            logger.warning("sop=<%s>, parent=<%s> | parent refused the child's end: %s", record.sop_id, record.parent_id, error)
