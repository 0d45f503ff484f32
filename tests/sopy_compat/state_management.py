"""SOPy tutorial 3 (state management), re-implemented from its descriptions.

A state with computed properties and methods, data accumulated over several events, checkpoints
restored by a handler that then rejects (SOPy keeps what the handler did), and a processor
that rejects failures below an error threshold.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from pydantic import BaseModel, Field

from sopy_actors.sopy import End, Event, Procedure, handler, make_prompt


class DataCollectionState(BaseModel):
    expected_sources: int = 2
    sources: list[str] = Field(default_factory=list)
    raw_data: dict[str, Any] = Field(default_factory=dict)
    cleaned_data: dict[str, Any] = Field(default_factory=dict)
    report: dict[str, Any] | None = None

    @property
    def complete(self) -> bool:
        return len(self.sources) >= self.expected_sources


class DataSourceRead(Event[dict[str, Any]]):
    """One source was read: {"source": name, "data": ...}."""


class CleaningComplete(Event[dict[str, Any]]):
    pass


class AnalysisComplete(Event[dict[str, Any]]):
    pass


class CollectData(Procedure[DataCollectionState]):
    prompt = make_prompt("Read every data source")

    @handler
    def handle_data_source_read(self, sigma: DataCollectionState, event: DataSourceRead):
        sigma.raw_data[event.payload["source"]] = event.payload["data"]
        sigma.sources.append(event.payload["source"])
        return CleanData() if sigma.complete else self


class CleanData(Procedure[DataCollectionState]):
    prompt = make_prompt("Clean the data")

    @handler
    def handle_cleaning_complete(self, sigma: DataCollectionState, event: CleaningComplete):
        sigma.cleaned_data = event.payload["cleaned_data"]
        return AnalyzeData()


class AnalyzeData(Procedure[DataCollectionState]):
    prompt = make_prompt("Analyse the clean data")

    @handler
    def handle_analysis_complete(self, sigma: DataCollectionState, event: AnalysisComplete):
        sigma.report = event.payload
        return End()


class CheckpointState(BaseModel):
    current_data: dict[str, Any] = Field(default_factory=dict)
    processing_stage: str = "initial"
    checkpoints: dict[str, Any] = Field(default_factory=dict)

    def create_checkpoint(self, name: str) -> None:
        self.checkpoints[name] = {"data": deepcopy(self.current_data), "stage": self.processing_stage}

    def restore_checkpoint(self, name: str) -> bool:
        if name not in self.checkpoints:
            return False
        self.current_data = deepcopy(self.checkpoints[name]["data"])
        self.processing_stage = self.checkpoints[name]["stage"]
        return True


class BeginOperation(Event[str]):
    pass


class DataChanged(Event[dict[str, Any]]):
    pass


class OperationFailed(Event[str]):
    pass


class OperationCommitted(Event[str]):
    pass


class TransactionalProcedure(Procedure[CheckpointState]):
    prompt = make_prompt("Start the operation safely")

    @handler
    def handle_begin_operation(self, sigma: CheckpointState, event: BeginOperation):
        sigma.create_checkpoint("before_operation")
        return ProcessOperation()

    @handler
    def handle_operation_failed(self, sigma: CheckpointState, event: OperationFailed):
        if sigma.restore_checkpoint("before_operation"):
            return "Operation failed. State restored to checkpoint. Please try again."
        return "Operation failed and checkpoint restoration failed. Manual intervention required."


class ProcessOperation(TransactionalProcedure):
    prompt = make_prompt("Run the operation")

    @handler
    def handle_data_changed(self, sigma: CheckpointState, event: DataChanged):
        sigma.current_data.update(event.payload)
        sigma.processing_stage = "processing"
        return self

    @handler
    def handle_committed(self, sigma: CheckpointState, event: OperationCommitted):
        return End()


class ProcessingState(BaseModel):
    success_count: int = 0
    error_count: int = 0
    target_count: int = 2
    max_errors: int = 1
    status: str = "running"
    processed_items: list[str] = Field(default_factory=list)
    failed_items: list[str] = Field(default_factory=list)


class ItemProcessed(Event[dict[str, Any]]):
    """{"success": bool, "item_id": str}"""


class ConditionalProcessor(Procedure[ProcessingState]):
    prompt = make_prompt("Process the items")

    @handler
    def handle_processing_result(self, sigma: ProcessingState, event: ItemProcessed):
        if event.payload["success"]:
            sigma.success_count += 1
            sigma.processed_items.append(event.payload["item_id"])
            if sigma.success_count >= sigma.target_count:
                sigma.status = "completed"
                return End()
            return self
        sigma.error_count += 1
        sigma.failed_items.append(event.payload["item_id"])
        if sigma.error_count > sigma.max_errors:
            sigma.status = "failed"
            return ErrorHandlingProcedure()
        return "Processing failed for item. Continuing with next item."


class ErrorHandlingProcedure(Procedure[ProcessingState]):
    prompt = make_prompt("Report the failed items")

    @handler
    def handle_processing_result(self, sigma: ProcessingState, event: ItemProcessed):
        return End()
