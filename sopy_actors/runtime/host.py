"""SOPHost actor: runs many SOP instances, one ordered queue each; the only writer of their state.

An async Ray actor. For each event of an SOP: dedupe by id → the ProcedureActor runs the
handler → `advance` (the one commit rule, in core) → commit to the Store → reply (the queues
and that path live in `runtime/event_path.py`; this module is the actor's interface). Hosts never
import workflow code: procedures and states stay in JSON form. A restarted host reloads SOPs
lazily from the Store, and tells parents what its crash left untold.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any, cast

import ray
from pydantic import ValidationError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sopy_actors.core.transition import Outcome
from sopy_actors.errors import (
    InputError,
    RuntimeUnavailable,
    SopyError,
    TimedOut,
    UnknownSOP,
    error_from_wire,
    error_to_wire,
)
from sopy_actors.runtime.background import Background
from sopy_actors.runtime.event_path import EventPath
from sopy_actors.runtime.heap import keep_settled, settle
from sopy_actors.runtime.host_commits import HostCommits
from sopy_actors.runtime.instances import MAX_LIVE_KEY, PASSIVATE_AFTER_KEY, Instance, Instances, Passivation
from sopy_actors.runtime.messages import Answer, ErrorWire, Reply, SendItem
from sopy_actors.runtime.options import STORE_ACTOR, create_actor, ray_options
from sopy_actors.runtime.parents import ParentNotifier
from sopy_actors.runtime.procedures import ProcedureCalls
from sopy_actors.runtime.rayutil import checked_timeout, node_for
from sopy_actors.runtime.records import SOPRecord, Timer
from sopy_actors.runtime.recovering import Resolution, timeout_timer
from sopy_actors.runtime.shared_state import SharedSync
from sopy_actors.runtime.timers import HostTimers
from sopy_actors.runtime.versions import VersionRetention
from sopy_actors.telemetry import names
from sopy_actors.telemetry.reporter import MetricsReporter

__all__ = ["SOPHostActor", "create_host"]

logger = logging.getLogger(__name__)

_STORE_LOOKUP_SECONDS = 120.0
_HOST_CONCURRENCY = 100_000  # every waiting send()/result() holds one slot of an async actor


def create_host(namespace: str, name: str) -> Any:
    """Get or create the SOPHost actor `name`, placed on its node (see `rayutil.node_for`)."""
    options = ray_options(
        name=name,
        namespace=namespace,
        max_concurrency=_HOST_CONCURRENCY,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_for(name), soft=True),
    )
    return create_actor(SOPHostActor, options, namespace, name)


def _store_actor(namespace: str, wait_for: float = _STORE_LOOKUP_SECONDS) -> Any:
    """The Store actor, waited for: a host restarted with the head node (GCS fault tolerance)
    may start before the Store is registered again, and a constructor that raises would leave
    the host dead for good.

    Raises:
        RuntimeUnavailable: no Store in `namespace` after `wait_for` seconds.
    """
    deadline = time.monotonic() + wait_for
    while True:
        try:
            return ray.get_actor(STORE_ACTOR, namespace=namespace)
        except ValueError:
            if time.monotonic() > deadline:
                raise RuntimeUnavailable(f"no Store actor in namespace {namespace!r} after {wait_for:.0f} s") from None
            time.sleep(0.5)


@ray.remote
class SOPHostActor:
    """Hosts SOP instances routed to it by id; all methods run on one event loop."""

    def __init__(self, namespace: str, name: str) -> None:
        self._namespace = namespace
        self._name = name
        self._metrics = MetricsReporter(namespace, kind="host")
        self._procedures = ProcedureCalls(namespace, self._metrics)
        self._store = _store_actor(namespace)
        self._instances = Instances(name, self._store)
        self._commits = HostCommits(self._store, self._metrics, name)
        self._background = Background(f"host=<{name}>")
        self._spawn = self._background.spawn
        self._parents = ParentNotifier(namespace, self._store, self._commits, self._spawn, self._notified)
        self._timers = HostTimers(name, self._store, self._fire_timer)
        self._shared = SharedSync(namespace, name, self._store, self._spawn)
        self._path = EventPath(
            store=self._store, instances=self._instances, procedures=self._procedures, commits=self._commits,
            timers=self._timers, shared=self._shared, parents=self._parents, metrics=self._metrics, spawn=self._spawn,
        )
        self._spawn(self._commits.open_local())
        self._spawn(self._timers.run())
        # Ray runs an async actor's __init__ on its event loop: a restarted host tells the
        # parents its crash left untold.
        self._spawn(self._parents.resend_pending(name))
        self._spawn(self._load_waiting())
        self._spawn(self._passivate_forever())
        self._spawn(keep_settled())
        settle()
        logger.info("host=<%s> | started", name)

    async def _load_waiting(self) -> None:
        """Load this host's SOPs that wait for a person, so that they show in its statistics
        (`sopy_sop_instances{phase="waiting_for_human"}`) before anyone touches them."""
        for summary in await self._store.list_sops.remote("waiting_for_human", 1_000_000):
            if summary.host == self._name:
                await self._instances.get(summary.sop_id)

    async def _passivate_forever(self) -> None:
        """Drop idle SOPs from memory, on the deployment's settings (Store config), forever."""
        initial = self._instances.settings
        configured = Passivation(
            idle_after=float(await self._store.config.remote(PASSIVATE_AFTER_KEY, str(initial.idle_after))),
            max_live=int(await self._store.config.remote(MAX_LIVE_KEY, str(initial.max_live))),
        )
        if self._instances.settings is initial:  # an override (`passivation`) meanwhile wins
            self._instances.settings = configured
        while True:
            await asyncio.sleep(self._instances.settings.interval())
            dropped = self._instances.passivate()
            if dropped:
                logger.debug("host=<%s>, dropped=<%d> | idle SOPs passivated", self._name, dropped)

    async def passivation(self, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """This host's passivation settings (`Passivation` fields), changed first by `settings`
        (an operator's or a test's override until the host restarts); errors as `{"error"}`."""
        if settings:
            try:
                self._instances.settings = Passivation.model_validate({**self._instances.settings.model_dump(), **settings})
            except ValidationError as error:
                return {"error": error_to_wire(InputError(f"Invalid passivation settings: {error}"))}
        return self._instances.settings.model_dump()

    # -- lifecycle -------------------------------------------------------------------------

    async def create_host(self, name: str) -> None:
        """Get or create another host (a dedicated one), from a process that may not import hosts."""
        create_host(self._namespace, name)

    async def start(self, record: SOPRecord) -> ErrorWire | None:
        """Create an SOP from its first checkpoint; idempotent for a retried identical call.

        Returns:
            None, or the error (wire form) when the id is taken by another SOP.
        """
        if record.sop_id not in self._instances and await self._commits.create(record):
            self._instances.add(Instance.of(record))
            self._metrics.count(names.SOPS_STARTED, (record.name,))
            await self._arm_start(record)
            return None
        stored = await self._store.load.remote(record.sop_id, 0)
        if stored is None or stored.record.start_token != record.start_token:
            error = InputError(
                f"SOP id {record.sop_id!r} exists already; use sopy_actors.attach() to reach it",
                fields=("sop_id",),
            )
            return error_to_wire(error)
        # Ray retried this call: the first one created the SOP. Unless it is in memory or has
        # moved on (then nothing is left to do), finish what that call may not have, from the
        # stored record (commits without an event, such as a retention rule, keep version 0).
        if record.sop_id not in self._instances and stored.record.version == 0:
            await self._instances.get(record.sop_id)
            await self._arm_start(stored.record)
        return None

    async def _arm_start(self, record: SOPRecord) -> None:
        """What a new SOP's start arms: its first procedure's timeout, its shared state space."""
        if (timer := timeout_timer(record, now=time.time())) is not None:
            await self._timers.schedule(timer)
        self._shared.committed(record)  # a distributed state joins its shared space now

    async def start_batch(self, records: list[SOPRecord]) -> list[ErrorWire | None]:
        """`start` for several SOPs; their first checkpoints go to the Store as one transaction."""
        return list(await asyncio.gather(*(self.start(record) for record in records)))

    async def schedule(self, timer: Timer) -> None:
        """Store a durable timer for one of this host's SOPs (see `runtime/timers.py`)."""
        await self._timers.schedule(timer)

    async def _fire_timer(self, timer: Timer) -> bool:
        reply = await (await self._path.queue(SendItem(timer.sop_id, timer.event)))
        return "error" not in reply or not error_from_wire(reply["error"]).retryable

    async def send(
        self,
        sop_id: str,
        event: dict[str, Any],
        sender: str | None = None,
        seq: int | None = None,
        floor: int | None = None,
        probe: str | None = None,
    ) -> Reply:
        """Queue an event and return its reply once committed.

        Events from one sender (with increasing `seq` from 0) are applied in the order sent,
        whatever order Ray delivers them in. With `probe` (an event's wire type), the reply
        of an accepted event says (`settles`) whether the SOP's procedure now never refuses
        an event of that type (`core.graph.may_refuse`).
        """
        reply = await (await self._path.queue(SendItem(sop_id, event, sender, seq, floor)))
        if probe is None or "error" in reply or reply.get("outcome") == Outcome.REJECTED.value:
            return reply
        instance = self._instances.find(sop_id)
        record = None if instance is None else instance.record
        settles = record is not None and record.phase == "running" and not await self._procedures.may_refuse(record, probe)
        return cast(Reply, {**reply, "settles": settles})

    async def send_batch(self, items_json: str) -> str:
        """`send` for many events (of any of this host's SOPs) in one call.

        Args:
            items_json: a JSON list of `SendItem`s.

        Returns:
            The JSON list of their `Reply`s, in item order. JSON crosses far faster than Ray's
            pickling of nested dicts.
        """
        items = [SendItem(*item) for item in json.loads(items_json)]
        # Load the SOPs not in memory (after a restart) side by side, then take them in item order.
        missing = {item.sop_id for item in items if item.sop_id not in self._instances}
        await asyncio.gather(*(self._instances.get(sop_id) for sop_id in missing), return_exceptions=True)
        return json.dumps(await self._path.send_many(items))

    async def wait_result(self, sop_id: str, timeout: float | None = None) -> Answer:
        """Wait until the SOP ends: its final state (wire form), or the error it failed with;
        `TimedOut` after `timeout` seconds (None: no limit), leaving nothing behind (a waiter
        left would keep the SOP in memory until it ends)."""
        try:
            timeout = checked_timeout(timeout)
            instance = await self._instances.get(sop_id)
        except SopyError as error:
            return {"error": error_to_wire(error)}
        if instance.record.active:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            instance.waiters.append(waiter)
            try:
                async with asyncio.timeout(timeout):
                    await waiter
            except TimeoutError:
                return {"error": error_to_wire(TimedOut(f"sop=<{sop_id}> | did not end within {timeout} s"))}
            finally:
                if waiter in instance.waiters:
                    instance.waiters.remove(waiter)
        if instance.record.phase == "done":
            return {"value": instance.record.state}
        return {"error": error_to_wire(instance.failure())}

    async def status(self, sop_id: str) -> Answer:
        """Where the SOP is, as an `SOPStatus`."""
        try:
            instance = await self._instances.get(sop_id)
        except SopyError as error:
            return {"error": error_to_wire(error)}
        return {"value": instance.status(children=await self._store.children.remote(sop_id))}

    async def state(self, sop_id: str) -> Answer:
        """The committed state in JSON form (`{"type", "data"}`)."""
        try:
            instance = await self._instances.get(sop_id)
        except SopyError as error:
            return {"error": error_to_wire(error)}
        return {"value": instance.record.state}

    async def cancel(self, sop_id: str, reason: str = "cancelled", *, notify_parent: bool = True) -> None:
        """Cancel the SOP and, recursively, its children; returns once the cancel is committed.

        A handler running now finishes, but its result is discarded (a `discarded` entry in the
        history); queued and later events fail with SOPCancelled, and so does `result()`.
        """
        try:
            instance = await self._instances.get(sop_id)
        except UnknownSOP:
            return
        await asyncio.shield(self._path.cancel(instance, reason, notify_parent))
        for child in await self._store.children.remote(sop_id):
            stored = await self._store.load.remote(child, 0)
            if stored is not None and stored.record.active:
                host = ray.get_actor(stored.record.host, namespace=self._namespace)
                await host.cancel.remote(child, f"parent {sop_id} was cancelled", notify_parent=False)

    async def resolve(self, sop_id: str, resolution: dict[str, Any]) -> Answer:
        """A person's answer to an SOP waiting for them (`Resolution` fields); its status after.

        Runs in the SOP's queue, so it never overlaps an event. An answer that does not fit (the
        SOP is not waiting, an action it does not offer, an event its procedure does not take)
        is an `InputError` and changes nothing.
        """
        try:
            answer = Resolution(**resolution) if isinstance(resolution, dict) else None
            if answer is None:
                raise InputError("a resolution must be an object of action/event/note/by", fields=("resolution",))
            instance = await self._instances.get(sop_id)
        except SopyError as error:
            return {"error": error_to_wire(error)}
        done = await self._path.in_queue(instance, lambda: self._path.resolve(instance, answer))
        if "error" in done:
            return done
        return {"value": instance.status(children=await self._store.children.remote(sop_id))}

    async def rollback(self, sop_id: str, version: int, reason: str, rollback_id: str | None = None) -> Answer:
        """Make a new version equal to `version` (its procedure and state); the new version's number.

        Runs in the SOP's queue, so it never overlaps an event. History is kept: the rollback is
        a new version with its own log entry (event type `Rollback`, outcome `rolled_back`,
        the reason as its prompt). Only a running SOP rolls back (fork an ended one instead).
        A version that does not exist or was pruned is an `InputError` and changes nothing.
        `rollback_id` (the caller's, kept across its retries) makes a repeated call answer with
        the version the first one made, as an event id does.
        """
        try:
            instance = await self._instances.get(sop_id)
        except SopyError as error:
            return {"error": error_to_wire(error)}
        return await self._path.in_queue(instance, lambda: self._path.rollback(instance, version, reason, rollback_id))

    async def set_retention(self, sop_id: str, retention: dict[str, Any] | None) -> Answer:
        """Set which old versions the store keeps for this SOP (`VersionRetention` data; None:
        all); committed in the SOP's queue, applied from its next snapshot on."""
        try:
            rule = VersionRetention.model_validate(retention or {})
            instance = await self._instances.get(sop_id)
        except SopyError as error:
            return {"error": error_to_wire(error)}
        return await self._path.in_queue(instance, lambda: self._path.set_retention(instance, rule))

    async def statistics(self) -> dict[str, Any]:
        """Counts for monitoring: live instances, busy ones, queued events; by SOP name and phase;
        bytes of handler calls sent to and received from procedure actors since the host started;
        where its commits go (`commits`: "direct" to the SQLite file on its node, or "store",
        through the Store actor)."""
        counts = self._instances.counts()
        traffic = self._procedures.traffic
        return {
            **counts,
            "handler_bytes": {"sent": traffic.sent, "received": traffic.received},
            "commits": "direct" if self._commits.direct else "store",
            "host": self._name,
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
        }

    def _notified(self, record: SOPRecord) -> None:
        """The parent was told of `record`'s end: keep the flag if nothing was committed since."""
        instance = self._instances.find(record.sop_id)
        if instance is not None and instance.record.version == record.version:
            instance.record = record
