"""The spec's MultiLevelRecovery, as written, in process; and the declared policy of the same ladder."""

from __future__ import annotations

from sopy_actors import SOP
from sopy_actors.core.codec import decode_procedure, encode_procedure
from sopy_actors.errors import AgentError
from sopy_actors.recovery import (
    Alternative,
    Cause,
    Fallback,
    Manual,
    RecoveryHistory,
    RecoveryPolicy,
    Retry,
    decide,
)
from sopy_actors.testing import LocalSOP
from tests.unit.recovery import spec_recovery as spec


def failed(retryable: bool = True) -> spec.OperationFailed:
    return spec.OperationFailed(spec.Failure(message="the summariser timed out", retryable=retryable))


def action(before: spec.RecoveryState, after: spec.RecoveryState) -> str:
    """Which strategy acted, read from what it changed in the state (the spec keeps no log)."""
    if after.retry_count > before.retry_count:
        return "retry"
    if after.using_fallback and not before.using_fallback:
        return "fallback"
    if after.current_approach != before.current_approach:
        return f"alternative:{after.current_approach}"
    if after.requires_manual_intervention and not before.requires_manual_intervention:
        return "manual"
    return "none"


def run_failures(run: LocalSOP[spec.RecoveryState], count: int) -> list[str]:
    actions = []
    for _ in range(count):
        before = run.state
        transition = run.send(failed())
        assert transition.outcome == "transitioned" and run.procedure_name == "ContinueOperation"
        actions.append(action(before, run.state))
    return actions


def test_the_spec_ladder_escalates_retry_fallback_alternatives_then_a_person() -> None:
    run = LocalSOP(spec.recovery_sop("cached summary", "extractive summary"))
    assert run.procedure_name == "MultiLevelRecovery"
    assert run_failures(run, 7) == [
        "retry", "retry", "retry",  # _quick_retry: retryable and retry_count < 3
        "fallback",  # _fallback_method
        "alternative:cached summary", "alternative:extractive summary",  # _alternative_approach, in order
        "manual",  # _manual_intervention
    ]
    state = run.state
    assert state.retry_count == 3 and not state.has_fallback_available and state.alternative_approaches == []
    assert state.requires_manual_intervention
    assert run.retries == 0  # every failure was recovered from: nothing was rejected


def test_a_failure_that_is_not_retryable_goes_straight_to_the_fallback() -> None:
    run = LocalSOP(spec.recovery_sop())
    run.send(failed(retryable=False))
    assert run.state.retry_count == 0 and run.state.using_fallback


def test_without_fallback_or_alternatives_the_spec_ladder_asks_a_person_after_the_retries() -> None:
    run = LocalSOP(spec.recovery_sop(has_fallback=False))
    assert run_failures(run, 4) == ["retry", "retry", "retry", "manual"]


def test_the_operation_succeeding_after_recovery_ends_the_sop() -> None:
    run = LocalSOP(spec.recovery_sop())
    run.send(failed())
    assert run.send(spec.OperationSucceeded("summary written")).outcome == "ended"
    assert run.result().retry_count == 1 and run.last_prompt == "done: summary written"


def test_when_every_strategy_has_been_tried_the_spec_rejects_with_its_recovery_prompt() -> None:
    exhausted = spec.MultiLevelRecovery()
    exhausted.current_strategy = len(exhausted.recovery_strategies)
    run = LocalSOP(SOP(state=spec.RecoveryState(), init_proc=exhausted))
    transition = run.send(failed())
    assert transition.outcome == "rejected" and run.procedure_name == "MultiLevelRecovery"
    assert transition.prompt == "All recovery strategies failed. Manual intervention required."


def test_the_spec_procedure_checkpoints_with_its_strategies_by_name() -> None:
    procedure = decode_procedure(encode_procedure(spec.MultiLevelRecovery()))
    assert [strategy.__name__ for strategy in procedure.recovery_strategies] == [
        "_quick_retry", "_fallback_method", "_alternative_approach", "_manual_intervention",
    ]
    assert all(strategy.__self__ is procedure for strategy in procedure.recovery_strategies)
    assert procedure.current_strategy == 0


def test_the_declared_policy_takes_the_same_rungs_as_the_spec_procedure() -> None:
    policy = RecoveryPolicy(
        rungs=[
            Retry(max_attempts=3),
            Fallback(to=spec.ContinueOperation),
            Alternative(approaches_field="alternative_approaches"),
            Manual(reason="All recovery strategies failed. Manual intervention required."),
        ]
    )
    state = spec.RecoveryState(alternative_approaches=["cached summary", "extractive summary"])
    cause = Cause.of("agent_error", AgentError("the summariser timed out", agent="summariser", retryable=True))
    history, taken = RecoveryHistory(), []
    for _ in range(7):
        decision = decide(policy, cause, history=history, state=state.model_dump(mode="json"), rng=lambda: 0.0)
        taken.append(decision.entry.strategy)
        history = history.recorded(decision.entry)
    run = LocalSOP(spec.recovery_sop("cached summary", "extractive summary"))
    assert taken == [a.partition(":")[0] for a in run_failures(run, 7)]
    assert decide(policy, cause, history=history, state=state.model_dump(mode="json")).step.kind == "give_up"
