"""The ladder's decision: which rung for which cause, in which order, until it gives up."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from sopy_actors.core.lifecycle import SubSOPError
from sopy_actors.errors import (
    AgentError,
    HandlerError,
    InputError,
    RecoveryExhausted,
    SOPFailed,
    SopyError,
    TimedOut,
    error_to_wire,
)
from sopy_actors.recovery import (
    Alternative,
    AwaitHuman,
    Backoff,
    Cause,
    CauseKind,
    CircuitOpen,
    Decision,
    Fallback,
    GiveUp,
    Manual,
    RecoveryHistory,
    RecoveryPolicy,
    Retry,
    RetryLater,
    UseAlternative,
    UseFallback,
    decide,
)

NO_JITTER = Backoff(initial=1, multiplier=2, cap=5, jitter=0)
BACKUP = {"name": "writer-backup", "system_prompt": "Write plainly."}  # an AgentSpec as JSON

# Each rung applies to some causes only: the ladder differs per cause.
POLICY = RecoveryPolicy(
    rungs=[
        Retry(max_attempts=2, backoff=NO_JITTER, on=["handler_raised", "agent_error", "timeout"]),
        Fallback(to="writer-backup", agent=BACKUP, on=["agent_error", "sub_sop_failed"]),
        Alternative(approaches_field="approaches", on=["handler_raised", "timeout"]),
        Manual(reason="The writer keeps failing", choices=["retry", "skip", "abort"]),
    ]
)
STATE = {"approaches": ["outline first", "shorter draft"], "current_approach": None, "topic": "tides"}


def handler_raised() -> HandlerError:
    return HandlerError(sop_id="s1", procedure="Drafting", event_type="DraftReady", cause=KeyError("title"))


CAUSES: dict[CauseKind, SopyError] = {
    "handler_raised": handler_raised(),  # not retryable
    "rejection_limit": RecoveryExhausted("s1", 4, "Write a title."),
    "agent_error": AgentError("model overloaded", agent="writer", retryable=True),
    "sub_sop_failed": SubSOPError(child_id="c1", name="Review", error=error_to_wire(SOPFailed("c1", "no reviewer"))).exception(),
    "timeout": TimedOut("no DraftReady within 3600 s"),
}


def connection_trouble(error: SopyError) -> bool:
    """A retry predicate, stored by reference: handler errors caused by a dropped connection."""
    return getattr(error, "cause_type", "") == "ConnectionResetError"


def climb(
    policy: RecoveryPolicy, cause: Cause, *, state: dict[str, Any] | None = None, limit: int = 20
) -> tuple[list[Decision], RecoveryHistory]:
    """Feed the same failure to the ladder until it gives up; every step fails."""
    history = RecoveryHistory()
    decisions: list[Decision] = []
    while len(decisions) < limit:
        decision = decide(policy, cause, history=history, state=state, rng=random.Random(0).random)
        decisions.append(decision)
        history = history.recorded(decision.entry)
        if isinstance(decision.step, GiveUp):
            return decisions, history
    raise AssertionError("the ladder never gave up")


def strategies(decisions: list[Decision]) -> list[str]:
    return [d.entry.strategy for d in decisions]


# --- order per cause ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("handler_raised", ["alternative", "alternative", "manual", "none"]),  # a HandlerError is not retryable
        ("rejection_limit", ["manual", "none"]),
        ("agent_error", ["retry", "retry", "fallback", "manual", "none"]),
        ("sub_sop_failed", ["fallback", "manual", "none"]),
        ("timeout", ["retry", "retry", "alternative", "alternative", "manual", "none"]),
    ],
)
def test_the_ladder_takes_its_rungs_in_order_for_each_cause_then_gives_up(kind: CauseKind, expected: list[str]) -> None:
    decisions, history = climb(POLICY, Cause.of(kind, CAUSES[kind]), state=STATE)
    assert strategies(decisions) == expected
    assert [entry.outcome for entry in history.entries] == ["failed"] * (len(expected) - 1) + ["gave_up"]
    assert [entry.attempt for entry in history.entries][-1] == 0 and history.entries[-1].rung is None


def test_each_step_says_what_to_do_and_the_entry_records_rung_attempt_and_cause() -> None:
    cause = Cause.of("timeout", CAUSES["timeout"])
    decisions, _ = climb(POLICY, cause, state=STATE)
    assert [d.step for d in decisions[:-1]] == [
        RetryLater(delay=1, attempt=1),
        RetryLater(delay=2, attempt=2),
        UseAlternative(approaches_field="approaches", index=0, approach="outline first"),
        UseAlternative(approaches_field="approaches", index=1, approach="shorter draft"),
        AwaitHuman(reason="The writer keeps failing", choices=("retry", "skip", "abort")),
    ]
    assert [(d.entry.rung, d.entry.attempt) for d in decisions] == [(0, 1), (0, 2), (2, 1), (2, 2), (3, 1), (None, 0)]
    assert all(d.entry.cause == cause for d in decisions)
    assert decisions[-1].step == GiveUp(
        reason="no recovery left for timeout (TimedOut: no DraftReady within 3600 s): rungs[0] Retry: 2 of 2 "
        "attempts used; rungs[2] Alternative: 2 of 2 approaches in 'approaches' tried; rungs[3] Manual: 1 of 1 "
        "attempts used"
    )


def test_a_fallback_step_names_its_target_kind() -> None:
    decision = decide(POLICY, Cause.of("sub_sop_failed", CAUSES["sub_sop_failed"]))
    assert decision.step == UseFallback(to="writer-backup", target="agent", agent=BACKUP)


def test_retries_wait_the_backoff_schedule_with_jitter_from_the_injected_source() -> None:
    policy = RecoveryPolicy(rungs=[Retry(max_attempts=5, backoff=Backoff(initial=1, multiplier=2, cap=10, jitter=0.5))])
    cause = Cause.of("agent_error", CAUSES["agent_error"])

    def delays(seed: int) -> list[float]:
        rng, history, found = random.Random(seed), RecoveryHistory(), []
        for _ in range(5):
            decision = decide(policy, cause, history=history, rng=rng.random)
            assert isinstance(decision.step, RetryLater)
            found.append(decision.step.delay)
            history = history.recorded(decision.entry)
        return found

    assert delays(3) == delays(3)  # deterministic for a given source
    for delay, base in zip(delays(3), [1, 2, 4, 8, 10], strict=True):
        assert base * 0.5 <= delay <= base


def test_the_ladder_gives_up_at_once_when_no_rung_applies() -> None:
    policy = RecoveryPolicy(rungs=[Retry(on="timeout")])
    decision = decide(policy, Cause.of("handler_raised", CAUSES["handler_raised"]))
    assert decision.step == GiveUp(
        reason="no rung of the recovery policy applies to handler_raised (HandlerError: sop=<s1>, procedure=<Drafting>, "
        "event=<DraftReady> | handler raised KeyError: 'title')"
    )
    assert decision.entry.outcome == "gave_up" and decision.entry.strategy == "none"


def test_a_non_retryable_error_passes_retry_by_and_the_reason_says_so() -> None:
    policy = RecoveryPolicy(rungs=[Retry()])
    decision = decide(policy, Cause.of("agent_error", AgentError("bad request", agent="writer")))
    assert isinstance(decision.step, GiveUp)
    assert decision.step.reason.endswith("rungs[0] Retry: AgentError is not retryable")


def test_a_retry_predicate_given_by_reference_decides_what_is_retried() -> None:
    policy = RecoveryPolicy(rungs=[Retry(retry_on=connection_trouble, backoff=NO_JITTER), Manual(reason="stuck")])
    assert policy.rungs[0].retry_on == "tests.unit.recovery.test_ladder:connection_trouble"  # type: ignore[union-attr]
    dropped = HandlerError(sop_id="s", procedure="P", event_type="E", cause=ConnectionResetError("peer"))
    assert isinstance(decide(policy, Cause.of("handler_raised", dropped)).step, RetryLater)
    assert isinstance(decide(policy, Cause.of("handler_raised", handler_raised())).step, AwaitHuman)
    # The loader is a parameter: an engine may resolve predicates its own way.
    loaded: list[str] = []

    def resolve(reference: str) -> Any:
        loaded.append(reference)
        return lambda error: True

    assert isinstance(decide(policy, Cause.of("handler_raised", handler_raised()), resolve=resolve).step, RetryLater)
    assert loaded == ["tests.unit.recovery.test_ladder:connection_trouble"]


def test_an_unloadable_predicate_is_an_input_error() -> None:
    policy = RecoveryPolicy(rungs=[Retry(retry_on="no_such_module_here:check")])
    with pytest.raises(InputError, match="no_such_module_here"):
        decide(policy, Cause.of("timeout", CAUSES["timeout"]))


def test_an_alternative_without_its_state_list_is_passed_by() -> None:
    policy = RecoveryPolicy(rungs=[Alternative(approaches_field="approaches"), Manual(reason="stuck")])
    cause = Cause.of("timeout", CAUSES["timeout"])
    assert isinstance(decide(policy, cause, state={"approaches": "not a list"}).step, AwaitHuman)
    decisions, _ = climb(policy, cause)
    give_up = decisions[-1].step
    assert isinstance(give_up, GiveUp)
    assert give_up.reason.endswith(
        "rungs[0] Alternative: the state has no list field 'approaches'; rungs[1] Manual: 1 of 1 attempts used"
    )


# --- circuit breakers ------------------------------------------------------------------------


def test_an_open_circuit_skips_the_retry_to_the_fallback_at_once() -> None:
    cause = Cause.of("agent_error", CircuitOpen("writer", retry_after=20))
    assert CircuitOpen("writer", retry_after=20).retryable
    decisions, _ = climb(POLICY, cause)
    assert strategies(decisions) == ["fallback", "retry", "retry", "manual", "none"]
    # Once the fallback is spent, the retries wait at least until the breaker lets a probe through.
    assert [d.step.delay for d in decisions[1:3]] == [20, 20]  # type: ignore[union-attr]


def test_an_open_circuit_without_a_fallback_waits_instead_of_paging_a_person() -> None:
    policy = RecoveryPolicy(rungs=[Retry(max_attempts=1, backoff=NO_JITTER), Manual(reason="stuck")])
    short = decide(policy, Cause.of("agent_error", CircuitOpen("writer", retry_after=0.25)))
    assert short.step == RetryLater(delay=1, attempt=1)  # the backoff is longer than the cool-down left
    decisions, _ = climb(policy, Cause.of("agent_error", CircuitOpen("writer", retry_after=30)))
    assert strategies(decisions) == ["retry", "manual", "none"]
    assert decisions[0].step == RetryLater(delay=30, attempt=1)


# --- history -----------------------------------------------------------------------------------


def test_success_ends_the_incident_and_the_budgets_start_again() -> None:
    cause = Cause.of("agent_error", CAUSES["agent_error"])
    history = RecoveryHistory()
    for _ in range(2):
        history = history.recorded(decide(POLICY, cause, history=history).entry)
    assert decide(POLICY, cause, history=history).entry.strategy == "fallback"
    history = history.succeeded()
    assert [e.outcome for e in history.entries] == ["failed", "succeeded"]
    assert history.incident() == () and history.attempts() == {}
    assert decide(POLICY, cause, history=history).step == RetryLater(delay=1, attempt=1)
    assert history.succeeded() == history  # nothing pending: nothing changes


def test_a_person_resolving_the_manual_step_is_kept_for_audit_and_starts_a_new_incident() -> None:
    cause = Cause.of("rejection_limit", CAUSES["rejection_limit"])
    decision = decide(POLICY, cause)
    assert isinstance(decision.step, AwaitHuman)
    history = RecoveryHistory().recorded(decision.entry).resolved(note="rewrote the prompt", by="ada")
    (entry,) = history.entries
    assert (entry.strategy, entry.outcome, entry.note, entry.by) == ("manual", "resolved", "rewrote the prompt", "ada")
    assert isinstance(decide(POLICY, cause, history=history).step, AwaitHuman)


def test_resolving_when_nothing_waits_for_a_person_is_an_input_error() -> None:
    retry = decide(POLICY, Cause.of("timeout", CAUSES["timeout"])).entry
    for history in (RecoveryHistory(), RecoveryHistory().recorded(retry)):
        with pytest.raises(InputError, match="nothing waits for a person"):
            history.resolved(note="ok", by="ada")


def test_decisions_and_histories_are_json_data() -> None:
    decisions, history = climb(POLICY, Cause.of("timeout", CAUSES["timeout"]), state=STATE)
    for decision in decisions:
        assert Decision.model_validate(json.loads(json.dumps(decision.model_dump(mode="json")))) == decision
    assert RecoveryHistory.model_validate_json(history.model_dump_json()) == history


def test_a_cause_carries_the_error_in_the_wire_format_and_rebuilds_it() -> None:
    cause = Cause.of("sub_sop_failed", CAUSES["sub_sop_failed"])
    assert cause.error_type == "SOPFailed"
    rebuilt = cause.exception()
    assert type(rebuilt) is SOPFailed and rebuilt.reason == "no reviewer"
    with pytest.raises(InputError) as error:
        Cause(kind="meteor", error={"message": "x"})
    assert error.value.fields == ("kind", "error")
