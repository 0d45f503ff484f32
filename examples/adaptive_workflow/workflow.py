"""The spec's adaptive workflow: `create_adaptive_workflow` picks its steps from a context.

Five hand-written procedures over a CSV of sensor readings (`data/readings.csv`): validate the
file, clean the readings, analyse them (mean, bounds, outliers by the IQR rule), review the
outliers, write a Markdown report. `create_adaptive_workflow` adds them to a `WorkflowBuilder`
as the context asks, as the spec writes it; `AnalyzeData` is added with a condition evaluated
at build time, and its way out is declared with `add_transition`: to `ReviewFindings` when the
analysis found outliers (a declarative `Condition`, evaluated at event time in the procedure
actor), else to `GenerateReport`. A step left out by its condition is skipped: `ProcessData`'s
`return AnalyzeData()` then lands in the next active step.

`build` validates the whole workflow: a context that leaves out a procedure some handler
returns without a condition (`requires_processing=False`) is refused with every problem listed.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sopy_actors import End, Event, Procedure, ProcedureOptions, cond, handler, make_prompt
from sopy_actors.workflows import Condition, Workflow, WorkflowBuilder

DATA = Path(__file__).resolve().parent / "data" / "readings.csv"
COLUMNS = ("station", "time", "temperature")
SENTINEL = -100.0  # failed sensors write -999.0
LIGHT = ProcedureOptions(placement="shared")


class Readings(BaseModel):
    """The run's data and findings."""

    source: str
    rows: list[dict[str, str]] = Field(default_factory=list)
    values: list[float] = Field(default_factory=list)
    dropped: int = 0
    mean: float | None = None
    bounds: list[float] = Field(default_factory=list)
    outliers: list[float] = Field(default_factory=list)
    reviewed: list[str] = Field(default_factory=list)
    report: str = ""
    steps: list[str] = Field(default_factory=list)


class Context(BaseModel):
    """What this run needs (the spec's context)."""

    requires_data_validation: bool = True
    requires_processing: bool = True
    requires_analysis: bool = True
    analysis_enabled: bool = True
    requires_reporting: bool = True


class DataLoaded(Event[str]):
    """The CSV file to work on."""


class ProcessingRequested(Event[None]):
    """Clean the readings."""


class AnalysisRequested(Event[None]):
    """Analyse the readings."""


class FindingsReviewed(Event[str]):
    """The reviewer's note on the outliers."""


class ReportRequested(Event[str]):
    """Write the report to this path."""


def read_rows(path: str) -> list[dict[str, str]]:
    """The rows of a readings CSV file."""
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


class ValidateData(Procedure[Readings]):
    sop_options = LIGHT
    prompt = make_prompt("Load the readings file and check its columns.")

    @handler
    def on_loaded(self, state: Readings, event: DataLoaded) -> Procedure[Readings] | str:
        if cond(not Path(event.payload).is_file(), "the file does not exist"):
            return f"There is no file {event.payload}: load an existing CSV file."
        rows = read_rows(event.payload)
        missing = [column for column in COLUMNS if not rows or column not in rows[0]]
        if cond(bool(missing), "columns are missing"):
            return f"{event.payload} lacks the columns {', '.join(missing)}: load a readings file."
        state.source, state.rows = event.payload, rows
        state.steps.append(f"validated {len(rows)} rows")
        return ProcessData()


class ProcessData(Procedure[Readings]):
    sop_options = LIGHT
    prompt = make_prompt("Drop readings that are not numbers or sensor failures.")

    @handler
    def on_processing(self, state: Readings, event: ProcessingRequested) -> Procedure[Readings]:
        if not state.rows:  # no validation step ran: read the file now
            state.rows = read_rows(state.source)
        for row in state.rows:
            try:
                value = float(row["temperature"])
            except ValueError:
                value = SENTINEL - 1
            if value < SENTINEL:
                state.dropped += 1
            else:
                state.values.append(value)
        state.steps.append(f"kept {len(state.values)} readings, dropped {state.dropped}")
        return AnalyzeData()


class AnalyzeData(Procedure[Readings]):
    sop_options = LIGHT
    prompt = make_prompt("Compute the mean and find the outliers (IQR rule).")

    @handler
    def on_analysis(self, state: Readings, event: AnalysisRequested) -> Procedure[Readings]:
        q1, _, q3 = statistics.quantiles(state.values, n=4)
        low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        state.mean = round(statistics.fmean(state.values), 2)
        state.bounds = [round(low, 2), round(high, 2)]
        state.outliers = [value for value in state.values if not low <= value <= high]
        state.steps.append(f"mean {state.mean}, {len(state.outliers)} outliers")
        return GenerateReport()


class ReviewFindings(Procedure[Readings]):
    sop_options = LIGHT
    prompt = make_prompt("Review each outlier and note whether it is a real event.")

    @handler
    def on_reviewed(self, state: Readings, event: FindingsReviewed) -> Procedure[Readings] | str:
        if cond(not event.payload.strip(), "the note is empty"):
            return "Write a note on the outliers."
        state.reviewed.append(event.payload)
        state.steps.append("reviewed the outliers")
        return GenerateReport()


class GenerateReport(Procedure[Readings]):
    sop_options = LIGHT
    prompt = make_prompt("Write the report.")

    @handler
    def on_report(self, state: Readings, event: ReportRequested) -> Procedure[Readings]:
        lines = [f"# Temperature readings of {Path(state.source).name}", ""]
        lines.append(f"{len(state.values)} readings, {state.dropped} dropped.")
        if state.mean is not None:
            lines.append(f"Mean {state.mean}; outliers outside {state.bounds[0]} .. {state.bounds[1]}: {state.outliers}.")
        else:
            lines.append(f"Not analysed; mean {round(statistics.fmean(state.values), 2)}.")
        lines += [f"Review: {note}" for note in state.reviewed]
        Path(event.payload).write_text("\n".join(lines) + "\n")
        state.report = event.payload
        state.steps.append("reported")
        return End()


def create_adaptive_workflow(state: Readings, context: Context) -> Workflow[Readings]:
    """The spec's builder usage, plus the declared way out of the analysis."""
    builder = WorkflowBuilder("adaptive_analysis")

    if context.requires_data_validation:
        builder.add_procedure(ValidateData)

    if context.requires_processing:
        builder.add_procedure(ProcessData)

    if context.requires_analysis:
        builder.add_procedure(AnalyzeData, condition=lambda s, c: c.analysis_enabled)
        builder.add_procedure(ReviewFindings, condition=lambda s, c: c.analysis_enabled)
        builder.add_transition(
            AnalyzeData, ReviewFindings, AnalysisRequested,
            Condition(field="state.outliers", op="!=", value=[]), description="outliers were found",
        )
        builder.add_transition(AnalyzeData, GenerateReport, AnalysisRequested)

    if context.requires_reporting:
        builder.add_procedure(GenerateReport)

    return builder.build(state, context)


def default_workflow() -> Workflow[Readings]:
    """The workflow of the full context (what `sopy-actors graph|check` draw)."""
    return create_adaptive_workflow(Readings(source=str(DATA)), Context())


def events_for(step: str, report: str) -> Event[Any]:
    """The event the driver sends in each step."""
    return {
        "ValidateData": DataLoaded(payload=str(DATA)),
        "ProcessData": ProcessingRequested(payload=None),
        "AnalyzeData": AnalysisRequested(payload=None),
        "ReviewFindings": FindingsReviewed(payload="two heat spikes at single stations; kept as real events"),
        "GenerateReport": ReportRequested(payload=report),
    }[step]
