"""SOPy tutorial 9: delegation, sub-SOPs in handlers, multi-level and predictive recovery, on both engines.

On the actor runtime a handler runs in a procedure actor: the sub-SOP it opens with
`with sub_sop:` runs on the runtime too, as a child of the SOP whose handler opened it.
"""

from __future__ import annotations

import pytest

from sopy_actors.sopy import SOP
from sopy_actors.sopy.core.sop import SOPRetryExceptionHook
from tests.sopy_compat import advanced_patterns as a
from tests.sopy_compat.checks import rejected


def test_a_handler_delegates_synchronously_and_finishes_with_the_result(engine: str) -> None:
    sop = SOP(a.CoordinationState(), a.TaskCoordinator())
    with sop:
        with rejected("Unknown task type: poetry"):
            sop(a.TaskAssignment(a.Task(type="poetry")))
        sop(a.TaskAssignment(a.Task(type="data_processing", data="rows")))
        done = sop.current_proc
        assert isinstance(done, a.DataProcessingComplete) and done.result == "processed<Process this data: rows>"


def test_a_sub_sop_run_inside_a_handler_gives_the_master_its_result(engine: str) -> None:
    sop = SOP(a.MasterState(), a.MasterWorkflow())
    with sop:
        sop(a.SubWorkflowNeeded(a.Request(workflow_type="data_processing", data="abc", chunks=["a", "bc"])))
        assert isinstance(sop.current_proc, a.ContinueMasterWorkflow)
        assert sop.state.sub_workflow_results == {"data_processing": {"status": "completed", "data": "abc"}}


def test_an_unfinished_sub_sop_rejects_the_masters_event_with_sopys_text(engine: str) -> None:
    sop = SOP(a.MasterState(), a.MasterWorkflow())
    request = a.Request(workflow_type="data_processing", data="abc", chunks=["a"])
    with sop:
        with pytest.raises(SOPRetryExceptionHook) as hook:
            sop(a.SubWorkflowNeeded(request))
        sop(a.SubWorkflowNeeded(request.model_copy(update={"chunks": ["abc"]})))
    assert str(hook.value) == (
        f"An error occurred while handling event SubWorkflowNeeded(sender=None, target=None, payload={request}): "
        "SOP left unfinished: current procedure is StartDataProcessing with prompt Process the input data chunk "
        "by chunk.. Please try again."
    )


def test_multi_level_recovery_tries_each_strategy_then_asks_for_a_person(engine: str) -> None:
    sop = SOP(a.RecoveryState(alternative_approaches=["batch"]), a.MultiLevelRecovery())
    with sop:
        sop(a.OperationFailed(a.Failure(retryable=True)))
        sop(a.OperationFailed(a.Failure(retryable=False)))
        assert sop.state.actions == ["retry", "alternative"] and sop.state.current_approach == "batch"
        assert sop.current_proc.current_strategy == 0
        with rejected("All recovery strategies failed. Manual intervention required."):
            sop(a.OperationFailed(a.Failure(retryable=False)))
        assert sop.state.requires_manual_intervention is True  # set by the last strategy; kept though rejected
        sop(a.ManualFix("fixed by hand"))


def test_predictive_recovery_acts_on_a_high_risk_at_once_and_after_four_medium_warnings(engine: str) -> None:
    high = SOP(a.PredictiveState(), a.PredictiveRecovery())
    with high:
        high(a.HealthCheck({"memory_usage": 0.5}))
        high(a.HealthCheck({"memory_usage": 0.95}))
        assert high.current_proc.predictor_name == "_check_resource_exhaustion"
    medium = SOP(a.PredictiveState(), a.PredictiveRecovery())
    with medium:
        for _ in range(3):
            medium(a.HealthCheck({"response_times": [1.6]}))
        assert isinstance(medium.current_proc, a.PredictiveRecovery) and medium.state.warning_count == 3
        medium(a.HealthCheck({"response_times": [1.6]}))
        assert medium.current_proc.predictor_name == "_check_performance_degradation"
