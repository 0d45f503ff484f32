"""SOPy tutorial 4 (handlers and transitions), re-implemented from its descriptions.

The outcomes of each pattern are `End` subclasses: reaching any of them finishes the SOP.

Multi-exit conditions, a procedure handling several events with a shared completion check,
a linear flow, branching by confidence, an iteration loop, a parallel coordinator, assertions
as recovery prompts and handlers annotated `-> str | Procedure[...]`.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from sopy_actors.sopy import End, Event, Procedure, handler, make_prompt


class Result(BaseModel):
    """A payload for results of any step."""

    success: bool = True
    value: float = 0.0
    source: str = ""
    error: str = ""
    error_type: str = ""


class FlowState(BaseModel):
    success_count: int = 0
    error_count: int = 0
    retry_count: int = 0
    max_retries: int = 2
    target_count: int = 4
    batch_size: int = 2
    data: dict[str, float] = Field(default_factory=dict)
    current_value: float = 0.0
    min_improvement: float = 0.01
    account_balance: float = 100.0
    payments: list[float] = Field(default_factory=list)
    path: list[str] = Field(default_factory=list)


class ProcessingResult(Event[Result]):
    pass


class ProcessingProcedure(Procedure[FlowState]):
    prompt = make_prompt("Process the batch")

    @handler
    def handle_processing_result(self, state: FlowState, event: ProcessingResult) -> str | Procedure[FlowState]:
        result = event.payload
        if result.success:
            state.success_count += 1
            if state.success_count >= state.target_count:
                return CompleteProcedure()
            if state.success_count >= state.batch_size:
                return ProcessNextBatch()
            return self
        state.error_count += 1
        if result.error_type == "retryable" and state.retry_count < state.max_retries:
            state.retry_count += 1
            return f"Retryable error occurred. Attempt {state.retry_count}/{state.max_retries}."
        if result.error_type == "fatal":
            return AbortProcedure()
        return FallbackProcedure()


class ProcessNextBatch(ProcessingProcedure):
    prompt = make_prompt("Process the next batch")


class CompleteProcedure(End):
    prompt = make_prompt("Report completion")


class AbortProcedure(End):
    prompt = make_prompt("Abort the processing")


class FallbackProcedure(End):
    prompt = make_prompt("Process with the fallback method")


class DatabaseResult(Event[Result]):
    pass


class APIResult(Event[Result]):
    pass


class FileResult(Event[Result]):
    pass


class DataCollectionProcedure(Procedure[FlowState]):
    """Three sources; the shared check moves on once all of them answered."""

    prompt = make_prompt("Collect data from the database, the API and the file")

    def __init__(self) -> None:
        self.sources_completed: set[str] = set()
        self.expected_sources = {"database", "api", "file"}

    def _record(self, state: FlowState, source: str, result: Result) -> str | Procedure[FlowState]:
        if not result.success:
            return f"{source} failed: {result.error}"
        state.data[source] = result.value
        self.sources_completed.add(source)
        return self._check_completion()

    def _check_completion(self) -> Procedure[FlowState]:
        return MergeDataProcedure() if self.sources_completed >= self.expected_sources else self

    @handler
    def handle_database_result(self, state: FlowState, event: DatabaseResult):
        return self._record(state, "database", event.payload)

    @handler
    def handle_api_result(self, state: FlowState, event: APIResult):
        return self._record(state, "api", event.payload)

    @handler
    def handle_file_result(self, state: FlowState, event: FileResult):
        return self._record(state, "file", event.payload)


class MergeDataProcedure(End):
    prompt = make_prompt("Merge the collected data")


class InitComplete(Event[str]):
    pass


class DataCollected(Event[str]):
    pass


class ProcessingComplete(Event[str]):
    pass


class ReportGenerated(Event[str]):
    pass


class Initialize(Procedure[FlowState]):
    prompt = make_prompt("Initialize the workflow")

    @handler
    def handle_initialization_complete(self, state: FlowState, event: InitComplete):
        state.path.append("initialized")
        return CollectData()


class CollectData(Procedure[FlowState]):
    prompt = make_prompt("Collect the data")

    @handler
    def handle_data_collected(self, state: FlowState, event: DataCollected):
        state.path.append("collected")
        return ProcessData()


class ProcessData(Procedure[FlowState]):
    prompt = make_prompt("Process the data")

    @handler
    def handle_processing_complete(self, state: FlowState, event: ProcessingComplete):
        state.path.append("processed")
        return GenerateReport()


class GenerateReport(Procedure[FlowState]):
    prompt = make_prompt("Generate the report")

    @handler
    def handle_report_generated(self, state: FlowState, event: ReportGenerated):
        state.path.append("reported")
        return End()


class EvaluationResult(Event[float]):
    """The confidence of an evaluation."""


class DecisionPoint(Procedure[FlowState]):
    prompt = make_prompt("Decide how to proceed")

    @handler
    def handle_evaluation_result(self, state: FlowState, event: EvaluationResult):
        if event.payload > 0.9:
            return HighConfidencePath()
        elif event.payload > 0.5:
            return MediumConfidencePath()
        else:
            return LowConfidencePath()


class HighConfidencePath(End):
    prompt = make_prompt("Finish quickly")


class MediumConfidencePath(End):
    prompt = make_prompt("Validate before finishing")


class LowConfidencePath(End):
    prompt = make_prompt("Ask a human to review")


class IterationResult(Event[Result]):
    """value: the new value; success: converged."""


class IterativeProcessor(Procedure[FlowState]):
    prompt = make_prompt("Iterate until the value converges")

    def __init__(self) -> None:
        self.iteration_count = 0
        self.max_iterations = 3

    @handler
    def handle_iteration_result(self, state: FlowState, event: IterationResult):
        self.iteration_count += 1
        if event.payload.success:
            return ConvergedProcedure()
        if self.iteration_count >= self.max_iterations:
            return MaxIterationsReached()
        if abs(event.payload.value - state.current_value) < state.min_improvement:
            return InsufficientImprovement()
        state.current_value = event.payload.value
        return self


class ConvergedProcedure(End):
    prompt = make_prompt("Report the converged value")


class MaxIterationsReached(End):
    prompt = make_prompt("Report that the iteration did not converge")


class InsufficientImprovement(End):
    prompt = make_prompt("Report that the iteration stalled")


class WorkerComplete(Event[Result]):
    """source: the worker id."""


class ParallelCoordinator(Procedure[FlowState]):
    prompt = make_prompt("Wait for every worker")

    def __init__(self) -> None:
        self.completed_workers: set[str] = set()
        self.expected_workers = {"worker_1", "worker_2", "worker_3"}

    @handler
    def handle_worker_complete(self, state: FlowState, event: WorkerComplete):
        worker = event.payload.source
        if not event.payload.success:
            return f"Worker {worker} failed: {event.payload.error}"
        state.data[worker] = event.payload.value
        self.completed_workers.add(worker)
        if self.completed_workers >= self.expected_workers:
            return AggregateResults()
        return self


class AggregateResults(End):
    prompt = make_prompt("Aggregate the workers' results")


class Payment(BaseModel):
    amount: float
    currency: str


class PaymentResult(Event[Payment]):
    pass


class PaymentProcedure(Procedure[FlowState]):
    prompt = make_prompt("Take the payment")

    @handler
    def handle_payment_processing(self, state: FlowState, event: PaymentResult) -> str | Procedure[FlowState]:
        payment = event.payload
        assert payment.amount > 0, "Payment amount must be positive"
        assert payment.currency in ("USD", "EUR", "GBP"), f"Unsupported currency: {payment.currency}"
        assert state.account_balance >= payment.amount, "Insufficient funds"
        state.account_balance -= payment.amount
        state.payments.append(payment.amount)
        return End()
