"""How a host turns the ladder's steps into commits (pure: records in, commits out; no Ray)."""

from __future__ import annotations

from typing import Any

import pytest

from sopy_actors.core.events import event_to_wire
from sopy_actors.errors import AgentError, CircuitOpen, InputError, RecoveryExhausted, SOPFailed, TimedOut
from sopy_actors.recovery import (
    Alternative,
    Backoff,
    Cause,
    Fallback,
    Manual,
    RecoveryPolicy,
    Retry,
    decide,
)
from sopy_actors.recovery.causes import cause_kind, raised_wire
from sopy_actors.runtime.records import SOPRecord
from sopy_actors.runtime.recovering import (
    Resolution,
    cause_of_result,
    history_of,
    is_stale_timeout,
    policy_of,
    resolution_commit,
    step_commit,
    succeeded,
    timeout_timer,
)
from tests.support import recovering as flow

NOW = 1_000.0
EVENT = event_to_wire(flow.Work("tides", id="e1"))
POLICY = RecoveryPolicy(
    rungs=[
        Retry(max_attempts=1, backoff=Backoff(initial=2, jitter=0)),
        Fallback(to=flow.CheapSummary, on="rejection_limit"),
        Fallback(to=flow.BACKUP, on="agent_error"),
        Alternative(approaches_field="approaches", on="handler_raised"),
        Manual(reason="stuck", choices=["retry", "skip", "fallback", "abort"]),
    ]
)


def record(**update: Any) -> SOPRecord:
    base = SOPRecord(
        sop_id="s1", name="Summarise", host="h0", version=4, retries=2,
        procedure={"type": "tests.support.recovering:Summarise", "name": "Summarise", "options": {}, "attrs": {}},
        state={"type": "tests.support.recovering:Job", "data": {"approaches": ["a", "b"], "current_approach": None}},
        recovery=POLICY.model_dump(mode="json"),
    )
    return base.model_copy(update=update)


def take(before: SOPRecord, error: BaseException, kind: Any = None, **extra: Any) -> Any:
    cause = Cause(kind=kind or cause_kind(error), error=raised_wire(error, sop_id="s1", procedure="P", event_type="Work"))
    decision = decide(policy_of(before) or POLICY, cause, history=history_of(before), state=before.state["data"])
    return step_commit(before, event=EVENT, event_type="Work", decision=decision, now=NOW, **extra)


def test_a_retry_logs_the_failed_event_and_arms_a_timer_that_delivers_it_under_a_new_id() -> None:
    commit = take(record(), ConnectionError("down"))
    assert (commit.record.version, commit.record.phase, commit.entry.event_id) == (5, "running", "e1")
    assert commit.entry.outcome == "recovering" and "retry 1 in 2.00 s" in str(commit.entry.prompt)
    (timer,) = commit.timers
    assert (timer.due, timer.event["data"]["id"], timer.event["data"]["payload"]) == (NOW + 2, "e1~retry~1", "tides")
    assert commit.reply["outcome"] == "recovering" and commit.closed == ()
    again = take(commit.record, ConnectionError("down"))  # the retry failed: the next rung, the last closed
    assert again.closed == (("retry", "failed"),)
    assert again.timers[0].event["data"]["id"] == "e1~retry~2"  # ids do not grow with each retry


def test_an_alternative_writes_the_approach_into_the_state_and_delivers_the_event_now() -> None:
    commit = take(record(), ValueError("bad"))
    assert commit.record.state["data"]["current_approach"] == "a"
    assert commit.timers[0].due == NOW


def test_a_fallback_to_a_procedure_moves_the_sop_and_resets_the_rejection_budget() -> None:
    cheap = {"type": "tests.support.recovering:CheapSummary", "name": "CheapSummary", "options": {}, "attrs": {}}
    commit = take(record(), RecoveryExhausted("s1", 3), fallback_procedure=cheap)
    assert (commit.record.procedure["name"], commit.record.retries, commit.record.entered_version) == ("CheapSummary", 0, 5)
    assert [timer.event["data"]["id"] for timer in commit.timers] == ["e1~retry~1"]  # the fallback takes over the event


def test_an_agent_fallback_replaces_the_agent_the_error_names() -> None:
    commit = take(record(), AgentError("model down", agent="summariser-primary"))
    assert commit.record.agent_substitutes == {"summariser-primary": flow.BACKUP.spec.model_dump(mode="json")}
    opened = take(record(), CircuitOpen("agent:summariser-primary", retry_after=3), kind="agent_error")
    assert list(opened.record.agent_substitutes) == ["summariser-primary"]


def test_a_manual_step_parks_the_sop_with_the_failed_event_and_a_person_resolves_it() -> None:
    policy = RecoveryPolicy(rungs=[Manual(reason="stuck", choices=["retry", "skip", "abort"])])
    commit = take(record(recovery=policy.model_dump(mode="json")), ValueError("bad"))
    waiting = commit.record
    assert waiting.phase == "waiting_for_human" and waiting.waiting is not None
    assert (waiting.waiting["reason"], waiting.waiting["event"], waiting.waiting["since"]) == ("stuck", EVENT, NOW)
    assert commit.intervention == {"reason": "stuck", "choices": ["retry", "skip", "abort"], "cause": waiting.waiting["cause"]}
    retried = resolution_commit(waiting, Resolution(action="retry", note="fixed", by="ops"), now=NOW)
    assert (retried.record.phase, retried.record.waiting, retried.closed) == ("running", None, (("manual", "resolved"),))
    assert retried.timers[0].event["data"]["id"] == "e1~retry~1" and retried.timers[0].due == NOW
    assert retried.record.recovery_history[-1]["by"] == "ops"
    aborted = resolution_commit(waiting, Resolution(action="abort", note="no", by="ops"), now=NOW)
    assert aborted.record.phase == "failed" and isinstance(aborted.failure, SOPFailed)
    with pytest.raises(InputError, match="action 'fallback' is not offered"):
        resolution_commit(waiting, Resolution(action="fallback"), now=NOW)
    with pytest.raises(InputError, match="is not waiting for a person"):
        resolution_commit(record(), Resolution(action="skip"), now=NOW)


def test_when_no_rung_is_left_the_sop_fails_with_recovery_exhausted() -> None:
    policy = RecoveryPolicy(rungs=[Retry(max_attempts=1, backoff=Backoff(initial=0, jitter=0))])
    first = take(record(recovery=policy.model_dump(mode="json")), ConnectionError("down"))
    last = take(first.record, ConnectionError("down"))
    assert last.record.phase == "failed" and isinstance(last.failure, RecoveryExhausted)
    assert last.entry.outcome == "failed" and "error" in last.reply
    assert last.closed == (("retry", "failed"), ("none", "gave_up"))


def test_success_closes_a_pending_step() -> None:
    pending = take(record(), ConnectionError("down")).record
    history, closed = succeeded(pending)
    assert closed == (("retry", "succeeded"),) and history[-1]["outcome"] == "succeeded"
    assert succeeded(record()) == ([], ())


def test_causes_come_from_what_the_handler_raised_or_a_childs_failure() -> None:
    raised = {"outcome": "rejected", "raised": raised_wire(TimeoutError("slow"), sop_id="s", procedure="P", event_type="E")}
    cause = cause_of_result(EVENT, raised)
    assert cause is not None and (cause.kind, cause.error_type) == ("timeout", "TimedOut")
    child = {"type": "x:SubSOPFailed", "data": {"id": "c", "payload": {"error": {"type": "SOPFailed", "message": "boom"}}}}
    unhandled = {"outcome": "rejected", "handler": None, "event_type": "SubSOPFailed"}
    assert cause_of_result(child, unhandled) == Cause(kind="sub_sop_failed", error={"type": "SOPFailed", "message": "boom"})
    assert cause_of_result(EVENT, {"outcome": "transitioned", "handler": "on_work", "event_type": "Work"}) is None
    assert cause_kind(TimedOut("x")) == "timeout" and cause_kind(SOPFailed("c", "boom")) == "sub_sop_failed"


def test_a_procedure_timeout_is_a_timer_for_the_visit_it_was_armed_in() -> None:
    assert timeout_timer(record(), now=NOW) is None
    timed = record(procedure={**record().procedure, "options": {"timeout": 30}}, entered_version=4)
    timer = timeout_timer(timed, now=NOW)
    assert timer is not None and timer.due == NOW + 30
    assert not is_stale_timeout(timed, timer.event)
    assert is_stale_timeout(timed.model_copy(update={"entered_version": 5}), timer.event)


def test_resolutions_are_validated_and_name_the_field() -> None:
    with pytest.raises(InputError, match="exactly one of action and event"):
        Resolution()
    with pytest.raises(InputError) as bad:
        Resolution(action="launch")
    assert bad.value.fields == ("action",)
    with pytest.raises(InputError, match="'type' is missing"):
        Resolution(event={"data": {}})
