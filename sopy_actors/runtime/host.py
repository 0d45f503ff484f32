"""SOPHost actor: runs many SOP instances, one ordered queue each; the only writer of their state.

An async Ray actor. For each event of an SOP: dedupe by id → the ProcedureActor runs the
handler → `advance` (the one commit rule, in core) → commit to the Store → reply. Hosts never
import workflow code: procedures and states stay in JSON form. A restarted host reloads SOPs
lazily from the Store, and tells parents what its crash left untold.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import ray
from pydantic import ValidationError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sopy_actors.core.transition import Outcome, Snapshot, advance
from sopy_actors.errors import (
    AwaitingHuman,
    InputError,
    RuntimeUnavailable,
    SOPCancelled,
    SOPFailed,
    SopyError,
    UnknownSOP,
    as_sopy_error,
    error_from_wire,
    error_to_wire,
)
from sopy_actors.recovery.causes import cause_of
from sopy_actors.recovery.ladder import Cause, UseFallback, decide
from sopy_actors.recovery.policy import RecoveryPolicy, Retry
from sopy_actors.runtime.commits import Commit
from sopy_actors.runtime.heap import keep_settled, settle
from sopy_actors.runtime.host_commits import HostCommits
from sopy_actors.runtime.instances import (
    MAX_LIVE_KEY,
    PASSIVATE_AFTER_KEY,
    Instance,
    Instances,
    Passivation,
    Queued,
    event_id_of,
    receipt_reply,
)
from sopy_actors.runtime.messages import Answer, ErrorWire, HandlerResult, Reply, SendItem
from sopy_actors.runtime.options import STORE_ACTOR, create_actor, ray_options
from sopy_actors.runtime.ordering import advance_senders
from sopy_actors.runtime.parents import ParentNotifier
from sopy_actors.runtime.procedures import ProcedureCalls
from sopy_actors.runtime.rayutil import node_for
from sopy_actors.runtime.records import LogEntry, SOPRecord, Timer
from sopy_actors.runtime.recovering import (
    RecoveryCommit,
    Resolution,
    cause_of_result,
    fail_commit,
    fallback_reference,
    history_of,
    intervention_event,
    is_stale_timeout,
    is_timeout_event,
    policy_of,
    resolution_commit,
    resolved_history,
    step_commit,
    succeeded,
    timeout_cause,
    timeout_timer,
)
from sopy_actors.runtime.rollbacks import check_rollback, rollback_commit, rollback_event_id
from sopy_actors.runtime.shared_state import SharedSync
from sopy_actors.runtime.timers import HostTimers
from sopy_actors.runtime.versions import VersionRetention
from sopy_actors.telemetry import names
from sopy_actors.telemetry.reporter import MetricsReporter

__all__ = ["SOPHostActor", "create_host"]

logger = logging.getLogger(__name__)

_STORE_LOOKUP_SECONDS = 120.0

_GAP_SECONDS = 60.0
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
        self._background: set[asyncio.Task[Any]] = set()
        self._parents = ParentNotifier(namespace, self._store, self._commits, self._spawn, self._notified)
        self._timers = HostTimers(name, self._store, self._fire_timer)
        self._shared = SharedSync(namespace, name, self._store, self._spawn)
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
        if record.sop_id in self._instances or not await self._commits.create(record):
            stored = await self._store.load.remote(record.sop_id, 0)
            if stored is None or stored.record.start_token != record.start_token:
                error = InputError(
                    f"SOP id {record.sop_id!r} exists already; use sopy_actors.attach() to reach it",
                    fields=("sop_id",),
                )
                return error_to_wire(error)
        if record.sop_id not in self._instances:
            self._instances.add(Instance.of(record))
            self._metrics.count(names.SOPS_STARTED, (record.name,))
            if (timer := timeout_timer(record, now=time.time())) is not None:
                await self._timers.schedule(timer)
            self._shared.committed(record)  # a distributed state joins its shared space now
        return None

    async def start_batch(self, records: list[SOPRecord]) -> list[ErrorWire | None]:
        """`start` for several SOPs; their first checkpoints go to the Store as one transaction."""
        return list(await asyncio.gather(*(self.start(record) for record in records)))

    async def schedule(self, timer: Timer) -> None:
        """Store a durable timer for one of this host's SOPs (see `runtime/timers.py`)."""
        await self._timers.schedule(timer)

    async def _fire_timer(self, timer: Timer) -> bool:
        reply = await (await self._queue(SendItem(timer.sop_id, timer.event)))
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
        reply = await (await self._queue(SendItem(sop_id, event, sender, seq, floor)))
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
        # Load the SOPs not in memory (after a restart) side by side, then queue in item order.
        missing = {item.sop_id for item in items if item.sop_id not in self._instances}
        await asyncio.gather(*(self._instances.get(sop_id) for sop_id in missing), return_exceptions=True)
        replies = await asyncio.gather(*[await self._queue(item) for item in items])
        return json.dumps(replies)

    async def _queue(self, item: SendItem) -> asyncio.Future[Reply]:
        """Queue the item on its SOP; the future resolves to its reply once committed."""
        reply: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        try:
            instance = await self._instances.get(item.sop_id)
        except SopyError as error:
            reply.set_result({"error": error_to_wire(error)})
            return reply
        queued = Queued(item, reply)
        for ready in instance.order.admit(item.sender, item.seq, queued, floor=item.floor):
            self._enqueue(instance, ready)
        if item.sender is not None and item.seq is not None and instance.order.is_held(item.sender, item.seq):
            self._spawn(self._skip_gap_later(instance, item.sender, item.seq))
        return reply

    async def wait_result(self, sop_id: str) -> Answer:
        """Wait until the SOP ends: its final state (wire form), or the error it failed with."""
        try:
            instance = await self._instances.get(sop_id)
        except SopyError as error:
            return {"error": error_to_wire(error)}
        if instance.record.active:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            instance.waiters.append(waiter)
            await waiter
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
        if instance.record.active:
            if instance.cancelling is None:
                instance.cancelling = (reason, notify_parent, asyncio.get_running_loop().create_future())
                if not instance.busy:  # nothing in flight: the drain loop applies it at once
                    instance.busy = True
                    self._spawn(self._drain(instance))
            await asyncio.shield(instance.cancelling[2])
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
        reply: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._enqueue(instance, Queued(SendItem(sop_id, {}), reply, run=lambda: self._resolve(instance, answer)))
        done = await reply
        if "error" in done:
            return {"error": done["error"]}
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
        return await self._in_queue(instance, lambda: self._rollback(instance, version, reason, rollback_id))

    async def set_retention(self, sop_id: str, retention: dict[str, Any] | None) -> Answer:
        """Set which old versions the store keeps for this SOP (`VersionRetention` data; None:
        all); committed in the SOP's queue, applied from its next snapshot on."""
        try:
            rule = VersionRetention.model_validate(retention or {})
            instance = await self._instances.get(sop_id)
        except SopyError as error:
            return {"error": error_to_wire(error)}
        return await self._in_queue(instance, lambda: self._set_retention(instance, rule))

    async def _in_queue(self, instance: Instance, run: Callable[[], Awaitable[Reply]]) -> Answer:
        """Run `run` (a coroutine function returning a Reply) on the SOP's drain loop."""
        reply: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._enqueue(instance, Queued(SendItem(instance.record.sop_id, {}), reply, run=run))
        done = await reply
        if "error" in done:
            return {"error": done["error"]}
        return {"value": cast(dict[str, Any], done).get("value")}

    async def _rollback(self, instance: Instance, version: int, reason: str, rollback_id: str | None) -> Reply:
        record = instance.record
        event_id = rollback_event_id(record, rollback_id)
        if rollback_id is not None and instance.seen.may_contain(event_id):  # a retried call
            logged = await self._store.logged.remote(record.sop_id, event_id)
            if logged is not None:
                return cast(Reply, {"value": logged.version})
        check_rollback(record, version)
        content = await self._store.version.remote(record.sop_id, version)
        commit = rollback_commit(record, content, version=version, reason=reason, event_id=event_id, now=time.time())
        if (logged := await self._commits.commit(commit.rows(record))) is not None:
            return await self._committed_elsewhere(instance, event_id, logged)
        instance.seen.add(event_id)
        instance.record = commit.record
        self._shared.committed(commit.record)
        for armed in commit.timers:
            self._timers.arm(armed)
        logger.info("sop=<%s>, version=<%d>, to=<%d> | rolled back", record.sop_id, commit.record.version, version)
        return cast(Reply, {"value": commit.record.version})

    async def _set_retention(self, instance: Instance, rule: VersionRetention) -> Reply:
        record = instance.record
        updated = record.model_copy(update={"version_retention": None if rule.keeps_all else rule.model_dump()})
        if (logged := await self._commits.commit(Commit(record=updated).rows())) is not None:
            return {"error": json.loads(logged).get("error", {})}
        instance.record = updated
        return cast(Reply, {"value": None})

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

    # -- instances -------------------------------------------------------------------------

    # -- queueing --------------------------------------------------------------------------

    async def _skip_gap_later(self, instance: Instance, sender: str, seq: int) -> None:
        # A lost message must not stall a sender forever: after a while, skip the gap.
        await asyncio.sleep(_GAP_SECONDS)
        skipped = instance.order.skip_gap(sender, seq)
        if skipped:
            logger.warning("sop=<%s>, sender=<%s> | skipping a gap before seq %d", instance.record.sop_id, sender, seq)
        for queued in skipped:
            self._enqueue(instance, queued)

    def _enqueue(self, instance: Instance, queued: Queued) -> None:
        instance.queue.append(queued)
        if not instance.busy:
            instance.busy = True
            self._spawn(self._drain(instance))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("host=<%s> | background task failed", self._name, exc_info=task.exception())

    async def _drain(self, instance: Instance) -> None:
        try:
            while True:
                if instance.cancelling is not None and instance.record.active:
                    await self._apply_cancel(instance, None)
                if not instance.queue:
                    break
                queued = instance.queue.popleft()
                try:
                    reply = await (queued.run() if queued.run is not None else self._process(instance, queued.item))
                except Exception as error:
                    if not isinstance(error, SopyError):
                        logger.exception("sop=<%s> | event processing failed", instance.record.sop_id)
                    reply = {"error": error_to_wire(as_sopy_error(error))}
                if not queued.reply.done():
                    queued.reply.set_result(reply)
        finally:
            instance.busy = False

    # -- one event: dedupe → run → advance → commit → reply ----------------------------------

    async def _process(self, instance: Instance, item: SendItem) -> Reply:
        record = instance.record
        event_id = event_id_of(item.event)
        if event_id in instance.replies:
            return instance.replies[event_id]
        if instance.seen.may_contain(event_id):  # committed before the recent window: ask the log
            logged = await self._store.logged.remote(record.sop_id, event_id)
            if logged is not None:
                return receipt_reply(logged)
        if record.phase == "waiting_for_human":
            assert record.waiting is not None
            return {"error": error_to_wire(AwaitingHuman(record.sop_id, str(record.waiting.get("reason"))))}
        if is_timeout_event(item.event):
            return await self._timed_out(instance, item.event, event_id)
        if record.phase == "done":  # refused, nothing committed; End's run words the prompt
            refused = await self._procedures.run(record, item.event)
            if "error" in refused:
                return {"error": refused["error"]}
            return {"outcome": Outcome.REJECTED.value, "procedure": "End", "version": record.version, "prompt": refused["prompt"]}
        if record.phase != "running":
            failure = instance.failure()
            if not isinstance(failure, SOPFailed):  # as LocalSOP: a failed SOP accepts nothing
                failure = SOPFailed(record.sop_id, f"cannot accept events: {failure}")
            return {"error": error_to_wire(failure)}
        result = await self._procedures.run(record, item.event)
        if instance.cancelling is not None:  # cancelled while the handler ran: drop its result
            return await self._apply_cancel(instance, (event_id, result.get("event_type", "?")))
        event_type = result.get("event_type") or str(item.event.get("type", "")).rpartition(":")[2].rpartition(".")[2]
        if (cause := cause_of_result(item.event, dict(result))) is not None:
            recovered = await self._recover(instance, item.event, event_type, cause)
            if recovered is not None:
                self._count_event(record, event_type, Outcome.RECOVERING.value, result)
                return recovered
        if "error" in result:
            self._count_event(record, event_type, "failed", result)
            return {"error": result["error"]}
        return await self._commit_event(instance, item, event_id, result)

    async def _commit_event(self, instance: Instance, item: SendItem, event_id: str, result: HandlerResult) -> Reply:
        """Commit what a handler did (the commit rule `advance`), or take a recovery step when
        it was the rejection past the limit and a recovery policy answers it."""
        record = instance.record
        result = self._shared.merged(item.event, result)  # SharedStateChanged: merged, handled or not
        snapshot = Snapshot(record.procedure, record.state, record.version, record.retries, "running", record.last_prompt)
        advanced = advance(
            snapshot,
            Outcome(result["outcome"]),
            result["procedure"],
            result["state"],
            result["prompt"],
            retry_limits=record.retry_limits,
            count=record.semantics.count,
            sop_id=record.sop_id,
        )
        if advanced.failure is not None:
            recovered = await self._recover(instance, item.event, result["event_type"], cause_of(advanced.failure))
            if recovered is not None:
                self._count_event(record, result["event_type"], Outcome.REJECTED.value, result)
                return recovered
        after = advanced.snapshot
        history, closed = (
            succeeded(record)
            if advanced.outcome in (Outcome.TRANSITIONED, Outcome.STAYED, Outcome.ENDED)
            else (record.recovery_history, ())
        )
        new_record = record.model_copy(
            update={
                "procedure": after.procedure,
                "state": after.state,
                "version": after.version,
                "retries": after.retries,
                "phase": after.phase,
                "last_prompt": after.last_prompt,
                "senders": advance_senders(record.senders, item.sender, item.seq),
                "error": None if advanced.failure is None else error_to_wire(advanced.failure),
                "entered_version": after.version if advanced.outcome is Outcome.TRANSITIONED else record.entered_version,
                "recovery_history": history,
            }
        )
        entry = LogEntry(
            sop_id=record.sop_id,
            version=after.version,
            event_id=event_id,
            event_type=result["event_type"],
            sender=item.event["data"].get("sender"),
            outcome=advanced.outcome.value,
            from_procedure=record.procedure["name"],
            to_procedure=after.procedure["name"],
            prompt=advanced.prompt,
        )
        timer = timeout_timer(new_record, now=time.time()) if advanced.outcome is Outcome.TRANSITIONED else None
        timers = () if timer is None else (timer,)
        if (logged := await self._commits.commit(Commit(record=new_record, entry=entry, timers=timers).rows(record))) is not None:
            return await self._committed_elsewhere(instance, event_id, logged)
        instance.seen.add(event_id)
        self._count_event(record, entry.event_type, entry.outcome, result)
        if advanced.outcome in (Outcome.TRANSITIONED, Outcome.ENDED):
            self._metrics.count(names.TRANSITIONS, (record.name, entry.from_procedure, entry.to_procedure))
        self._count_recovery(closed)
        instance.record = new_record
        self._shared.committed(new_record)  # a distributed state's pending keys, in the background
        for armed in timers:
            self._timers.arm(armed)
        instruction = new_record.procedure.get("prompt")
        reply: Reply = receipt_reply(entry, instruction) if advanced.failure is None else {"error": new_record.error or {}}
        instance.remember(event_id, reply)
        if new_record.phase != "running":
            self._end(instance, advanced.failure)
        return reply

    async def _committed_elsewhere(self, instance: Instance, event_id: str, logged: str) -> Reply:
        # Another writer committed this event id first (e.g. a host split from the cluster):
        # the state is not applied twice; continue from what is stored. Or (`{"error": ...}`,
        # a VersionConflict) it committed another event at this version: this one is refused.
        logger.warning("sop=<%s>, event=<%s> | committed elsewhere first; reloading", instance.record.sop_id, event_id)
        stored = await self._store.load.remote(instance.record.sop_id, 0)
        instance.record = stored.record if stored is not None else instance.record
        answer = json.loads(logged)
        if "error" in answer:
            return {"error": answer["error"]}
        return receipt_reply(LogEntry.model_validate(answer))

    # -- recovery: the ladder's steps, timeouts, a person's resolution -----------------------

    async def _recover(self, instance: Instance, event: dict[str, Any], event_type: str, cause: Cause) -> Reply | None:
        """Take the recovery policy's step for a failed event; None when no rung applies to
        its cause (the event then fails or is rejected as without a policy)."""
        record = instance.record
        policy = await self._policy(record)
        if policy is None or not policy.rungs_for(cause.kind):
            return None
        # A Retry's `retry_on` predicate is user code: it runs in a procedure actor (hosts never
        # import workflow code); the ladder reads its answers.
        answers = {
            rung.retry_on: await self._procedures.retryable(record, rung.retry_on, cause.error)
            for _, rung in policy.rungs_for(cause.kind)
            if isinstance(rung, Retry) and rung.retry_on is not None
        }
        decision = decide(
            policy, cause, history=history_of(record), state=record.state.get("data"),
            resolve=lambda reference: lambda _error: answers[reference],
        )
        step = decision.step
        fallback = None
        if isinstance(step, UseFallback) and step.target == "procedure":
            fallback = await self._procedures.construct(record, step.to)
        commit = step_commit(record, event=event, event_type=event_type, decision=decision, fallback_procedure=fallback)
        logger.warning("sop=<%s>, cause=<%s> | %s", record.sop_id, cause.kind, commit.entry.prompt)
        return await self._apply(instance, commit)

    async def _policy(self, record: SOPRecord) -> RecoveryPolicy | None:
        """The recovery policy of the SOP's current procedure: its class's, else the SOP's."""
        return policy_of(record, await self._procedures.class_policy(record))

    async def _timed_out(self, instance: Instance, event: dict[str, Any], event_id: str) -> Reply:
        """A procedure's timeout fired: a recovery cause if the SOP is still in that visit."""
        record = instance.record
        if is_stale_timeout(record, event):
            return {"outcome": Outcome.IGNORED.value, "procedure": record.procedure["name"], "version": record.version}
        cause = timeout_cause(record, event)
        if recovered := await self._recover(instance, event, "ProcedureTimedOut", cause):
            return recovered
        failure = cause.exception()
        return await self._apply(instance, fail_commit(record, event=event, event_type="ProcedureTimedOut", error=failure))

    async def _resolve(self, instance: Instance, resolution: Resolution) -> Reply:
        """Apply a person's resolution (on the SOP's drain loop)."""
        record = instance.record
        if resolution.event is None:
            reference = fallback_reference(await self._policy(record)) if resolution.action == "fallback" else None
            fallback = None if reference is None else await self._procedures.construct(record, reference)
            return await self._apply(instance, resolution_commit(record, resolution, fallback_procedure=fallback))
        history, closed = resolved_history(record, resolution)
        data = resolution.event.get("data")
        event = {**resolution.event, "data": {"id": f"{record.sop_id}~resolution~{record.version + 1}", **(data or {})}}
        running = record.model_copy(update={"phase": "running", "waiting": None, "recovery_history": history})
        result = await self._procedures.run(running, event)
        if "error" in result:
            message = error_from_wire(result["error"])
            raise InputError(f"sop=<{record.sop_id}> | the event does not fit: {message}", fields=("event",))
        if result["outcome"] in (Outcome.REJECTED.value, Outcome.IGNORED.value):
            why = result.get("prompt") or "it has no handler for this event"
            raise InputError(
                f"sop=<{record.sop_id}> | procedure {record.procedure['name']} does not take this event: {why}",
                fields=("event",),
            )
        instance.record = running
        try:
            reply = await self._commit_event(instance, SendItem(record.sop_id, event), event_id_of(event), result)
        except BaseException:
            instance.record = record
            raise
        self._count_recovery(closed)
        return reply

    async def _apply(self, instance: Instance, commit: RecoveryCommit) -> Reply:
        """Commit a recovery step or resolution; arm its timers, count it, wake or tell who waits."""
        rows = Commit(record=commit.record, entry=commit.entry, timers=commit.timers).rows(instance.record)
        if (logged := await self._commits.commit(rows)) is not None:
            return await self._committed_elsewhere(instance, commit.entry.event_id, logged)
        instance.seen.add(commit.entry.event_id)
        instance.record = commit.record
        for timer in commit.timers:
            self._timers.arm(timer)
        self._count_recovery(commit.closed)
        reply = cast(Reply, {**commit.reply, "instruction": commit.record.procedure.get("prompt")})
        if "error" not in reply:
            instance.remember(commit.entry.event_id, reply)
        if commit.intervention is not None:
            self._spawn(self._parents.tell(commit.record, intervention_event(commit.record, commit.intervention)))
        if not commit.record.active:
            self._end(instance, commit.failure)
        return reply

    def _count_recovery(self, closed: tuple[tuple[str, str], ...]) -> None:
        for strategy, outcome in closed:
            self._metrics.count(names.RECOVERY_STEPS, (strategy, outcome))

    def _count_event(self, record: SOPRecord, event_type: str, outcome: str, result: HandlerResult) -> None:
        procedure = record.procedure["name"]
        self._metrics.count(names.EVENTS, (record.name, procedure, event_type, outcome))
        if "seconds" in result:
            self._metrics.observe(names.HANDLER_DURATION, (procedure, event_type), result["seconds"])

    # -- endings ---------------------------------------------------------------------------

    async def _apply_cancel(self, instance: Instance, discarded: tuple[str, str] | None) -> Reply:
        """Commit the pending cancel (on the drain loop: nothing else commits for this SOP now).

        Args:
            discarded: (event id, event type) of an event whose handler ran meanwhile; its
                result is dropped and logged as `discarded`.
        """
        assert instance.cancelling is not None
        reason, notify_parent, done = instance.cancelling
        error = SOPCancelled(instance.record.sop_id, reason)
        cancelled, entry = instance.cancel_commit(error, notify_parent=notify_parent, discarded=discarded)
        await self._commits.commit(Commit(record=cancelled, entry=entry).rows(instance.record))
        instance.record = cancelled
        if discarded is not None:
            instance.seen.add(discarded[0])
        self._end(instance, error)
        if not done.done():
            done.set_result(None)
        return {"error": error_to_wire(error)}

    def _end(self, instance: Instance, error: SopyError | None) -> None:
        """The SOP left `running`: fail what is queued, wake `result()` waiters, tell the parent."""
        record = instance.record
        self._metrics.count(names.SOPS_FINISHED, (record.name, record.phase))
        if error is not None:
            failed: Reply = {"error": error_to_wire(error)}
            while instance.queue:
                queued = instance.queue.popleft()
                if not queued.reply.done():
                    queued.reply.set_result(failed)
        for waiter in instance.waiters:
            if not waiter.done():
                waiter.set_result(None)
        instance.waiters.clear()
        self._spawn(self._parents.notify(record))

    def _notified(self, record: SOPRecord) -> None:
        """The parent was told of `record`'s end: keep the flag if nothing was committed since."""
        instance = self._instances.find(record.sop_id)
        if instance is not None and instance.record.version == record.version:
            instance.record = record
