"""An SOP host applying a recovery policy: a failed event's cause, the ladder's step as a commit,
a procedure's timeout, and a person's resolution.

Pure functions over the JSON records (no Ray, no awaiting); `event_path.py` calls them on an SOP's
drain loop and does the I/O (building a fallback procedure, committing, arming timers,
counting `sopy_recovery_steps_total`). A step's commit is one atomic write: the new checkpoint
(history entry appended), the failed event's log entry (outcome `recovering`, so a redelivery
of that event is answered from the log) and the timer that delivers it again, so a retry
pending across a crash fires once.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sopy_actors.core.events import event_to_wire, input_error
from sopy_actors.core.lifecycle import HumanIntervention, HumanInterventionRequested, ProcedureTimedOut, ProcedureTimeout
from sopy_actors.core.transition import Outcome
from sopy_actors.errors import InputError, RecoveryExhausted, SOPFailed, SopyError, TimedOut, error_to_wire
from sopy_actors.recovery.causes import cause_of_wire
from sopy_actors.recovery.ladder import (
    AwaitHuman,
    Cause,
    Decision,
    GiveUp,
    RecoveryHistory,
    RetryLater,
    UseAlternative,
    UseFallback,
)
from sopy_actors.recovery.policy import Fallback, RecoveryPolicy
from sopy_actors.runtime.records import LogEntry, SOPRecord, Timer

__all__ = [
    "ACTIONS",
    "RecoveryCommit",
    "Resolution",
    "cause_of_result",
    "closed_entries",
    "fail_commit",
    "fallback_reference",
    "history_of",
    "intervention_event",
    "is_stale_timeout",
    "is_timeout_event",
    "policy_of",
    "resolution_commit",
    "resolved_history",
    "step_commit",
    "succeeded",
    "timeout_cause",
    "timeout_timer",
]

ACTIONS = ("retry", "skip", "fallback", "abort")
"""What a person may answer a waiting SOP with (besides an event), when the `Manual` rung offers it."""

_TIMED_OUT = "sopy_actors.core.lifecycle:ProcedureTimedOut"


class Resolution(BaseModel):
    """A person's answer to an SOP waiting for them (`handle.resolve`).

    Attributes:
        action: retry, skip, fallback or abort; None when `event` answers instead.
        event: an event in wire form (`{"type": "module:Class", "data": {...}}`) to deliver in
            place of the failed one; it must be one the current procedure handles.
        note: why (kept in the SOP's history).
        by: who (kept in the SOP's history).

    Raises:
        InputError: neither or both of action and event, or a malformed field; names the field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["retry", "skip", "fallback", "abort"] | None = None
    event: dict[str, Any] | None = None
    note: str | None = Field(default=None, max_length=10_000)
    by: str | None = Field(default=None, max_length=200)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise input_error("resolution", error) from None
        if (self.action is None) == (self.event is None):
            raise InputError("a resolution needs exactly one of action and event", fields=("action", "event"))
        if self.event is not None and not isinstance(self.event.get("type"), str):
            raise InputError(
                "the event must be {\"type\": \"module:Class\", \"data\": {...}}: 'type' is missing", fields=("event.type",)
            )


@dataclass(frozen=True)
class RecoveryCommit:
    """What a recovery step (or a resolution) commits, and what the host does after.

    Attributes:
        record: the new checkpoint.
        entry: the log entry (of the failed event, or of the resolution).
        timers: timers to write with the commit and arm after it.
        reply: the answer to the sender of the failed event.
        closed: (strategy, outcome) of the history entries this commit ended, for the metric.
        failure: set when the SOP fails with this commit.
        intervention: set when the SOP starts waiting for a person.
    """

    record: SOPRecord
    entry: LogEntry
    timers: tuple[Timer, ...] = ()
    reply: dict[str, Any] = field(default_factory=dict)
    closed: tuple[tuple[str, str], ...] = ()
    failure: SopyError | None = None
    intervention: dict[str, Any] | None = None


def policy_of(record: SOPRecord, class_policy: dict[str, Any] | None = None) -> RecoveryPolicy | None:
    """The policy for the current procedure: its class's `sop_recovery` (`class_policy`, JSON;
    the host asks a procedure actor for it on a failure only), else the SOP's `recovery=`."""
    data = class_policy if class_policy is not None else record.recovery
    return None if data is None else _parse_policy(json.dumps(data, sort_keys=True))


@functools.lru_cache(maxsize=256)
def _parse_policy(text: str) -> RecoveryPolicy:
    return RecoveryPolicy.model_validate_json(text)


def history_of(record: SOPRecord) -> RecoveryHistory:
    """The SOP's recovery history."""
    return RecoveryHistory.model_validate({"entries": record.recovery_history})


def cause_of_result(event: dict[str, Any], result: dict[str, Any]) -> Cause | None:
    """The recovery cause of a handler run, or None when it did not fail.

    A handler that raised (rejected or failed with the exception), a failed run (a timeout, a
    procedure actor lost), or a child's `SubSOPFailed` that no handler took.
    """
    if "raised" in result:
        return cause_of_wire(result["raised"])
    if "error" in result:
        return cause_of_wire(result["error"])
    if result.get("event_type") == "SubSOPFailed" and result.get("outcome") == "rejected" and result.get("handler") is None:
        error = ((event.get("data") or {}).get("payload") or {}).get("error")
        if isinstance(error, dict):
            return Cause(kind="sub_sop_failed", error=error)
    return None


def timeout_cause(record: SOPRecord, event: dict[str, Any]) -> Cause:
    """The timeout cause of a `ProcedureTimedOut` event (of the visit the SOP is still in)."""
    payload = (event.get("data") or {}).get("payload") or {}
    timeout = ProcedureTimeout.model_validate(payload)
    error = TimedOut(
        f"sop=<{record.sop_id}>, procedure=<{timeout.procedure}> | still in the procedure after its "
        f"timeout of {timeout.timeout:g} s"
    )
    return Cause(kind="timeout", error=error_to_wire(error))


def is_timeout_event(event: dict[str, Any]) -> bool:
    """Whether `event` is a procedure's timeout (sent by the SOP's own timer)."""
    return event.get("type") == _TIMED_OUT


def is_stale_timeout(record: SOPRecord, event: dict[str, Any]) -> bool:
    """Whether a timeout event belongs to a procedure visit the SOP has left."""
    payload = (event.get("data") or {}).get("payload") or {}
    return record.phase != "running" or payload.get("entered_version") != record.entered_version


def timeout_timer(record: SOPRecord, *, now: float) -> Timer | None:
    """The timer of the current procedure's `timeout`, when it has one (armed on entering it)."""
    seconds = (record.procedure.get("options") or {}).get("timeout")
    if seconds is None or record.phase != "running":
        return None
    event = ProcedureTimedOut(
        id=f"{record.sop_id}~timeout~{record.entered_version}",
        payload=ProcedureTimeout(procedure=record.procedure["name"], entered_version=record.entered_version, timeout=seconds),
    )
    wire = event_to_wire(event)
    return Timer(timer_id=wire["data"]["id"], sop_id=record.sop_id, host=record.host, due=now + float(seconds), event=wire)


def succeeded(record: SOPRecord) -> tuple[list[dict[str, Any]], tuple[tuple[str, str], ...]]:
    """The history after an event that worked, and the entries it closed (a pending step succeeded)."""
    entries = record.recovery_history
    if not entries or entries[-1].get("outcome") != "pending":
        return entries, ()
    history = history_of(record).succeeded()
    return _dump(history), closed_entries(history_of(record), history)


def closed_entries(before: RecoveryHistory, after: RecoveryHistory) -> tuple[tuple[str, str], ...]:
    """(strategy, outcome) of the entries that `after` ended: pending before (or new), final now."""
    closed = []
    for index, entry in enumerate(after.entries):
        earlier = before.entries[index] if index < len(before.entries) else None
        if entry.outcome != "pending" and (earlier is None or earlier.outcome == "pending"):
            closed.append((entry.strategy, entry.outcome))
    return tuple(closed)


def step_commit(
    record: SOPRecord,
    *,
    event: dict[str, Any] | None,
    event_type: str,
    decision: Decision,
    fallback_procedure: dict[str, Any] | None = None,
    now: float | None = None,
) -> RecoveryCommit:
    """The commit that takes the ladder's step for a failed event.

    The failed event's own effects are dropped (the SOP continues from the record before it);
    a rejection-limit cause starts a fresh rejection budget. A retry delivers the event again
    after its backoff; a fallback (procedure or agent) and an alternative deliver it again at
    once, to the fallback or with the new approach.

    Args:
        record: the SOP's record before the failed event.
        event: the failed event (wire form): delivered again by a retry, an alternative or a
            person's "retry"; None when nothing is to be delivered again.
        event_type: its class name, for the log.
        decision: the ladder's decision.
        fallback_procedure: the fallback procedure, encoded, for a `UseFallback` to a procedure.
        now: the time (default: now).
    """
    now = time.time() if now is None else now
    before = history_of(record)
    history = before.recorded(decision.entry)
    step, cause = decision.step, decision.entry.cause
    version = record.version + 1
    update: dict[str, Any] = {"version": version, "recovery_history": _dump(history)}
    if cause.kind == "rejection_limit":
        update["retries"] = 0
    timers: list[Timer] = []
    failure: SopyError | None = None
    intervention: dict[str, Any] | None = None
    if isinstance(step, RetryLater):
        what = f"retry {step.attempt} in {step.delay:.2f} s"
        if event is not None:
            timers.append(_redelivery(record, event, len(history.entries), due=now + step.delay))
    elif isinstance(step, UseFallback) and step.target == "procedure":
        assert fallback_procedure is not None, "the host builds the fallback procedure first"
        what = f"fall back to {fallback_procedure['name']}"
        update.update(procedure=fallback_procedure, entered_version=version)
        if event is not None:  # the fallback takes over the work that failed
            timers.append(_redelivery(record, event, len(history.entries), due=now))
    elif isinstance(step, UseFallback):
        assert step.agent is not None, "a Fallback to an agent carries its spec"
        failed = _failed_agent(cause)
        what = f"send {'the work of ' + failed if failed != '*' else 'the work'} to agent {step.to}"
        update["agent_substitutes"] = {**record.agent_substitutes, failed: step.agent}
        if event is not None:
            timers.append(_redelivery(record, event, len(history.entries), due=now))
    elif isinstance(step, UseAlternative):
        what = f"switch to approach {step.index + 1}: {step.approach!r}"
        state = record.state
        update["state"] = {**state, "data": {**state["data"], step.current_field: step.approach}}
        if event is not None:
            timers.append(_redelivery(record, event, len(history.entries), due=now))
    elif isinstance(step, AwaitHuman):
        what = f"wait for a person: {step.reason} (choices: {', '.join(step.choices)})"
        intervention = {"reason": step.reason, "choices": list(step.choices), "cause": cause.model_dump(mode="json")}
        update.update(phase="waiting_for_human", waiting={**intervention, "event": event, "since": now})
    else:
        assert isinstance(step, GiveUp)
        what = f"give up: {step.reason}"
        failure = RecoveryExhausted(record.sop_id, len(history.incident()), step.reason)
        update.update(phase="failed", error=error_to_wire(failure))
    after = record.model_copy(update=update)
    if isinstance(step, UseFallback) and (timer := timeout_timer(after, now=now)) is not None:
        timers.append(timer)
    prompt = f"Recovery ({cause.kind}, {cause.error_type}: {cause.error.get('message', '')}): {what}"
    outcome = Outcome.FAILED if failure is not None else Outcome.RECOVERING
    entry = _entry(record, after, event, event_type, outcome, prompt)
    reply: dict[str, Any] = (
        {"error": error_to_wire(failure)}
        if failure is not None
        else {"outcome": outcome.value, "procedure": after.procedure["name"], "version": version, "prompt": prompt}
    )
    return RecoveryCommit(
        after, entry, tuple(timers), reply, closed_entries(before, history), failure, intervention
    )


def fail_commit(record: SOPRecord, *, event: dict[str, Any], event_type: str, error: SopyError) -> RecoveryCommit:
    """The commit that fails the SOP with `error` (a procedure's timeout with no policy)."""
    after = record.model_copy(update={"version": record.version + 1, "phase": "failed", "error": error_to_wire(error)})
    entry = _entry(record, after, event, event_type, Outcome.FAILED, str(error))
    return RecoveryCommit(after, entry, reply={"error": error_to_wire(error)}, failure=error)


def resolution_commit(
    record: SOPRecord,
    resolution: Resolution,
    *,
    fallback_procedure: dict[str, Any] | None = None,
    now: float | None = None,
) -> RecoveryCommit:
    """The commit of a person's action (retry, skip, fallback, abort) on a waiting SOP.

    Raises:
        InputError: the SOP is not waiting for a person, or the action is not one it offers.
    """
    waiting = _waiting(record)
    action = resolution.action
    if action is None or action not in waiting["choices"]:
        raise InputError(
            f"sop=<{record.sop_id}> | action {action!r} is not offered: this SOP offers "
            f"{', '.join(waiting['choices'])}, or an event (JSON) that its procedure handles",
            fields=("action",),
        )
    now = time.time() if now is None else now
    before = history_of(record)
    history = before.resolved(note=resolution.note, by=resolution.by)
    version = record.version + 1
    update: dict[str, Any] = {"version": version, "recovery_history": _dump(history), "phase": "running", "waiting": None}
    timers: list[Timer] = []
    failure: SopyError | None = None
    event = waiting.get("event")
    if action in ("retry", "fallback") and event is not None:  # delivered again (to the fallback)
        timers.append(_redelivery(record, event, len(history.entries), due=now))
    if action == "fallback":
        if fallback_procedure is None:
            raise InputError(f"sop=<{record.sop_id}> | no Fallback to a procedure in its recovery policy", fields=("action",))
        update.update(procedure=fallback_procedure, entered_version=version)
    elif action == "abort":
        failure = SOPFailed(record.sop_id, f"aborted by {resolution.by or 'a person'}: {resolution.note or 'no note'}")
        update.update(phase="failed", error=error_to_wire(failure))
    after = record.model_copy(update=update)
    if (timer := timeout_timer(after, now=now)) is not None and action in ("retry", "skip", "fallback"):
        timers.append(timer.model_copy(update={"timer_id": f"{timer.timer_id}~{version}"}))
    prompt = f"Resolved by {resolution.by or 'a person'}: {action}" + (f" ({resolution.note})" if resolution.note else "")
    resolve_event = {"type": "Resolution", "data": {"id": f"{record.sop_id}~resolution~{version}"}}
    entry = _entry(record, after, resolve_event, "Resolution", Outcome.RECOVERING, prompt)
    return RecoveryCommit(
        after, entry, tuple(timers), {"value": None}, closed_entries(before, history), failure
    )


def fallback_reference(policy: RecoveryPolicy | None) -> str | None:
    """The procedure of the policy's first `Fallback` to a procedure (for a person's "fallback")."""
    rungs = () if policy is None else policy.rungs
    return next((rung.to for rung in rungs if isinstance(rung, Fallback) and rung.target == "procedure"), None)


def resolved_history(record: SOPRecord, resolution: Resolution) -> tuple[list[dict[str, Any]], tuple[tuple[str, str], ...]]:
    """The history once a person answered with an event, and the entries that closed."""
    _waiting(record)
    before = history_of(record)
    after = before.resolved(note=resolution.note, by=resolution.by)
    return _dump(after), closed_entries(before, after)


def intervention_event(record: SOPRecord, intervention: dict[str, Any]) -> dict[str, Any]:
    """The `HumanInterventionRequested` event (wire form) a waiting SOP's parent is sent."""
    detail = HumanIntervention(sop_id=record.sop_id, name=record.name, procedure=record.procedure["name"], **intervention)
    event = HumanInterventionRequested(id=f"{record.sop_id}~intervention~{record.version}", payload=detail)
    return event_to_wire(event)


def _waiting(record: SOPRecord) -> dict[str, Any]:
    if record.phase != "waiting_for_human" or record.waiting is None:
        raise InputError(
            f"sop=<{record.sop_id}> | is not waiting for a person (phase {record.phase}); nothing to resolve",
            fields=("sop_id",),
        )
    return record.waiting


def _failed_agent(cause: Cause) -> str:
    """The agent a cause names (an AgentError's agent, an open agent circuit), else "*" (all)."""
    attributes = cause.error.get("attributes") or {}
    agent = attributes.get("agent")
    if isinstance(agent, str) and agent:
        return agent
    target = attributes.get("target")
    if isinstance(target, str) and target.startswith("agent:"):
        return target.removeprefix("agent:")
    return "*"


def _redelivery(record: SOPRecord, event: dict[str, Any], serial: int, *, due: float) -> Timer:
    """A timer that delivers `event` again under a new id (the failed one is logged as recovering)."""
    base = str(event["data"]["id"]).split("~retry~")[0]
    event_id = f"{base}~retry~{serial}"
    again = {**event, "data": {**event["data"], "id": event_id}}
    return Timer(timer_id=f"{record.sop_id}~{event_id}", sop_id=record.sop_id, host=record.host, due=due, event=again)


def _entry(
    record: SOPRecord, after: SOPRecord, event: dict[str, Any] | None, event_type: str, outcome: Outcome, prompt: str
) -> LogEntry:
    data = (event or {}).get("data") or {}
    event_id = data.get("id") or f"{record.sop_id}~recovery~{after.version}"
    return LogEntry(
        sop_id=record.sop_id,
        version=after.version,
        event_id=str(event_id),
        event_type=event_type,
        sender=data.get("sender"),
        outcome=outcome.value,
        from_procedure=record.procedure["name"],
        to_procedure=after.procedure["name"],
        prompt=prompt,
    )


def _dump(history: RecoveryHistory) -> list[dict[str, Any]]:
    return [entry.model_dump(mode="json") for entry in history.entries]

