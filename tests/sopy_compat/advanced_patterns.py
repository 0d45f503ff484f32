"""SOPy tutorial 9 (advanced patterns), re-implemented from its descriptions.

A coordinator that delegates to a specialist synchronously and finishes with the result, a
master workflow that runs a sub-SOP inside its handler (`with sub_sop:`), multi-level recovery
that tries its strategies in turn, and predictive recovery from health metrics.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from sopy_actors.sopy import SOP, End, Event, Procedure, handler, make_prompt
from sopy_actors.sopy.core.event import EventBus


class Task(BaseModel):
    type: str
    data: str = ""


class CoordinationState(BaseModel):
    handled: list[str] = Field(default_factory=list)


class TaskAssignment(Event[Task]):
    pass


def data_specialist(prompt: str) -> str:
    """Stands in for a specialist agent called synchronously from a handler."""
    return f"processed<{prompt}>"


class TaskCoordinator(Procedure[CoordinationState]):
    prompt = make_prompt("Delegate each task to its specialist")

    @handler
    def handle_task_assignment(self, state: CoordinationState, event: TaskAssignment):
        task = event.payload
        if task.type == "data_processing":
            result = data_specialist(f"Process this data: {task.data}")
            state.handled.append(task.type)
            return DataProcessingComplete(result=result)
        return f"Unknown task type: {task.type}"


class DataProcessingComplete(End):
    """Finished, with the specialist's result."""

    def __init__(self, result: str) -> None:
        super().__init__()
        self.result = result


class DataProcessingState(BaseModel):
    input_data: str
    output: str = ""


class ChunkProcessed(Event[str]):
    pass


class StartDataProcessing(Procedure[DataProcessingState]):
    prompt = make_prompt("Process the input data chunk by chunk")

    @handler
    def handle_chunk(self, state: DataProcessingState, event: ChunkProcessed):
        state.output += event.payload
        return End() if state.output == state.input_data else self


class Request(BaseModel):
    workflow_type: str
    data: str
    chunks: list[str]


class MasterState(BaseModel):
    sub_workflow_results: dict[str, Any] = Field(default_factory=dict)


class SubWorkflowNeeded(Event[Request]):
    pass


def execute_sub_workflow(sub_sop: SOP[DataProcessingState], chunks: list[str]) -> dict[str, Any]:
    """Drive the sub-SOP with its events; what the master keeps of it."""
    for chunk in chunks:
        EventBus.push_event(ChunkProcessed(chunk))
    return {"status": "completed", "data": sub_sop.state.output}


class MasterWorkflow(Procedure[MasterState]):
    prompt = make_prompt("Run the sub-workflows the work needs")

    @handler
    def handle_sub_workflow_needed(self, state: MasterState, event: SubWorkflowNeeded):
        request = event.payload
        if request.workflow_type != "data_processing":
            return f"Unknown sub-workflow type: {request.workflow_type}"
        sub_sop = SOP(state=DataProcessingState(input_data=request.data), init_proc=StartDataProcessing())
        with sub_sop:
            sub_result = execute_sub_workflow(sub_sop, request.chunks)
        state.sub_workflow_results[request.workflow_type] = sub_result
        return ContinueMasterWorkflow()


class ContinueMasterWorkflow(End):
    prompt = make_prompt("Continue with the results of the sub-workflows")


class RecoveryState(BaseModel):
    retry_count: int = 0
    has_fallback_available: bool = False
    using_fallback: bool = False
    alternative_approaches: list[str] = Field(default_factory=list)
    current_approach: str = ""
    requires_manual_intervention: bool = False
    actions: list[str] = Field(default_factory=list)


class Failure(BaseModel):
    retryable: bool = False


class OperationFailed(Event[Failure]):
    pass


class ManualFix(Event[str]):
    pass


class MultiLevelRecovery(Procedure[RecoveryState]):
    """Tries its strategies in order; a strategy that works continues the operation."""

    prompt = make_prompt("Recover from the failure, escalating step by step")

    def __init__(self) -> None:
        self.recovery_strategies = [self._quick_retry, self._fallback_method, self._alternative_approach]
        self.current_strategy = 0

    @handler
    def handle_operation_failed(self, state: RecoveryState, event: OperationFailed):
        if self.current_strategy < len(self.recovery_strategies):
            strategy = self.recovery_strategies[self.current_strategy]
            self.current_strategy += 1
            if strategy(state, event.payload):
                self.current_strategy = 0
                return self
            return self.handle_operation_failed(state, event)
        return "All recovery strategies failed. Manual intervention required."

    @handler
    def handle_manual_fix(self, state: RecoveryState, event: ManualFix):
        state.requires_manual_intervention = False
        return End()

    def _quick_retry(self, state: RecoveryState, failure: Failure) -> bool:
        if failure.retryable and state.retry_count < 3:
            state.retry_count += 1
            state.actions.append("retry")
            return True
        return False

    def _fallback_method(self, state: RecoveryState, failure: Failure) -> bool:
        if state.has_fallback_available:
            state.using_fallback = True
            state.actions.append("fallback")
            return True
        return False

    def _alternative_approach(self, state: RecoveryState, failure: Failure) -> bool:
        if state.alternative_approaches:
            state.current_approach = state.alternative_approaches.pop(0)
            state.actions.append("alternative")
            return True
        state.requires_manual_intervention = True
        return False


class PredictiveState(BaseModel):
    warning_count: int = 0
    performance_threshold: float = 1.0


class HealthCheck(Event[dict[str, Any]]):
    """Health metrics: memory_usage (0-1), response_times (seconds)."""


class PredictiveRecovery(Procedure[PredictiveState]):
    prompt = make_prompt("Watch the system's health")

    def __init__(self) -> None:
        self.health_metrics: dict[str, Any] = {}
        self.failure_predictors = [self._check_resource_exhaustion, self._check_performance_degradation]

    @handler
    def handle_health_check(self, state: PredictiveState, event: HealthCheck):
        self.health_metrics.update(event.payload)
        for predictor in self.failure_predictors:
            risk = predictor(self.health_metrics, state)
            if risk == "high":
                return PreventiveAction(predictor_name=predictor.__name__)
            if risk == "medium":
                state.warning_count += 1
                if state.warning_count > 3:
                    return PreventiveAction(predictor_name=predictor.__name__)
        return self

    def _check_resource_exhaustion(self, metrics: dict[str, Any], state: PredictiveState) -> str:
        usage = metrics.get("memory_usage", 0)
        return "high" if usage > 0.9 else "medium" if usage > 0.8 else "low"

    def _check_performance_degradation(self, metrics: dict[str, Any], state: PredictiveState) -> str:
        recent = metrics.get("response_times", [])[-10:]
        if recent:
            average = sum(recent) / len(recent)
            if average > state.performance_threshold * 2:
                return "high"
            if average > state.performance_threshold * 1.5:
                return "medium"
        return "low"


class PreventiveAction(End):
    """Act before the predicted failure."""

    def __init__(self, predictor_name: str) -> None:
        super().__init__()
        self.predictor_name = predictor_name
