"""One host's SOP queues and the path of each event: dedupe → handler → advance → commit → reply.

Each SOP has one ordered queue (`Instance.queue`) drained by one task at a time, so nothing of
an SOP overlaps: events, a person's resolution, a rollback, a cancel. A plain object the
SOPHost actor delegates to: Ray wraps every method of an actor class for tracing, private
helpers too, and this path runs per event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

from sopy_actors.core.transition import Outcome, Snapshot, advance
from sopy_actors.errors import (
    AwaitingHuman,
    InputError,
    SOPCancelled,
    SOPFailed,
    SopyError,
    StateError,
    as_sopy_error,
    error_from_wire,
    error_to_wire,
)
from sopy_actors.recovery.causes import cause_of
from sopy_actors.recovery.ladder import Cause, UseFallback, decide
from sopy_actors.recovery.policy import RecoveryPolicy, Retry
from sopy_actors.runtime.commits import Commit, CommitRows
from sopy_actors.runtime.host_commits import HostCommits
from sopy_actors.runtime.instances import Instance, Instances, Queued, event_id_of, receipt_reply
from sopy_actors.runtime.messages import Answer, HandlerResult, Reply, SendItem
from sopy_actors.runtime.ordering import advance_senders
from sopy_actors.runtime.parents import ParentNotifier
from sopy_actors.runtime.procedures import ProcedureCalls
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

__all__ = ["EventPath"]

logger = logging.getLogger(__name__)

_GAP_SECONDS = 60.0
_CANCEL_ATTEMPTS = 3  # commits of one cancel refused by the store (another writer) before it fails


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What a handler's result commits (`EventPath._prepare`): the record before and after,
    the log entry, the timers it arms, and the failure it fails the SOP with (if any)."""

    item: SendItem
    result: HandlerResult
    previous: SOPRecord
    record: SOPRecord
    entry: LogEntry
    timers: tuple[Timer, ...]
    outcome: Outcome
    failure: SopyError | None
    closed: tuple[tuple[str, str], ...]

    def rows(self) -> CommitRows:
        return Commit(record=self.record, entry=self.entry, timers=self.timers).rows(self.previous)


class _Lane:
    """The events of one `send_batch` that skip their SOPs' queues: one per SOP, each SOP
    claimed (busy) until its event is answered, then handed back (`release`) at once."""

    def __init__(self, release: Callable[[Instance], None]) -> None:
        self.claimed: list[tuple[int, Instance, SendItem, str]] = []  # (item index, ...)
        self._replies: list[Reply | None] = []
        self._release = release

    def add(self, index: int, instance: Instance, item: SendItem, event_id: str) -> Reply:
        """Take a claimed event; returns a placeholder for its reply (see `replies`)."""
        self.claimed.append((index, instance, item, event_id))
        self._replies.append(None)
        return {}

    def answered(self, position: int, reply: Reply) -> None:
        """The event at `position` (in `claimed`) is answered: its SOP goes back to its queue."""
        if self._replies[position] is None:
            self._replies[position] = reply
            self._release(self.claimed[position][1])

    async def answer(self, position: int, work: Awaitable[Reply]) -> None:
        """Answer the event at `position` with what `work` returns (an error if it raises)."""
        try:
            reply = await work
        except Exception as error:
            reply = _failed(self.claimed[position][1].record.sop_id, error)
        self.answered(position, reply)

    def fail(self, error: Exception | None) -> None:
        """Answer every event not answered yet with `error` (None: an internal error)."""
        unanswered = [position for position, reply in enumerate(self._replies) if reply is None]
        if not unanswered:
            return
        failed = _failed(f"{len(unanswered)} SOPs", error or SopyError("the batch ended before this event was answered"))
        for position in unanswered:
            self.answered(position, failed)

    def replies(self) -> list[tuple[int, Reply]]:
        """(item index, reply) of each event."""
        return [(index, reply or {}) for (index, *_), reply in zip(self.claimed, self._replies, strict=True)]


class EventPath:
    """Queues and processes the events of one host's SOPs; runs on the host's event loop.

    Args:
        store: the Store actor (event-log lookups, version contents, reloads after a conflicting
            commit).
        instances: the host's SOPs in memory.
        procedures: runs handlers in procedure actors.
        commits: where commits go.
        timers: the host's durable timers (armed by commits).
        shared: distributed states' sync (told of each commit).
        parents: tells parents of their children's ends and interventions.
        metrics: the host's reporter.
        spawn: runs a coroutine in the background on the host's loop (holding its task).
    """

    def __init__(
        self,
        *,
        store: Any,
        instances: Instances,
        procedures: ProcedureCalls,
        commits: HostCommits,
        timers: HostTimers,
        shared: SharedSync,
        parents: ParentNotifier,
        metrics: MetricsReporter,
        spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
    ) -> None:
        self._store = store
        self._instances = instances
        self._procedures = procedures
        self._commits = commits
        self._timers = timers
        self._shared = shared
        self._parents = parents
        self._metrics = metrics
        self._spawn = spawn

    # -- queueing --------------------------------------------------------------------------

    async def queue(self, item: SendItem) -> asyncio.Future[Reply]:
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

    async def send_many(self, items: list[SendItem]) -> list[Reply]:
        """Queue and process events of any of the host's SOPs; their replies in item order.

        An event whose SOP is in memory and idle (nothing queued or in flight), that is in
        turn for its sender and not seen before, skips the SOP's queue (the batch lane): such
        events run in one handler call per procedure actor and commit together, without a
        task or a future of their own. Every other event (a second one of an SOP too) takes
        its queue. The lane runs as a task of its own: a caller that goes away (or a later item
        that fails to queue) does not stop it.
        """
        replies: list[Reply | asyncio.Future[Reply]] = []
        lane = _Lane(self._release)
        try:
            for item in items:  # claimed in order: an SOP's later items queue behind its claimed one
                claimed = self._claim(item)
                replies.append(lane.add(len(replies), *claimed) if claimed is not None else await self.queue(item))
        finally:  # what was claimed runs even if queueing a later item failed (as what was queued does)
            work = self._spawn(self._run_lane(lane)) if lane.claimed else None
        if work is not None:
            for index, reply in await asyncio.shield(work):
                replies[index] = reply
        return [await reply if isinstance(reply, asyncio.Future) else reply for reply in replies]

    def _claim(self, item: SendItem) -> tuple[Instance, SendItem, str] | None:
        """Take `item` for the batch lane (its SOP marked busy), or None: it takes the queue."""
        instance = self._instances.find(item.sop_id)
        if instance is None or instance.busy or instance.queue or instance.cancelling is not None:
            return None
        try:
            event_id = event_id_of(item.event)
        except InputError:
            return None
        if (
            instance.record.phase != "running"
            or is_timeout_event(item.event)
            or event_id in instance.replies
            or instance.seen.may_contain(event_id)
            or not instance.order.take(item.sender, item.seq, floor=item.floor)
        ):
            return None
        instance.busy = True
        self._instances.touch(instance)
        return instance, item, event_id

    async def _run_lane(self, lane: _Lane) -> list[tuple[int, Reply]]:
        """Process the lane's events: the handlers in one call per actor; as each call answers,
        its usual outcomes are committed together, anything else (a slow handler, an error,
        recovery, a cancel asked meanwhile) takes the one-event path. Each SOP goes back to its
        queue as soon as its event is answered."""
        claimed = lane.claimed

        async def answered(indexes: list[int], results: list[HandlerResult]) -> None:
            usual: list[tuple[int, _Prepared]] = []
            others: list[Awaitable[None]] = []
            for index, result in zip(indexes, results, strict=True):
                instance, item, event_id = claimed[index][1:]
                try:
                    if "pending" in result:  # a slow handler: its result is fetched apart
                        others.append(lane.answer(index, self._after_slow(instance, item, event_id, result)))
                        continue
                    prepared = self._prepare(instance, item, event_id, result) if self._usual(instance, item, result) else None
                except Exception as error:
                    lane.answered(index, _failed(instance.record.sop_id, error))
                    continue
                if prepared is None:
                    others.append(lane.answer(index, self._after_handler(instance, item, event_id, result)))
                elif prepared.failure is not None:  # past the retry limit: recovery, or the SOP fails
                    others.append(lane.answer(index, self._commit_event(instance, prepared)))
                else:
                    usual.append((index, prepared))
            await asyncio.gather(self._commit_usual(lane, usual), *others)

        try:
            await self._procedures.run_many([(entry[1].record, entry[2].event) for entry in claimed], answered)
        except Exception as error:
            lane.fail(error)
        finally:
            lane.fail(None)  # anything unanswered (a bug, or the loop shutting down)
        return lane.replies()

    def _usual(self, instance: Instance, item: SendItem, result: HandlerResult) -> bool:
        """A result the batch commits as it is: no error, no recovery cause, no cancel asked."""
        return instance.cancelling is None and "error" not in result and cause_of_result(item.event, dict(result)) is None

    async def _after_slow(self, instance: Instance, item: SendItem, event_id: str, pending: HandlerResult) -> Reply:
        result = await self._procedures.collect(instance.record, item.event, pending)
        return await self._after_handler(instance, item, event_id, result)

    async def _commit_usual(self, lane: _Lane, usual: list[tuple[int, _Prepared]]) -> None:
        """Commit the usual outcomes in one write; apply each, then reload those another writer
        committed first."""
        if not usual:
            return
        try:
            written = await self._commits.commit_many([prepared.rows() for _, prepared in usual])
        except Exception as error:
            failed = _failed(f"{len(usual)} SOPs", error)
            for index, _ in usual:
                lane.answered(index, failed)
            return
        elsewhere: list[Awaitable[None]] = []
        for (index, prepared), logged in zip(usual, written, strict=True):
            instance = lane.claimed[index][1]
            if logged is not None:
                elsewhere.append(lane.answer(index, self._committed_elsewhere(instance, prepared.entry.event_id, logged)))
                continue
            try:
                lane.answered(index, self._committed(instance, prepared))
            except Exception as error:
                lane.answered(index, _failed(instance.record.sop_id, error))
        await asyncio.gather(*elsewhere)

    def _release(self, instance: Instance) -> None:
        """The lane is done with the SOP: its drain loop takes what queued (or a cancel) meanwhile."""
        instance.busy = False
        if instance.queue or instance.cancelling is not None:
            instance.busy = True
            self._spawn(self._drain(instance))

    def _enqueue(self, instance: Instance, queued: Queued) -> None:
        """Append to the SOP's queue; start its drain loop unless one runs."""
        instance.enqueue(queued)
        if not instance.busy:
            instance.busy = True
            self._spawn(self._drain(instance))

    def cancel(self, instance: Instance, reason: str, notify_parent: bool) -> asyncio.Future[None]:
        """Ask for the SOP's cancel (the first ask wins); the drain loop applies it once no
        handler of the SOP runs (at once when it is idle). The future resolves when committed,
        at once for an SOP that has ended (nothing to cancel)."""
        if instance.cancelling is None and not instance.record.active:
            ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            ended.set_result(None)
            return ended
        if instance.cancelling is None:
            instance.cancelling = (reason, notify_parent, asyncio.get_running_loop().create_future())
            if not instance.busy:  # nothing in flight: the drain loop applies it at once
                instance.busy = True
                self._spawn(self._drain(instance))
        return instance.cancelling[2]

    async def in_queue(self, instance: Instance, run: Callable[[], Awaitable[Reply]]) -> Answer:
        """Run `run` (a coroutine function returning a Reply) on the SOP's drain loop.

        Returns:
            `{"error"}` if it failed, else `{"value"}`: the reply's `value` (None if it has none).
        """
        reply: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._enqueue(instance, Queued(SendItem(instance.record.sop_id, {}), reply, run=run))
        done = await reply
        if "error" in done:
            return {"error": done["error"]}
        return {"value": cast(dict[str, Any], done).get("value")}

    async def _skip_gap_later(self, instance: Instance, sender: str, seq: int) -> None:
        # A lost message must not stall a sender forever: after a while, skip the gap.
        await asyncio.sleep(_GAP_SECONDS)
        skipped = instance.order.skip_gap(sender, seq)
        if skipped:
            logger.warning("sop=<%s>, sender=<%s> | skipping a gap before seq %d", instance.record.sop_id, sender, seq)
        for queued in skipped:
            self._enqueue(instance, queued)

    async def _drain(self, instance: Instance) -> None:
        try:
            while True:
                if instance.cancelling is not None:
                    await self._cancel_now(instance)
                if not instance.queue:
                    break
                queued = instance.dequeue()
                try:
                    reply = await (queued.run() if queued.run is not None else self._process(instance, queued.item))
                except Exception as error:
                    reply = _failed(instance.record.sop_id, error)
                if not queued.reply.done():
                    queued.reply.set_result(reply)
        finally:
            instance.busy = False

    # -- operations run in an SOP's queue -------------------------------------------------

    async def rollback(self, instance: Instance, version: int, reason: str, rollback_id: str | None) -> Reply:
        """Commit a new version equal to `version` (see `SOPHostActor.rollback`); run it with
        `in_queue`. Its `value` is the new version's number."""
        record = instance.record
        event_id = rollback_event_id(record, rollback_id)
        if rollback_id is not None and instance.seen.may_contain(event_id):  # a retried call
            logged = await self._store.logged.remote(record.sop_id, event_id)
            if logged is not None:
                return cast(Reply, {"value": logged.version})
        check_rollback(record, version)
        content = await self._store.version.remote(record.sop_id, version)
        commit = rollback_commit(record, content, version=version, reason=reason, event_id=event_id, now=time.time())
        if (logged := await self._commits.commit(commit.rows(record))) is not None:  # this id, committed before
            done = await self._committed_elsewhere(instance, event_id, logged)
            return done if "error" in done else cast(Reply, {"value": done["version"]})
        instance.seen.add(event_id)
        instance.record = commit.record
        self._shared.committed(commit.record)
        for armed in commit.timers:
            self._timers.arm(armed)
        logger.info("sop=<%s>, version=<%d>, to=<%d> | rolled back", record.sop_id, commit.record.version, version)
        return cast(Reply, {"value": commit.record.version})

    async def set_retention(self, instance: Instance, rule: VersionRetention) -> Reply:
        """Commit the SOP's version retention rule; run it with `in_queue`."""
        record = instance.record
        updated = record.model_copy(update={"version_retention": None if rule.keeps_all else rule.model_dump()})
        if (logged := await self._commits.commit(Commit(record=updated).rows())) is not None:
            return {"error": json.loads(logged).get("error", {})}
        instance.record = updated
        return cast(Reply, {"value": None})

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
            return await self._timed_out(instance, item.event)
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
        return await self._after_handler(instance, item, event_id, result)

    async def _after_handler(self, instance: Instance, item: SendItem, event_id: str, result: HandlerResult) -> Reply:
        """What follows a handler run: a cancel asked meanwhile, a recovery step, a failure,
        or the commit."""
        record = instance.record
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
        return await self._commit_event(instance, self._prepare(instance, item, event_id, result))

    def _prepare(self, instance: Instance, item: SendItem, event_id: str, result: HandlerResult) -> _Prepared:
        """The commit of what a handler did, by the commit rule `advance`."""
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
        return _Prepared(
            item=item, result=result, previous=record, record=new_record, entry=entry,
            timers=() if timer is None else (timer,), outcome=advanced.outcome, failure=advanced.failure, closed=closed,
        )

    async def _commit_event(self, instance: Instance, prepared: _Prepared) -> Reply:
        """Commit what a handler did, or take a recovery step when it was the rejection past
        the limit and a recovery policy answers it."""
        if prepared.failure is not None:
            event_type = prepared.entry.event_type
            recovered = await self._recover(instance, prepared.item.event, event_type, cause_of(prepared.failure))
            if recovered is not None:
                self._count_event(prepared.previous, event_type, Outcome.REJECTED.value, prepared.result)
                return recovered
        if (logged := await self._commits.commit(prepared.rows())) is not None:
            return await self._committed_elsewhere(instance, prepared.entry.event_id, logged)
        return self._committed(instance, prepared)

    def _committed(self, instance: Instance, prepared: _Prepared) -> Reply:
        """Apply a written commit to the instance: count it, arm its timers, remember its reply."""
        record, new_record, entry = prepared.previous, prepared.record, prepared.entry
        instance.seen.add(entry.event_id)
        self._count_event(record, entry.event_type, entry.outcome, prepared.result)
        if prepared.outcome in (Outcome.TRANSITIONED, Outcome.ENDED):
            self._metrics.count(names.TRANSITIONS, (record.name, entry.from_procedure, entry.to_procedure))
        self._count_recovery(prepared.closed)
        instance.record = new_record
        self._shared.committed(new_record)  # a distributed state's pending keys, in the background
        for armed in prepared.timers:
            self._timers.arm(armed)
        instruction = new_record.procedure.get("prompt")
        reply: Reply = receipt_reply(entry, instruction) if prepared.failure is None else {"error": new_record.error or {}}
        instance.remember(entry.event_id, reply)
        if new_record.phase != "running":
            self._end(instance, prepared.failure)
        return reply

    async def _committed_elsewhere(self, instance: Instance, event_id: str, logged: str) -> Reply:
        # Another writer committed this event id first (e.g. a host split from the cluster):
        # the state is not applied twice; continue from what is stored. Or (`{"error": ...}`,
        # a VersionConflict) it committed another event at this version: this one is refused.
        logger.warning("sop=<%s>, event=<%s> | committed elsewhere first; reloading", instance.record.sop_id, event_id)
        await self._reload(instance)
        answer = json.loads(logged)
        if "error" in answer:
            return {"error": answer["error"]}
        return receipt_reply(LogEntry.model_validate(answer))

    async def _reload(self, instance: Instance) -> None:
        """Continue from the SOP's stored record (another writer committed it)."""
        stored = await self._store.load.remote(instance.record.sop_id, 0)
        instance.record = stored.record if stored is not None else instance.record

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

    async def _timed_out(self, instance: Instance, event: dict[str, Any]) -> Reply:
        """A procedure's timeout fired: a recovery cause if the SOP is still in that visit."""
        record = instance.record
        if is_stale_timeout(record, event):
            return {"outcome": Outcome.IGNORED.value, "procedure": record.procedure["name"], "version": record.version}
        cause = timeout_cause(record, event)
        if recovered := await self._recover(instance, event, "ProcedureTimedOut", cause):
            return recovered
        failure = cause.exception()
        return await self._apply(instance, fail_commit(record, event=event, event_type="ProcedureTimedOut", error=failure))

    async def resolve(self, instance: Instance, resolution: Resolution) -> Reply:
        """Apply a person's resolution (see `SOPHostActor.resolve`); run it with `in_queue`.

        Raises:
            InputError: its event does not fit the SOP's procedure (nothing is committed).
        """
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
            prepared = self._prepare(instance, SendItem(record.sop_id, event), event_id_of(event), result)
            reply = await self._commit_event(instance, prepared)
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

    async def _cancel_now(self, instance: Instance) -> None:
        """Apply the pending cancel on the drain loop; if it cannot be committed, its asker gets
        the error (the SOP's queue goes on)."""
        assert instance.cancelling is not None
        if not instance.record.active:  # it ended meanwhile: nothing to cancel
            _settle(instance)
            return
        try:
            await self._apply_cancel(instance, None)
        except Exception as error:
            logger.error("sop=<%s> | cancel failed", instance.record.sop_id, exc_info=error)
            if instance.cancelling is not None:
                done = instance.cancelling[2]
                if not done.done():
                    done.set_exception(as_sopy_error(error))
                instance.cancelling = None

    async def _apply_cancel(self, instance: Instance, discarded: tuple[str, str] | None) -> Reply:
        """Commit the pending cancel (on the drain loop: nothing else commits for this SOP now).

        Args:
            discarded: (event id, event type) of an event whose handler ran meanwhile; its
                result is dropped and logged as `discarded`.
        """
        assert instance.cancelling is not None
        reason, notify_parent, _ = instance.cancelling
        error = SOPCancelled(instance.record.sop_id, reason)
        receipt: Reply | None = None  # the discarded event's, when another writer committed it
        for _ in range(_CANCEL_ATTEMPTS):
            cancelled, entry = instance.cancel_commit(error, notify_parent=notify_parent, discarded=discarded)
            logged = await self._commits.commit(Commit(record=cancelled, entry=entry).rows(instance.record))
            if logged is None:
                break
            # Refused: another writer moved the SOP on (a host cut off from the cluster), maybe
            # with the discarded event itself. Cancel what is stored.
            logger.warning("sop=<%s> | cancel refused by the store; reloading", instance.record.sop_id)
            answer = json.loads(logged)
            if discarded is not None and "error" not in answer:
                receipt = receipt_reply(LogEntry.model_validate(answer))
            await self._reload(instance)
            discarded = None
            if not instance.record.active:  # it ended there: nothing to cancel
                _settle(instance)
                return receipt or {"error": error_to_wire(SOPFailed(instance.record.sop_id, "it ended before the cancel"))}
        else:
            raise StateError(f"sop=<{instance.record.sop_id}> | the cancel was refused: another writer keeps committing it")
        instance.record = cancelled
        if entry is not None:
            instance.seen.add(entry.event_id)
        self._end(instance, error)
        _settle(instance)
        return receipt or {"error": error_to_wire(error)}

    def _end(self, instance: Instance, error: SopyError | None) -> None:
        """The SOP left `running`: fail what is queued, wake `result()` waiters, tell the parent."""
        record = instance.record
        self._metrics.count(names.SOPS_FINISHED, (record.name, record.phase))
        if error is not None:
            failed: Reply = {"error": error_to_wire(error)}
            while instance.queue:
                queued = instance.dequeue()
                if not queued.reply.done():
                    queued.reply.set_result(failed)
        for waiter in instance.waiters:
            if not waiter.done():
                waiter.set_result(None)
        instance.waiters.clear()
        self._spawn(self._parents.notify(record))


def _failed(what: str, error: Exception) -> Reply:
    """The reply to work that raised (an unexpected error is logged with its traceback)."""
    if not isinstance(error, SopyError):
        logger.error("sop=<%s> | event processing failed", what, exc_info=error)
    return {"error": error_to_wire(as_sopy_error(error))}


def _settle(instance: Instance) -> None:
    """The SOP's pending cancel is done: resolve who waits for it, and forget it (an idle
    cancelled SOP may then leave memory)."""
    assert instance.cancelling is not None
    done = instance.cancelling[2]
    if not done.done():
        done.set_result(None)
    instance.cancelling = None
