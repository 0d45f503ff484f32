"""SOPHost actor: runs many SOP instances, one ordered queue each; the only writer of their state.

An async Ray actor. For each event of an SOP: deduplicate by id → ProcedureActor runs the
handler → commit (version + 1) to the Store → reply. Hosts never import workflow code: they
hold procedures and states in JSON form. A restarted host reloads SOPs lazily from the Store.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import ray

from sopy_actors.core.events import event_to_wire
from sopy_actors.core.lifecycle import SubSOPCompleted, SubSOPError, SubSOPFailed, SubSOPResult
from sopy_actors.core.options import ProcedureOptions
from sopy_actors.core.transition import FINISHED_PROMPT, Outcome
from sopy_actors.errors import (
    InputError,
    RecoveryExhausted,
    RuntimeUnavailable,
    SOPCancelled,
    SOPFailed,
    SopyError,
    UnknownSOP,
)
from sopy_actors.monitoring import names
from sopy_actors.monitoring.reporter import MetricsReporter
from sopy_actors.runtime.coalesce import Coalescer
from sopy_actors.runtime.options import STORE_ACTOR, procedure_actor_name, ray_options
from sopy_actors.runtime.procedure_actor import ProcedureActor
from sopy_actors.runtime.store import Commit, CommitRows, LogEntry, SOPRecord

logger = logging.getLogger(__name__)

_RECENT_REPLIES = 256
_MAX_SENDERS = 64
_GAP_SECONDS = 60.0
_NOTIFY_ATTEMPTS = 8  # tries to tell a parent, backing off to 30 s, before leaving it to a restart


@dataclass(slots=True)
class _Queued:
    event: dict[str, Any]
    sender: str | None
    seq: int | None
    reply: asyncio.Future[dict[str, Any]]


@dataclass(slots=True)
class _Instance:
    """One live SOP: its last committed record plus what is in flight."""

    record: SOPRecord
    queue: deque[_Queued] = field(default_factory=deque)
    busy: bool = False
    replies: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    held: dict[str, dict[int, _Queued]] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)
    failure: SopyError | None = None

    def remember(self, event_id: str, reply: dict[str, Any]) -> None:
        self.replies[event_id] = reply
        while len(self.replies) > _RECENT_REPLIES:
            self.replies.popitem(last=False)


def _reply(entry: LogEntry) -> dict[str, Any]:
    return {
        "outcome": entry.outcome,
        "procedure": entry.to_procedure,
        "version": entry.version,
        "prompt": entry.prompt,
    }


async def _run_batch(actor: Any, calls: list[list[Any]]) -> list[dict[str, Any]]:
    """One `ProcedureActor.handle_batch` round trip: JSON out, results with their errors back."""
    encoded, errors = await actor.handle_batch.remote(json.dumps(calls))
    results: list[dict[str, Any]] = json.loads(encoded)
    for index, error in errors.items():
        results[index]["error"] = error
    return results


def _child_event(record: SOPRecord) -> SubSOPCompleted | SubSOPFailed:
    """What a finished child tells its parent, from its final record alone."""
    if record.phase == "done":
        result = SubSOPResult(child_id=record.sop_id, name=record.name, state=record.state["data"])
        return SubSOPCompleted(id=f"sub-sop-completed-{record.sop_id}", payload=result)
    error = record.error or {}
    detail = SubSOPError(
        child_id=record.sop_id,
        name=record.name,
        error_type=str(error.get("type", "SOPFailed")),
        message=str(error.get("message", record.phase)),
    )
    return SubSOPFailed(id=f"sub-sop-failed-{record.sop_id}", payload=detail)


@ray.remote
class SOPHostActor:
    """Hosts SOP instances routed to it by id; all methods run on one event loop."""

    def __init__(self, namespace: str, name: str) -> None:
        self._namespace = namespace
        self._name = name
        self._instances: dict[str, _Instance] = {}
        self._loading: dict[str, asyncio.Future[_Instance]] = {}
        # Procedure actor name -> the coalescer batching this host's handler calls to it.
        self._procedure_calls: dict[str, Coalescer[list[Any], dict[str, Any]]] = {}
        self._options: dict[str, ProcedureOptions] = {}
        self._round_robin = 0
        self._store = ray.get_actor(STORE_ACTOR, namespace=namespace)
        self._commits: Coalescer[CommitRows, None] = Coalescer(self._store.commit_batch.remote)
        self._background: set[asyncio.Task[Any]] = set()
        self._metrics = MetricsReporter(namespace, kind="host")
        # Ray runs an async actor's __init__ on its event loop. A restarted host tells the
        # parents its crash left untold (see _notify_parent).
        self._spawn(self._resend_pending_notifications())
        logger.info("host=<%s> | started", name)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, record: SOPRecord) -> None:
        """Create an SOP from its first checkpoint; idempotent for a retried identical call."""
        if record.sop_id in self._instances or not await self._store.create.remote(record):
            stored = await self._store.load.remote(record.sop_id, 0)
            if stored is None or stored.record.start_token != record.start_token:
                raise InputError(
                    f"SOP id {record.sop_id!r} exists already; use sopy_actors.attach() to reach it",
                    fields=("sop_id",),
                )
        if record.sop_id not in self._instances:
            self._instances[record.sop_id] = _Instance(record)
            self._metrics.count(names.SOPS_STARTED, (record.name,))
        logger.debug("sop=<%s>, host=<%s> | started", record.sop_id, self._name)

    async def send(
        self, sop_id: str, event: dict[str, Any], sender: str | None = None, seq: int | None = None
    ) -> dict[str, Any]:
        """Queue an event and return its reply once committed.

        Events from one sender (with increasing `seq` from 0) are applied in the order sent,
        whatever order Ray delivers them in. Errors come back as `{"error": SopyError}`.
        """
        return await (await self._queue(sop_id, event, sender, seq))

    async def send_batch(self, items_json: str) -> tuple[str, dict[int, SopyError]]:
        """`send` for many events (of any of this host's SOPs) in one call.

        Args:
            items_json: a JSON list of [sop_id, wire event, sender, seq].

        Returns:
            The JSON list of replies in item order (a failed item's entry is null) and the
            errors by item index. JSON crosses far faster than Ray's pickling of nested dicts.
        """
        items = json.loads(items_json)
        # Load the SOPs not in memory (after a restart) side by side, then queue in item order.
        missing = {item[0] for item in items if item[0] not in self._instances}
        await asyncio.gather(*(self._instance(sop_id) for sop_id in missing), return_exceptions=True)
        replies = await asyncio.gather(*[await self._queue(*item) for item in items])
        errors = {index: reply["error"] for index, reply in enumerate(replies) if "error" in reply}
        return json.dumps([None if "error" in reply else reply for reply in replies]), errors

    async def _queue(
        self, sop_id: str, event: dict[str, Any], sender: str | None, seq: int | None
    ) -> asyncio.Future[dict[str, Any]]:
        """Queue the event on its SOP; the future resolves to its reply once committed."""
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        try:
            instance = await self._instance(sop_id)
        except SopyError as error:
            reply.set_result({"error": error})
        else:
            self._admit(instance, _Queued(event, sender, seq, reply))
        return reply

    async def wait_result(self, sop_id: str) -> dict[str, Any]:
        """Wait until the SOP ends; `{"state": encoded}` or `{"error": SopyError}`."""
        try:
            instance = await self._instance(sop_id)
        except SopyError as error:
            return {"error": error}
        if instance.record.phase == "running":
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            instance.waiters.append(waiter)
            await waiter
        return self._outcome(instance)

    async def status(self, sop_id: str) -> dict[str, Any]:
        """Where the SOP is: procedure, version, retries, phase, queue, children."""
        try:
            instance = await self._instance(sop_id)
        except SopyError as error:
            return {"error": error}
        record = instance.record
        phase = record.phase
        if phase == "running":
            phase = "running" if instance.busy else "waiting"
        return {
            "sop_id": sop_id,
            "name": record.name,
            "procedure": record.procedure["name"],
            "version": record.version,
            "retries": record.retries,
            "phase": phase,
            "queued": len(instance.queue),
            "parent_id": record.parent_id,
            "children": await self._store.children.remote(sop_id),
            "host": self._name,
            "last_prompt": record.last_prompt,
        }

    async def state(self, sop_id: str) -> dict[str, Any]:
        """The committed state in JSON form (`{"type", "data"}`)."""
        try:
            instance = await self._instance(sop_id)
        except SopyError as error:
            return {"error": error}
        return {"state": instance.record.state}

    async def cancel(self, sop_id: str, reason: str = "cancelled", notify_parent: bool = True) -> None:
        """Cancel the SOP and, recursively, its children; queued events fail with SOPCancelled."""
        try:
            instance = await self._instance(sop_id)
        except UnknownSOP:
            return
        if instance.record.phase == "running":
            record = instance.record.model_copy(
                update={
                    "phase": "cancelled",
                    "error": {"type": "SOPCancelled", "message": reason},
                    "parent_notified": not notify_parent,  # a cancelled parent is not told
                }
            )
            await self._commits.call(Commit(record=record).rows())
            instance.record = record
            self._fail(instance, SOPCancelled(sop_id, reason), notify_parent=notify_parent)
        for child in await self._store.children.remote(sop_id):
            stored = await self._store.load.remote(child, 0)
            if stored is not None and stored.record.phase == "running":
                host = ray.get_actor(stored.record.host, namespace=self._namespace)
                await host.cancel.remote(child, f"parent {sop_id} was cancelled", False)

    async def statistics(self) -> dict[str, Any]:
        """Counts for monitoring: live instances, busy ones, queued events; by SOP name and phase."""
        sops: dict[str, dict[str, int]] = {}
        queued: dict[str, int] = {}
        for instance in self._instances.values():
            name, phase = instance.record.name, instance.record.phase
            if phase == "running" and not instance.busy:
                phase = "waiting"
            phases = sops.setdefault(name, {})
            phases[phase] = phases.get(phase, 0) + 1
            if instance.queue:
                queued[name] = queued.get(name, 0) + len(instance.queue)
        return {
            "sops": sops,
            "queued_by_sop": queued,
            "host": self._name,
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
            "instances": len(self._instances),
            "busy": sum(1 for i in self._instances.values() if i.busy),
            "queued": sum(len(i.queue) for i in self._instances.values()),
        }

    async def ping(self) -> str:
        """Liveness check; returns the host's name."""
        return self._name

    # -- instances -------------------------------------------------------------------------

    async def _instance(self, sop_id: str) -> _Instance:
        if not isinstance(sop_id, str) or not sop_id:
            raise InputError("sop_id must be a non-empty str", fields=("sop_id",))
        instance = self._instances.get(sop_id)
        if instance is not None:
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

    async def _load(self, sop_id: str) -> _Instance:
        stored = await self._store.load.remote(sop_id)
        if stored is None:
            raise UnknownSOP(sop_id)
        if stored.record.host != self._name:
            raise InputError(f"SOP {sop_id!r} lives on host {stored.record.host}, not {self._name}")
        instance = _Instance(stored.record)
        for entry in stored.recent:
            instance.remember(entry.event_id, _reply(entry))
        instance.expected = dict(stored.record.senders)
        self._instances[sop_id] = instance
        logger.info("sop=<%s>, version=<%d> | reloaded from the store", sop_id, stored.record.version)
        return instance

    # -- ordering --------------------------------------------------------------------------

    def _admit(self, instance: _Instance, queued: _Queued) -> None:
        sender, seq = queued.sender, queued.seq
        if sender is None or seq is None:
            self._enqueue(instance, queued)
            return
        expected = instance.expected.get(sender, 0)
        if seq > expected:
            instance.held.setdefault(sender, {})[seq] = queued
            self._spawn(self._release_after_gap(instance, sender, seq))
            return
        self._enqueue(instance, queued)
        if seq == expected:
            self._release(instance, sender, seq + 1)

    def _release(self, instance: _Instance, sender: str, expected: int) -> None:
        held = instance.held.get(sender, {})
        while expected in held:
            self._enqueue(instance, held.pop(expected))
            expected += 1
        instance.expected[sender] = expected
        if not held:
            instance.held.pop(sender, None)

    async def _release_after_gap(self, instance: _Instance, sender: str, seq: int) -> None:
        # A lost message must not stall a sender forever: after a while, skip the gap.
        await asyncio.sleep(_GAP_SECONDS)
        held = instance.held.get(sender, {})
        if seq in held and instance.expected.get(sender, 0) < seq:
            logger.warning("sop=<%s>, sender=<%s> | skipping a gap before seq %d", instance.record.sop_id, sender, seq)
            self._release(instance, sender, min(held))

    def _enqueue(self, instance: _Instance, queued: _Queued) -> None:
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

    async def _drain(self, instance: _Instance) -> None:
        try:
            while instance.queue:
                queued = instance.queue.popleft()
                try:
                    reply = await self._process(instance, queued)
                except SopyError as error:
                    reply = {"error": error}
                except Exception as error:  # noqa: BLE001 - the sender must hear of it
                    logger.exception("sop=<%s> | event processing failed", instance.record.sop_id)
                    reply = {"error": RuntimeUnavailable(f"{type(error).__name__}: {error}")}
                if not queued.reply.done():
                    queued.reply.set_result(reply)
        finally:
            instance.busy = False

    # -- one event -------------------------------------------------------------------------

    async def _process(self, instance: _Instance, queued: _Queued) -> dict[str, Any]:
        record = instance.record
        data = queued.event.get("data") if isinstance(queued.event, dict) else None
        event_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(event_id, str) or not event_id:
            raise InputError("Invalid event message: 'data.id' must be a non-empty str")
        if event_id in instance.replies:
            return instance.replies[event_id]
        if record.phase == "done":
            return {
                "outcome": Outcome.REJECTED.value,
                "procedure": "End",
                "version": record.version,
                "prompt": FINISHED_PROMPT,
            }
        if record.phase != "running":
            reason = str((record.error or {}).get("message", record.phase))
            if record.phase == "cancelled":
                return {"error": SOPCancelled(record.sop_id, reason)}
            return {"error": SOPFailed(record.sop_id, f"cannot accept events: {reason}")}
        result = await self._run_handler(record, queued.event)
        if "error" in result:
            wire_type = str(queued.event.get("type", ""))
            self._count_event(record, wire_type.rpartition(":")[2].rpartition(".")[2], "failed", result)
            return {"error": result["error"]}
        outcome = Outcome(result["outcome"])
        retries = {Outcome.REJECTED: record.retries + 1, Outcome.IGNORED: record.retries}.get(outcome, 0)
        senders = dict(record.senders)
        if queued.sender is not None and queued.seq is not None:
            senders[queued.sender] = max(senders.get(queued.sender, 0), queued.seq + 1)
            while len(senders) > _MAX_SENDERS:
                senders.pop(next(iter(senders)))
        exhausted = outcome is Outcome.REJECTED and retries > record.retry_limits
        update: dict[str, Any] = {
            "procedure": result["procedure"],
            "state": result["state"],
            "version": record.version + 1,
            "retries": retries,
            "senders": senders,
            "last_prompt": result["prompt"] if result["prompt"] is not None else record.last_prompt,
        }
        error: SopyError | None = None
        if exhausted:
            error = RecoveryExhausted(record.sop_id, retries, result["prompt"])
            update.update(phase="failed", error={"type": "RecoveryExhausted", "message": str(error)})
        elif outcome is Outcome.ENDED:
            update["phase"] = "done"
        new_record = record.model_copy(update=update)
        entry = LogEntry(
            sop_id=record.sop_id,
            version=new_record.version,
            event_id=event_id,
            event_type=result["event_type"],
            sender=data.get("sender"),
            outcome=outcome.value,
            from_procedure=record.procedure["name"],
            to_procedure=new_record.procedure["name"],
            prompt=result["prompt"],
        )
        await self._commits.call(Commit(record=new_record, entry=entry).rows())
        self._count_event(record, entry.event_type, entry.outcome, result)
        if outcome in (Outcome.TRANSITIONED, Outcome.ENDED):
            self._metrics.count(names.TRANSITIONS, (record.name, entry.from_procedure, entry.to_procedure))
        instance.record = new_record
        reply = {"error": error} if error is not None else _reply(entry)
        instance.remember(event_id, reply)
        if error is not None:
            self._fail(instance, error, notify_parent=True)
        elif outcome is Outcome.ENDED:
            self._finish(instance)
        return reply

    def _count_event(self, record: SOPRecord, event_type: str, outcome: str, result: dict[str, Any]) -> None:
        procedure = record.procedure["name"]
        self._metrics.count(names.EVENTS, (record.name, procedure, event_type, outcome))
        if "seconds" in result:
            self._metrics.observe(names.HANDLER_DURATION, (procedure, event_type), result["seconds"])

    async def _run_handler(self, record: SOPRecord, event: dict[str, Any]) -> dict[str, Any]:
        filters = [record.filters.get("observed", []), record.filters.get("agents", [])]
        call = [record.sop_id, record.procedure, record.state, event, filters]
        try:
            result = await self._procedure_calls_for(record).call(call)
        except ray.exceptions.RayActorError as error:
            return {"error": RuntimeUnavailable(f"procedure actor unavailable: {error}")}
        assert result is not None
        return result

    def _procedure_calls_for(self, record: SOPRecord) -> Coalescer[list[Any], dict[str, Any]]:
        procedure = record.procedure
        # Options are per class (`sop_options`): validate them once per procedure type.
        options = self._options.get(procedure["type"])
        if options is None:
            options = self._options[procedure["type"]] = ProcedureOptions.model_validate(procedure.get("options", {}))
        self._round_robin += 1
        name = procedure_actor_name(procedure["type"], options, self._round_robin % options.replicas, record.runtime_env)
        calls = self._procedure_calls.get(name)
        if calls is None:
            actor = ProcedureActor.options(
                **ray_options(
                    name=name,
                    namespace=self._namespace,
                    num_cpus=options.num_cpus,
                    resources=options.resources,
                    max_concurrency=options.max_concurrency,
                    runtime_env=record.runtime_env,
                )
            ).remote(self._namespace, options.max_concurrency, record.runtime_env)
            calls = self._procedure_calls[name] = Coalescer(functools.partial(_run_batch, actor))
        return calls

    # -- endings ---------------------------------------------------------------------------

    def _outcome(self, instance: _Instance) -> dict[str, Any]:
        record = instance.record
        if record.phase == "done":
            return {"state": record.state}
        if instance.failure is not None:
            return {"error": instance.failure}
        message = str((record.error or {}).get("message", record.phase))
        if record.phase == "cancelled":
            return {"error": SOPCancelled(record.sop_id, message)}
        return {"error": SOPFailed(record.sop_id, message)}

    def _wake(self, instance: _Instance) -> None:
        for waiter in instance.waiters:
            if not waiter.done():
                waiter.set_result(None)
        instance.waiters.clear()

    def _finish(self, instance: _Instance) -> None:
        record = instance.record
        self._metrics.count(names.SOPS_FINISHED, (record.name, record.phase))
        self._wake(instance)
        self._spawn(self._notify_parent(record))

    def _fail(self, instance: _Instance, error: SopyError, *, notify_parent: bool) -> None:
        instance.failure = error
        record = instance.record
        self._metrics.count(names.SOPS_FINISHED, (record.name, record.phase))
        while instance.queue:
            queued = instance.queue.popleft()
            if not queued.reply.done():
                queued.reply.set_result({"error": error})
        self._wake(instance)
        if notify_parent:
            self._spawn(self._notify_parent(record))

    async def _notify_parent(self, record: SOPRecord) -> None:
        """Tell the parent that this child ended, retrying; then record that it was told.

        The event's id is fixed per child, so a resend (a retry, or a restarted host finishing
        what its crash interrupted) is recognised by the parent and applied once.
        """
        if not record.parent_pending:
            return
        wire = event_to_wire(_child_event(record))
        for attempt in range(_NOTIFY_ATTEMPTS):
            try:
                await self._send_to_parent(record, wire)
                break
            except (ray.exceptions.RayError, ValueError) as error:  # ValueError: no such actor yet
                logger.warning("sop=<%s>, parent=<%s> | telling the parent failed: %s", record.sop_id, record.parent_id, error)
                await asyncio.sleep(min(2.0**attempt, 30.0))
        else:
            logger.error("sop=<%s>, parent=<%s> | parent not told; the next start of this host retries", record.sop_id, record.parent_id)
            return
        told = record.model_copy(update={"parent_notified": True})
        await self._commits.call(Commit(record=told).rows())
        instance = self._instances.get(record.sop_id)
        if instance is not None and instance.record.version == record.version:
            instance.record = told

    async def _send_to_parent(self, record: SOPRecord, wire: dict[str, Any]) -> None:
        assert record.parent_id is not None
        stored = await self._store.load.remote(record.parent_id, 0)
        if stored is None:
            logger.warning("sop=<%s>, parent=<%s> | parent is gone", record.sop_id, record.parent_id)
            return
        parent_host = ray.get_actor(stored.record.host, namespace=self._namespace)
        reply = await parent_host.send.remote(record.parent_id, wire, None, None)
        if "error" in reply:
            logger.warning("sop=<%s>, parent=<%s> | parent refused the child's result: %s", record.sop_id, record.parent_id, reply["error"])

    async def _resend_pending_notifications(self) -> None:
        for record in await self._store.pending_notifications.remote(self._name):
            logger.info("sop=<%s>, parent=<%s> | telling the parent after a restart", record.sop_id, record.parent_id)
            self._spawn(self._notify_parent(record))
