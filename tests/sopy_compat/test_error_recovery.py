"""SOPy tutorial 6: recovery texts, recovery patterns and the SOP-level error handler, on both engines."""

from __future__ import annotations

from typing import Any

import pytest

from sopy_actors.sopy import SOP, End, Prompt
from sopy_actors.sopy.core.event import EventBus
from sopy_actors.sopy.core.sop import SOPRetryExceptionHook, SOPViolation
from tests.sopy_compat import error_recovery as e


def _rejections(sop: SOP[Any], *events: Any) -> list[str]:
    prompts = []
    for event in events:
        try:
            sop(event)
        except SOPRetryExceptionHook as hook:
            prompts.append(str(hook))
    return prompts


def test_status_codes_give_their_recovery_texts_and_success_moves_on(engine: str) -> None:
    sop = SOP(e.RecoveryState(), e.CallAPI(), retry_limits=5)
    with sop:
        assert _rejections(
            sop,
            e.APIResponse(e.Response(status_code=429)),
            e.APIResponse(e.Response(status_code=503)),
            e.APIResponse(e.Response(status_code=404, error_message="no such user")),
            e.APIResponse(e.Response(data={"user": "ada"})),
        ) == [
            "API rate limit exceeded. Please wait and try again.",
            "Server error (503). Please retry the request.",
            "Request error: no such user. Please check the request and try again.",
        ]
        assert isinstance(sop.current_proc, e.ValidateData) and sop.state.api_data == {"user": "ada"}
        sop(e.DataReceived([{"id": 1}]))


def test_assertion_messages_become_recovery_prompts_in_sopys_wrapping(engine: str) -> None:
    sop = SOP(e.RecoveryState(), e.ValidateData(), retry_limits=5)
    with sop:
        prompts = _rejections(sop, e.DataReceived(None), e.DataReceived([]), e.DataReceived([{"name": "x"}]))
        sop(e.DataReceived([{"id": 7}]))
        assert sop.state.validated_data == [{"id": 7}]
    assert prompts == [
        "An error occurred while handling event DataReceived(sender=None, target=None, payload=None): "
        "No data received. Please ensure data source is available.. Please try again.",
        "An error occurred while handling event DataReceived(sender=None, target=None, payload=[]): "
        "Empty data set received. Please provide valid data.. Please try again.",
        "An error occurred while handling event DataReceived(sender=None, target=None, payload=[{'name': 'x'}]): "
        "Data items missing required 'id' field. Please check data format.. Please try again.",
    ]


def test_retry_with_backoff_counts_attempts_on_the_procedure(engine: str) -> None:
    sop = SOP(e.RecoveryState(), e.RetryProcedure(), retry_limits=5)
    with sop:
        assert _rejections(sop, *(e.OperationFailed("x") for _ in range(3))) == [
            "Operation failed (attempt 1/3). Waiting 1 seconds before retry.",
            "Operation failed (attempt 2/3). Waiting 2 seconds before retry.",
            "Maximum retry attempts exceeded. Operation failed permanently.",
        ]
        sop(e.OperationSucceeded("at last"))


def test_a_fallback_is_tried_once_then_manual_intervention_is_asked_for(engine: str) -> None:
    sop = SOP(e.RecoveryState(), e.FallbackProcedure())
    with pytest.raises(SOPViolation, match="current procedure is FallbackProcedure"), sop:
        sop(e.PrimaryMethodFailed("down"))
        assert isinstance(sop.current_proc, e.TryFallbackMethod) and sop.state.tried_fallback
        sop(e.FallbackMethodFailed("down too"))
        assert _rejections(sop, e.PrimaryMethodFailed("still down")) == [
            "Both primary and fallback methods failed. Manual intervention required."
        ]
    assert sop.num_retry == 3  # one rejection, then two unfinished-exit recoveries


def test_the_circuit_breaker_opens_after_five_failures(engine: str) -> None:
    sop = SOP(e.RecoveryState(), e.CircuitBreakerProcedure(), retry_limits=10)
    with pytest.raises(SOPViolation), sop:  # the circuit stays open for longer than the block
        prompts = _rejections(sop, *(e.OperationFailed("x") for _ in range(5)), e.OperationRequest("again"))
        assert sop.current_proc.circuit_open is True
    with sop:  # a new block starts from a new breaker
        sop(e.OperationRequest("closed"))
    assert prompts == ["Operation failed. Will retry."] * 4 + [
        "Too many failures. Circuit breaker opened to prevent cascade failures.",
        "Circuit breaker is open. Service temporarily unavailable.",
    ]


def test_a_failure_moves_to_recovery_and_the_state_counts_it(engine: str) -> None:
    sop = SOP(e.RecoveryState(), e.Watching())
    with sop:
        EventBus.push_event(e.OperationFailed(payload="simulated failure"))
        assert isinstance(sop.current_proc, e.RecoveryProcedure)
        assert sop.state.error_count == 1
        assert sop.state.recovery_attempted is True
        EventBus.push_event(e.OperationSucceeded("recovered"))


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [("RESOURCE", e.WaitForResourcesProcedure), ("CONFIGURATION", e.ReconfigureProcedure), ("OTHER", e.EscalateProcedure)],
)
def test_multi_level_recovery_picks_the_level_by_failure_type(engine: str, kind: str, outcome: type) -> None:
    sop = SOP(e.RecoveryState(), e.MultiLevelRecovery())
    with sop:
        assert _rejections(sop, e.SystemFailed(e.Failure(failure_type="TRANSIENT"))) == [
            "Transient failure detected. Retrying immediately."
        ]
        sop(e.SystemFailed(e.Failure(failure_type=kind)))
        assert type(sop.current_proc) is outcome and isinstance(sop.current_proc, End)


def test_the_error_handler_gets_a_prompt_only_when_the_block_is_left_unfinished(engine: str) -> None:
    seen: list[Prompt] = []

    def error_handler(prompt: Prompt) -> str:
        seen.append(prompt)
        if len(seen) == 2:
            EventBus.push_event(e.OperationSucceeded("recovered on the second call"))
        return "I encountered an error and will try to recover."

    sop = SOP(e.RecoveryState(), e.RetryProcedure()).with_recovery(error_handler=error_handler, retry_limits=3)
    with sop:
        _rejections(sop, e.OperationFailed("once"))
        assert seen == []
    assert [str(p) for p in seen] == [
        "SOP left unfinished: current procedure is RetryProcedure with prompt Run the operation, retrying with backoff."
    ] * 2
