"""The SOP instances a host keeps in memory: last committed record, queue, recent replies.

Plain asyncio: `Instances` loads a missing SOP through the Store actor handle it is given,
once however many callers ask for it at the same time; the SOPs missing in one event-loop turn
load in one Store call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sopy_actors.core.sop import SOPStatus
from sopy_actors.core.transition import Outcome
from sopy_actors.errors import InputError, SOPCancelled, SOPFailed, SopyError, UnknownSOP, error_from_wire, error_to_wire
from sopy_actors.runtime.coalesce import Coalescer
from sopy_actors.runtime.messages import Reply, SendItem
from sopy_actors.runtime.ordering import SenderOrder
from sopy_actors.runtime.records import LogEntry, SOPRecord, StoredSOP
from sopy_actors.runtime.seen import SeenIds
from sopy_actors.runtime.tally import Tally

__all__ = [
    "MAX_LIVE_KEY",
    "PASSIVATE_AFTER_KEY",
    "Instance",
    "Instances",
    "Passivation",
    "Queued",
    "event_id_of",
    "receipt_reply",
]

logger = logging.getLogger(__name__)

_RECENT_REPLIES = 256
_Loaded = StoredSOP | None | BaseException  # a Store load's answer, or why it failed
_RUNTIME_ENVS = 1_000  # distinct runtime_envs (jobs' code) a host keeps one object of
_JUST_USED = 1.0  # seconds: an instance used this recently is never passivated
_ORDERS_KEPT = 100_000  # passivated SOPs whose senders moved past their checkpoint, remembered (oldest dropped)

PASSIVATE_AFTER_KEY = "passivate_after"
MAX_LIVE_KEY = "max_live_sops"
"""Store config keys of the deployment's passivation settings (set by the first `init()`)."""


class Passivation(BaseModel):
    """When a host drops idle SOPs from memory (they reload from the Store on next use).

    Attributes:
        idle_after: seconds an SOP may sit unused (no event, timer, query) in memory.
        max_live: SOPs a host keeps in memory at most, least recently used dropped first (SOPs
            with work in flight, or waiting for a person, are never dropped: the bound holds
            for idle ones).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    idle_after: float = Field(default=300.0, gt=0)  # at least 1 s in effect
    max_live: int = Field(default=100_000, ge=1)

    def interval(self) -> float:
        """Seconds between two passes."""
        return min(max(self.idle_after / 2, 0.1), 10.0)


def receipt_reply(entry: LogEntry, instruction: str | None = None) -> Reply:
    """The reply to a committed event, from its log entry (and the procedure's instruction now)."""
    return {
        "outcome": entry.outcome,
        "procedure": entry.to_procedure,
        "version": entry.version,
        "prompt": entry.prompt,
        "instruction": instruction,
    }


def event_id_of(event: dict[str, Any]) -> str:
    """The id of an event in wire form.

    Raises:
        InputError: the message has no event id.
    """
    data = event.get("data") if isinstance(event, dict) else None
    event_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(event_id, str) or not event_id:
        raise InputError("Invalid event message: 'data.id' must be a non-empty str", fields=("data.id",))
    return event_id


@dataclass(slots=True)
class Queued:
    """An event waiting in its SOP's queue, with the future its sender awaits; or, with `run`
    set, work on the SOP that must not overlap its events (a person's resolution, a rollback, a
    change of its version retention)."""

    item: SendItem
    reply: asyncio.Future[Reply]
    run: Callable[[], Awaitable[Reply]] | None = None


class Instance:
    """One live SOP: its last committed record plus what is in flight.

    Counted in its host's `Tally` while it is in memory: its record, `busy` and queue change
    only through the setters and `enqueue` / `dequeue`, which keep the tally current.
    """

    __slots__ = (
        "_busy", "_counted", "_record", "_tally", "cancelling", "order", "queue", "replies", "seen", "used", "waiters",
    )

    def __init__(self, record: SOPRecord, order: SenderOrder[Queued], *, seen: SeenIds | None = None) -> None:
        self._record = record
        self.order = order
        self.queue: deque[Queued] = deque()
        self._busy = False
        self.replies: OrderedDict[str, Reply] = OrderedDict()
        self.waiters: list[asyncio.Future[None]] = []
        self.seen = SeenIds() if seen is None else seen
        # A cancel waiting for the drain loop: (reason, notify the parent, resolved once committed).
        self.cancelling: tuple[str, bool, asyncio.Future[None]] | None = None
        self.used = 0.0  # time.monotonic() of its last use: idle ones are passivated first
        self._tally: Tally | None = None
        self._counted = ("", "")  # (SOP name, phase) it is counted under in `_tally`

    @property
    def record(self) -> SOPRecord:
        """The SOP's last committed record."""
        return self._record

    @record.setter
    def record(self, record: SOPRecord) -> None:
        changed = record.phase != self._record.phase
        self._record = record
        if changed:
            self._recount()

    @property
    def busy(self) -> bool:
        """A drain loop or the batch lane is working on the SOP."""
        return self._busy

    @busy.setter
    def busy(self, busy: bool) -> None:
        if busy is self._busy:
            return
        self._busy = busy
        if self._tally is not None:
            self._tally.busy += 1 if busy else -1
            if self._record.phase == "running":  # counted as running (busy) or waiting
                self._recount()

    def enqueue(self, queued: Queued) -> None:
        """Append to the SOP's queue."""
        self.queue.append(queued)
        if self._tally is not None:
            self._tally.queued[self._record.name] += 1

    def dequeue(self) -> Queued:
        """Take the first item of the SOP's queue (IndexError if it is empty)."""
        queued = self.queue.popleft()
        if self._tally is not None:
            self._tally.queued[self._record.name] -= 1
        return queued

    def count_in(self, tally: Tally | None) -> None:
        """Be counted in `tally` (None: in none), and no longer in the one before."""
        for sign, counting in ((-1, self._tally), (1, tally)):
            if counting is not None:
                if sign > 0:
                    self._counted = (self._record.name, self.phase())
                counting.phases[self._counted] += sign
                counting.busy += sign * self._busy
                counting.queued[self._record.name] += sign * len(self.queue)
        self._tally = tally

    def _recount(self) -> None:
        if self._tally is not None:
            counted = (self._record.name, self.phase())
            if counted != self._counted:
                self._tally.phases[self._counted] -= 1
                self._tally.phases[counted] += 1
                self._counted = counted

    def idle(self) -> bool:
        """Nothing in flight or waiting on it in memory: it may leave memory and reload from
        the Store. An SOP waiting for a person stays (monitoring shows it while it waits)."""
        return not (
            self.busy or self.queue or self.waiters or self.cancelling is not None or self.order.held()
        ) and self.record.phase != "waiting_for_human"

    @classmethod
    def of(cls, record: SOPRecord, recent: Sequence[LogEntry] = (), event_ids: Sequence[str] = ()) -> Instance:
        """An instance resuming from `record`, knowing its committed ids and `recent` replies."""
        instance = cls(record, SenderOrder(record.senders), seen=SeenIds(event_ids))
        for entry in recent:
            instance.remember(entry.event_id, receipt_reply(entry))
        return instance

    def remember(self, event_id: str, reply: Reply) -> None:
        """Keep `reply` for a redelivery of `event_id` (the most recent ones only)."""
        self.replies[event_id] = reply
        while len(self.replies) > _RECENT_REPLIES:
            self.replies.popitem(last=False)

    def phase(self) -> Literal["waiting", "running", "waiting_for_human", "done", "failed", "cancelled"]:
        """The stored phase, with a running SOP told apart as busy (running) or idle (waiting)."""
        if self.record.phase != "running":
            return self.record.phase
        return "running" if self.busy else "waiting"

    def failure(self) -> SopyError:
        """The error a failed or cancelled SOP's record holds (as raised before any restart)."""
        if self.record.error is not None:
            return error_from_wire(self.record.error)
        return SOPFailed(self.record.sop_id, self.record.phase)

    def cancel_commit(
        self, error: SOPCancelled, *, notify_parent: bool, discarded: tuple[str, str] | None
    ) -> tuple[SOPRecord, LogEntry | None]:
        """The record (and history entry) that cancel this SOP.

        Args:
            error: the cancellation, stored as the SOP's error.
            notify_parent: False when the parent cancels its children (it is not told).
            discarded: (event id, event type) of an event whose handler ran meanwhile: its
                result is dropped, logged as a `discarded` entry of the next version.
        """
        record = self.record
        update: dict[str, Any] = {"phase": "cancelled", "error": error_to_wire(error), "parent_notified": not notify_parent}
        if discarded is None:
            return record.model_copy(update=update), None
        event_id, event_type = discarded
        name = record.procedure["name"]
        entry = LogEntry(
            sop_id=record.sop_id, version=record.version + 1, event_id=event_id, event_type=event_type,
            outcome=Outcome.DISCARDED.value, from_procedure=name, to_procedure=name, prompt=error.reason,
        )
        return record.model_copy(update={**update, "version": entry.version}), entry

    def status(self, *, children: list[str]) -> SOPStatus:
        """Where the SOP is (its host is the record's)."""
        record = self.record
        return SOPStatus(
            sop_id=record.sop_id,
            name=record.name,
            procedure=record.procedure["name"],
            version=record.version,
            retries=record.retries,
            phase=self.phase(),
            queued=len(self.queue),
            parent_id=record.parent_id,
            children=children,
            host=record.host,
            last_prompt=record.last_prompt,
            prompt=str(record.procedure.get("prompt", "")),
            waiting=record.waiting,
            recovery=record.recovery_history,
            forked_from=record.forked_from,
        )


class Instances:
    """A host's SOP instances by id, loaded from the Store on first use.

    Args:
        host: the host's name (an SOP of another host is refused).
        store: the Store actor.
    """

    def __init__(self, host: str, store: Any) -> None:
        self._host = host
        self._store = store
        self._live: dict[str, Instance] = {}
        self._loading: dict[str, asyncio.Future[Instance]] = {}
        self._runtime_envs: dict[str, dict[str, Any]] = {}  # one object per job's code, by content
        self._loads: Coalescer[str, _Loaded] = Coalescer(self._load_many)  # one Store call per turn
        self.passivated = 0
        """Instances dropped from memory since the host started (their SOPs are in the Store)."""
        # Senders' numbers that passivated SOPs had reached past their checkpoints (events that
        # committed nothing advance them in memory only), given back when they reload.
        self._orders: OrderedDict[str, dict[str, int]] = OrderedDict()
        self._tally = Tally()
        self._settings = Passivation()
        self._check_at = self._settings.max_live  # live count at which `_keep` runs a pass at once

    @property
    def settings(self) -> Passivation:
        """When idle instances leave memory (the host sets the deployment's)."""
        return self._settings

    @settings.setter
    def settings(self, settings: Passivation) -> None:
        self._settings = settings
        self._check_at = settings.max_live

    def __contains__(self, sop_id: str) -> bool:
        return sop_id in self._live

    def all(self) -> list[Instance]:
        """The instances in memory."""
        return list(self._live.values())

    def find(self, sop_id: str) -> Instance | None:
        """The instance of `sop_id` if it is in memory."""
        return self._live.get(sop_id)

    def counts(self) -> dict[str, Any]:
        """For monitoring: instances by SOP name and phase, queued events, busy instances (kept
        as they change: the cost does not grow with the live count)."""
        return {**self._tally.counts(), "instances": len(self._live), "passivated": self.passivated}

    def add(self, instance: Instance) -> None:
        """Keep a new instance (just started)."""
        self._keep(instance)

    def _keep(self, instance: Instance) -> None:
        """Hold `instance` in memory; past `max_live` (and a margin, so that passes stay rare
        while busy SOPs hold the count up), drop idle ones at once rather than at the next pass."""
        instance.record = self._shared_code(instance.record)
        if len(self._live) >= self._check_at:
            self.passivate(room=1)
            self._check_at = max(len(self._live), self.settings.max_live) + max(100, self.settings.max_live // 100)
        instance.used = time.monotonic()
        replaced = self._live.pop(instance.record.sop_id, None)  # re-inserted last: the most recently used
        if replaced is not None and replaced is not instance:
            replaced.count_in(None)
        self._live[instance.record.sop_id] = instance
        instance.count_in(self._tally)

    async def _load_many(self, sop_ids: list[str]) -> list[_Loaded]:
        """The SOPs' stored forms in one Store call; if it fails, each SOP's own load, so that
        one SOP the Store cannot read fails alone (its error in its place)."""
        try:
            stored: list[_Loaded] = await self._store.load_many.remote(sop_ids)
        except Exception:  # also a Store actor of an older release, without load_many
            return list(await asyncio.gather(*(self._store.load.remote(i) for i in sop_ids), return_exceptions=True))
        return stored

    def _shared_code(self, record: SOPRecord) -> SOPRecord:
        """`record` with this host's one object for its runtime_env: every record arrives with
        its own copy (unpickled), and SOPs of one job then share one, in memory and as the key
        of what procedure calls derive from it (`ProcedureCalls`)."""
        runtime_env = record.runtime_env
        if runtime_env is None:
            return record
        key = json.dumps(runtime_env, sort_keys=True)
        if len(self._runtime_envs) >= _RUNTIME_ENVS and key not in self._runtime_envs:
            self._runtime_envs.clear()  # many jobs' code over time: start afresh
        shared = self._runtime_envs.setdefault(key, runtime_env)
        return record if shared is runtime_env else record.model_copy(update={"runtime_env": shared})

    def touch(self, instance: Instance) -> None:
        """Mark `instance` used now: it moves to the end of the least-recently-used order."""
        instance.used = time.monotonic()
        sop_id = instance.record.sop_id
        if self._live.get(sop_id) is instance:
            del self._live[sop_id]
            self._live[sop_id] = instance

    def passivate(self, *, room: int = 0) -> int:
        """Drop idle instances from memory: those unused for `settings.idle_after` seconds, and
        the least recently used beyond `settings.max_live` (less `room` for ones about to be
        added). Their SOPs reload from the Store on next use (an event, a timer, a status
        query). Returns how many were dropped.

        Walks the instances from the least recently used (memory holds them in that order,
        see `touch`) and stops at the first one to keep: the cost grows with what is dropped,
        not with the live count. One that is not idle (work in flight, waiting for a person)
        counts as used now, so that later passes do not walk it again (unless SOPs that are
        not idle alone exceed `max_live`: then every pass walks them).
        """
        now, idle_after = time.monotonic(), self.settings.idle_after
        excess = len(self._live) + room - self.settings.max_live
        dropped: list[Instance] = []
        in_use: list[Instance] = []
        for instance in self._live.values():
            unused = now - instance.used
            # Just handed out by `get` (its caller may not have queued its work yet): kept.
            if unused < _JUST_USED or (unused < idle_after and len(dropped) >= excess):
                break
            (dropped if instance.idle() else in_use).append(instance)
        for instance in dropped:
            del self._live[instance.record.sop_id]
            instance.count_in(None)
            if ahead := instance.order.ahead_of(instance.record.senders):
                self._orders[instance.record.sop_id] = ahead
                while len(self._orders) > _ORDERS_KEPT:
                    self._orders.popitem(last=False)
        for instance in in_use:
            self.touch(instance)
        self.passivated += len(dropped)
        return len(dropped)

    async def get(self, sop_id: str) -> Instance:
        """The instance of `sop_id`, loaded from the Store if it is not in memory.

        Raises:
            InputError: a malformed id, or an SOP of another host.
            UnknownSOP: the Store has no such SOP.
        """
        if not isinstance(sop_id, str) or not sop_id:
            raise InputError("sop_id must be a non-empty str", fields=("sop_id",))
        instance = self._live.get(sop_id)
        if instance is not None:
            self.touch(instance)
            return instance
        loading = self._loading.get(sop_id)
        if loading is None:
            loading = asyncio.get_running_loop().create_future()
            self._loading[sop_id] = loading
            try:
                loading.set_result(await self._load(sop_id))
            except BaseException as error:
                loading.set_exception(error)
            finally:
                del self._loading[sop_id]
        return await asyncio.shield(loading)

    async def _load(self, sop_id: str) -> Instance:
        stored = await self._loads.call(sop_id)
        if isinstance(stored, BaseException):
            raise stored
        if stored is None:
            raise UnknownSOP(sop_id)
        if stored.record.host != self._host:
            raise InputError(f"SOP {sop_id!r} lives on host {stored.record.host}, not {self._host}")
        live = self._live.get(sop_id)
        if live is not None:  # started here while it loaded: the live one has what is in flight
            return live
        instance = Instance.of(stored.record, stored.recent, stored.event_ids)
        if (ahead := self._orders.pop(sop_id, None)) is not None:
            instance.order.catch_up(ahead)
        self._keep(instance)
        logger.info("sop=<%s>, version=<%d> | reloaded from the store", sop_id, stored.record.version)
        return instance
