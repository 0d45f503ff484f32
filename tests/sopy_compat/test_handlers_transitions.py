"""SOPy tutorial 4: every kind of handler return and transition pattern, on both engines."""

from __future__ import annotations

import pytest

from sopy_actors.sopy import SOP, End
from sopy_actors.sopy.core.event import EventBus
from sopy_actors.sopy.core.sop import SOPRetryExceptionHook
from tests.sopy_compat import handlers_transitions as h
from tests.sopy_compat.checks import rejected


def test_multi_exit_conditions_stay_move_to_the_next_batch_and_complete(engine: str) -> None:
    sop = SOP(h.FlowState(), h.ProcessingProcedure())
    with sop:
        sop(h.ProcessingResult(h.Result()))
        assert type(sop.current_proc) is h.ProcessingProcedure
        sop(h.ProcessingResult(h.Result()))
        assert type(sop.current_proc) is h.ProcessNextBatch
        with pytest.raises(SOPRetryExceptionHook, match=r"^Retryable error occurred. Attempt 1/2.$"):
            sop(h.ProcessingResult(h.Result(success=False, error_type="retryable")))
        sop(h.ProcessingResult(h.Result()))
        sop(h.ProcessingResult(h.Result()))
        assert type(sop.current_proc) is h.CompleteProcedure
        assert (sop.state.success_count, sop.state.error_count, sop.state.retry_count) == (4, 1, 1)


@pytest.mark.parametrize(("error_type", "expected"), [("fatal", h.AbortProcedure), ("other", h.FallbackProcedure)])
def test_errors_that_cannot_be_retried_branch_by_their_type(engine: str, error_type: str, expected: type) -> None:
    sop = SOP(h.FlowState(), h.ProcessingProcedure())
    with sop:
        sop(h.ProcessingResult(h.Result(success=False, error_type=error_type)))
        assert type(sop.current_proc) is expected


def test_a_procedure_handling_three_sources_moves_on_when_all_answered(engine: str) -> None:
    sop = SOP(h.FlowState(), h.DataCollectionProcedure())
    with sop:
        sop(h.DatabaseResult(h.Result(value=1)))
        with rejected("api failed: timeout"):
            sop(h.APIResult(h.Result(success=False, error="timeout")))
        sop(h.APIResult(h.Result(value=2)))
        assert sop.current_proc.sources_completed == {"database", "api"}
        sop(h.FileResult(h.Result(value=3)))
        assert type(sop.current_proc) is h.MergeDataProcedure
        assert sop.state.data == {"database": 1, "api": 2, "file": 3}


def test_a_linear_workflow_walks_its_four_steps_to_end(engine: str) -> None:
    sop = SOP(h.FlowState(), h.Initialize())
    with sop:
        for event in (h.InitComplete("ok"), h.DataCollected("ok"), h.ProcessingComplete("ok"), h.ReportGenerated("ok")):
            EventBus.push_event(event)
        assert sop.state.path == ["initialized", "collected", "processed", "reported"]
        assert isinstance(sop.current_proc, End)


@pytest.mark.parametrize(
    ("confidence", "expected"),
    [(0.95, h.HighConfidencePath), (0.7, h.MediumConfidencePath), (0.2, h.LowConfidencePath)],
)
def test_branching_follows_the_confidence(engine: str, confidence: float, expected: type) -> None:
    sop = SOP(h.FlowState(), h.DecisionPoint())
    with sop:
        sop(h.EvaluationResult(confidence))
        assert type(sop.current_proc) is expected


def test_an_iteration_loop_stops_at_its_limit_or_when_it_converges(engine: str) -> None:
    sop = SOP(h.FlowState(), h.IterativeProcessor())
    with sop:
        sop(h.IterationResult(h.Result(success=False, value=1.0)))
        sop(h.IterationResult(h.Result(success=False, value=2.0)))
        assert sop.current_proc.iteration_count == 2 and sop.state.current_value == 2.0
        sop(h.IterationResult(h.Result(success=False, value=3.0)))
        assert type(sop.current_proc) is h.MaxIterationsReached
    with sop:
        sop(h.IterationResult(h.Result(success=True)))
        assert type(sop.current_proc) is h.ConvergedProcedure
    stalling = SOP(h.FlowState(current_value=1.0), h.IterativeProcessor())
    with stalling:
        stalling(h.IterationResult(h.Result(success=False, value=1.001)))
        assert type(stalling.current_proc) is h.InsufficientImprovement


def test_a_parallel_coordinator_waits_for_every_worker(engine: str) -> None:
    sop = SOP(h.FlowState(), h.ParallelCoordinator())
    with sop:
        for worker in ("worker_2", "worker_1"):
            sop(h.WorkerComplete(h.Result(source=worker, value=1)))
        with rejected("Worker worker_3 failed: crashed"):
            sop(h.WorkerComplete(h.Result(source="worker_3", success=False, error="crashed")))
        assert isinstance(sop.current_proc, h.ParallelCoordinator)
        sop(h.WorkerComplete(h.Result(source="worker_3", value=1)))
        assert type(sop.current_proc) is h.AggregateResults


def test_a_failed_assertion_is_a_rejection_with_sopys_wording(engine: str) -> None:
    sop = SOP(h.FlowState(), h.PaymentProcedure())
    with sop:
        with pytest.raises(SOPRetryExceptionHook) as hook:
            sop(h.PaymentResult(h.Payment(amount=-5, currency="USD")))
        assert str(hook.value) == (
            "An error occurred while handling event PaymentResult(sender=None, target=None, "
            "payload=amount=-5.0 currency='USD'): Payment amount must be positive. Please try again."
        )
        with pytest.raises(SOPRetryExceptionHook, match=r"Unsupported currency: JPY\. Please try again\.$"):
            sop(h.PaymentResult(h.Payment(amount=5, currency="JPY")))
        sop(h.PaymentResult(h.Payment(amount=30, currency="EUR")))
        assert sop.state.account_balance == 70 and sop.num_retry == 2
