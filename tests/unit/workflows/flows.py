"""Procedures and events the workflow tests assemble (importable: procedure actors load them)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from sopy_actors import End, Event, Procedure, ProcedureOptions, cond, handler, make_prompt
from sopy_actors.workflows import Condition, Workflow, WorkflowBuilder, WorkflowRegistry


class Data(BaseModel):
    rows: list[int] = Field(default_factory=list)
    total: int = 0
    anomalies: int = 0
    reviewed: bool = False
    report: str = ""
    log: list[str] = Field(default_factory=list)


class Context(BaseModel):
    requires_data_validation: bool = True
    requires_processing: bool = True
    requires_analysis: bool = True
    analysis_enabled: bool = True
    requires_reporting: bool = True


class RowsLoaded(Event[list[int]]):
    """Rows to work on."""


class ProcessRequested(Event[None]):
    """Total the rows."""


class AnalysisRequested(Event[int]):
    """Count the rows above the threshold in the payload."""


class ReviewDone(Event[str]):
    """A reviewer's verdict on the anomalies."""


class ReportRequested(Event[str]):
    """Write the report with this title."""


class ValidateData(Procedure[Data]):
    prompt = make_prompt("Load the rows and check that none is negative.")

    @handler
    def on_rows(self, state: Data, event: RowsLoaded) -> Procedure[Data] | str:
        if cond(any(row < 0 for row in event.payload), "a row is negative"):
            return "Remove the negative rows and load them again."
        state.rows = list(event.payload)
        state.log.append("validated")
        return ProcessData()


class ProcessData(Procedure[Data]):
    prompt = make_prompt("Total the rows.")

    @handler
    def on_process(self, state: Data, event: ProcessRequested) -> Procedure[Data]:
        state.total = sum(state.rows)
        state.log.append("processed")
        return AnalyzeData()


class AnalyzeData(Procedure[Data]):
    prompt = make_prompt("Count the rows above a threshold.")

    @handler
    def on_analysis(self, state: Data, event: AnalysisRequested) -> Procedure[Data]:
        state.anomalies = sum(row > event.payload for row in state.rows)
        state.log.append(f"analysed: {state.anomalies} anomalies")
        return GenerateReport()


class ReviewFindings(Procedure[Data]):
    prompt = make_prompt("Review the anomalies.")

    @handler
    def on_review(self, state: Data, event: ReviewDone) -> Procedure[Data] | str:
        if cond(not event.payload.strip(), "the verdict is empty"):
            return "Give a verdict."
        state.reviewed = True
        state.log.append(f"reviewed: {event.payload}")
        return GenerateReport()


class GenerateReport(Procedure[Data]):
    prompt = make_prompt("Write the report.")

    @handler
    def on_report(self, state: Data, event: ReportRequested) -> Procedure[Data]:
        state.report = f"{event.payload}: {len(state.rows)} rows, total {state.total}, {state.anomalies} anomalies"
        state.log.append("reported")
        return End()


def many_anomalies(state: Data, event: AnalysisRequested) -> bool:
    """A transition condition that travels by name."""
    return state.anomalies >= 2


def create_adaptive_workflow(state: Data, context: Context) -> Workflow[Data]:
    """The spec's builder usage, with one declared, conditional transition."""
    builder = WorkflowBuilder("adaptive")
    if context.requires_data_validation:
        builder.add_procedure(ValidateData)
    if context.requires_processing:
        builder.add_procedure(ProcessData)
    if context.requires_analysis:
        builder.add_procedure(AnalyzeData, condition=lambda s, c: c.analysis_enabled)
        builder.add_procedure(ReviewFindings)
        builder.add_transition(
            AnalyzeData, ReviewFindings, AnalysisRequested, Condition(field="state.anomalies", op=">", value=0)
        )
        builder.add_transition(AnalyzeData, GenerateReport, AnalysisRequested)
    if context.requires_reporting:
        builder.add_procedure(GenerateReport)
    return builder.build(state, context)


def full_workflow() -> Workflow[Data]:
    """The workflow with every step (a zero-argument factory for the CLI)."""
    return create_adaptive_workflow(Data(), Context())


registry = WorkflowRegistry()
registry.procedure("validation", ValidateData)
registry.procedure("processing", ProcessData)
registry.procedure("analysis", AnalyzeData)
registry.procedure("review", ReviewFindings)
registry.procedure("reporting", GenerateReport)
registry.event("rows_loaded", RowsLoaded)
registry.event("process_requested", ProcessRequested)
registry.event("analysis_requested", AnalysisRequested)
registry.event("review_done", ReviewDone)
registry.event("report_requested", ReportRequested)


@registry.state
def initial_state(parameters: dict[str, object]) -> Data:
    return Data(log=[f"source={parameters.get('source')}"])


class Divide(Procedure[Data]):
    prompt = make_prompt("Divide the total by the number of rows.")

    @handler
    def on_process(self, state: Data, event: ProcessRequested) -> Procedure[Data]:
        state.total = state.total // len(state.rows)  # raises ZeroDivisionError without rows
        return End()


class Checked(Procedure[Data]):
    """A step base that declares options: its steps run on its own procedure actors."""

    sop_options = ProcedureOptions(handler_timeout=120)
    prompt = make_prompt("Check the rows.")

    @handler
    def on_rows(self, state: Data, event: RowsLoaded) -> Procedure[Data]:
        state.rows = list(event.payload)
        return End()
