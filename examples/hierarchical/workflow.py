"""The spec's MasterWorkflow: a master SOP that runs sub-SOPs with their own nested state.

The master's handler starts a sub-SOP (a child of the master on the actor runtime), drives it
and merges its final state into the master's `HierarchicalState`. The data-processing child is
waited for inside the handler (blocking, as SOPy code does); the report child runs on its own
and reports back with `SubSOPCompleted` (non-blocking).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from sopy_actors import (
    SOP,
    End,
    Event,
    Procedure,
    ProcedureOptions,
    SubSOPCompleted,
    cond,
    handler,
    make_prompt,
)

# Light procedures share one procedure actor (one process) instead of one actor per class.
LIGHT = ProcedureOptions(placement="shared")


# -- the data-processing sub-SOP --------------------------------------------------------------


class DataProcessingState(BaseModel):
    input_data: list[int]
    cleaned: list[int] = Field(default_factory=list)
    total: int = 0


class DataCleaned(Event[list[int]]):
    """The cleaned rows."""


class DataSummed(Event[int]):
    """The total of the cleaned rows."""


class StartDataProcessing(Procedure[DataProcessingState]):
    sop_options = LIGHT
    prompt = make_prompt("Drop the negative rows of the input data.")

    @handler
    def on_cleaned(self, state: DataProcessingState, event: DataCleaned) -> Procedure[DataProcessingState] | str:
        if cond(any(row < 0 for row in event.payload), "negative rows remain"):
            return "Remove every negative row before reporting the data as cleaned."
        state.cleaned = event.payload
        return SumData()


class SumData(Procedure[DataProcessingState]):
    sop_options = LIGHT
    prompt = make_prompt("Add up the cleaned rows.")

    @handler
    def on_summed(self, state: DataProcessingState, event: DataSummed) -> Procedure[DataProcessingState] | str:
        assert event.payload == sum(state.cleaned), f"The total of {state.cleaned} is not {event.payload}."
        state.total = event.payload
        return End()


class DataProcessingSOP(SOP[DataProcessingState]):
    """The data-processing sub-workflow."""


# -- the report sub-SOP -----------------------------------------------------------------------


class ReportState(BaseModel):
    data: dict[str, Any]
    report: str = ""


class ReportWritten(Event[str]):
    """The report text."""


class StartReportGeneration(Procedure[ReportState]):
    sop_options = LIGHT
    prompt = make_prompt("Write a one-line report of the data.")

    @handler
    def on_report(self, state: ReportState, event: ReportWritten) -> Procedure[ReportState] | str:
        if cond(not event.payload.strip(), "the report is empty"):
            return "Write a report that is not empty."
        state.report = event.payload
        return End()


class ReportGenerationSOP(SOP[ReportState]):
    """The report sub-workflow."""


# -- the master -------------------------------------------------------------------------------


class HierarchicalState(BaseModel):
    """The spec's nested state: master status, each sub-workflow's state, merged results."""

    master_status: str = "initializing"
    current_sub_workflow: str | None = None
    data_processing_state: DataProcessingState | None = None
    report_generation_state: ReportState | None = None
    sub_workflow_results: dict[str, Any] = Field(default_factory=dict)

    def get_active_sub_state(self) -> BaseModel | None:
        """The state of the sub-workflow that is running now."""
        return {
            "data_processing": self.data_processing_state,
            "report_generation": self.report_generation_state,
        }.get(self.current_sub_workflow or "")

    def set_active_sub_state(self, workflow_type: str, state: BaseModel) -> None:
        """Record a sub-workflow's state and make it the active one."""
        self.current_sub_workflow = workflow_type
        if isinstance(state, DataProcessingState):
            self.data_processing_state = state
        elif isinstance(state, ReportState):
            self.report_generation_state = state


class SubWorkflowRequest(BaseModel):
    workflow_type: str
    data: list[int]


class SubWorkflowNeeded(Event[SubWorkflowRequest]):
    """A sub-workflow should run on this data."""


def execute_data_processing(sub_sop: DataProcessingSOP) -> DataProcessingState:
    """Drive the data-processing child to End (here deterministically; an agent in real life)."""
    child = sub_sop.start()
    rows = sub_sop.state.input_data
    child.send(DataCleaned(payload=rows))  # rejected: negative rows remain
    cleaned = [row for row in rows if row >= 0]
    child.send(DataCleaned(payload=cleaned))
    child.send(DataSummed(payload=sum(cleaned)))
    result: DataProcessingState = child.result(timeout=300)
    return result


class MasterWorkflow(Procedure[HierarchicalState]):
    prompt = make_prompt("Run the data-processing sub-workflow, then the report sub-workflow.")

    @handler
    def handle_sub_workflow_needed(
        self, state: HierarchicalState, event: SubWorkflowNeeded
    ) -> Procedure[HierarchicalState] | str:
        workflow_type = event.payload.workflow_type
        if workflow_type == "data_processing":
            state.master_status = "processing data"
            sub_sop = DataProcessingSOP(
                state=DataProcessingState(input_data=event.payload.data), init_proc=StartDataProcessing()
            )
            result = execute_data_processing(sub_sop)  # blocking: the child runs on its own host
            state.set_active_sub_state(workflow_type, result)
            state.sub_workflow_results[workflow_type] = {"total": result.total, "rows": len(result.cleaned)}
            return self
        if workflow_type == "report_generation":
            assert state.data_processing_state is not None, "Run data_processing before report_generation."
            state.master_status = "writing the report"
            child = ReportGenerationSOP(
                state=ReportState(data=state.sub_workflow_results), init_proc=StartReportGeneration()
            ).start()
            state.current_sub_workflow = workflow_type
            child.submit(ReportWritten(payload=f"{len(event.payload.data)} rows, total {state.data_processing_state.total}"))
            return ContinueMasterWorkflow()  # non-blocking: the child reports back
        return f"Unknown sub-workflow type: {workflow_type}"


class ContinueMasterWorkflow(Procedure[HierarchicalState]):
    sop_options = LIGHT
    prompt = make_prompt("Wait for the report sub-workflow and merge its report.")

    @handler
    def on_child_done(self, state: HierarchicalState, event: SubSOPCompleted) -> Procedure[HierarchicalState]:
        # Every child reports its End, the blocking data child too; its report may arrive here
        # late. Only the report child's completion finishes the master.
        if cond(event.payload.name != ReportGenerationSOP.__name__, "another child finished"):
            return self
        report = event.payload.state_as(ReportState)
        state.set_active_sub_state("report_generation", report)
        state.sub_workflow_results["report_generation"] = {"report": report.report}
        state.master_status = "done"
        return End()


def master_sop() -> SOP[HierarchicalState]:
    """The master SOP, entering at MasterWorkflow."""
    return SOP(state=HierarchicalState(), init_proc=MasterWorkflow())
