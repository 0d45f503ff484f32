"""SOPy tutorial 3: shared state across procedures; a rejecting handler keeps its changes (SOPy)."""

from __future__ import annotations

import pytest

from sopy_actors.core.options import STRICT
from sopy_actors.sopy import SOP, End
from sopy_actors.sopy.core.event import EventBus
from sopy_actors.sopy.core.sop import SOPRetryExceptionHook
from tests.sopy_compat.checks import rejected
from tests.sopy_compat.state_management import (
    AnalysisComplete,
    AnalyzeData,
    BeginOperation,
    CheckpointState,
    CleanData,
    CleaningComplete,
    CollectData,
    ConditionalProcessor,
    DataChanged,
    DataCollectionState,
    DataSourceRead,
    ErrorHandlingProcedure,
    ItemProcessed,
    OperationCommitted,
    OperationFailed,
    ProcessingState,
    ProcessOperation,
    TransactionalProcedure,
)


def test_data_accumulates_until_every_source_is_read_then_flows_through_cleaning_and_analysis(engine: str) -> None:
    sop = SOP(DataCollectionState(), CollectData())
    with sop:
        EventBus.push_event(DataSourceRead({"source": "crm", "data": [1, 2]}))
        assert isinstance(sop.current_proc, CollectData) and not sop.state.complete
        EventBus.push_event(DataSourceRead({"source": "erp", "data": [3]}))
        assert isinstance(sop.current_proc, CleanData) and sop.state.complete
        EventBus.push_event(CleaningComplete({"cleaned_data": {"values": [1, 2, 3]}}))
        assert isinstance(sop.current_proc, AnalyzeData)
        EventBus.push_event(AnalysisComplete({"mean": 2}))
        assert sop.state.raw_data == {"crm": [1, 2], "erp": [3]} and sop.state.report == {"mean": 2}


def test_a_failed_operation_restores_the_checkpoint_and_the_restored_state_is_kept_though_rejected(engine: str) -> None:
    sop = SOP(CheckpointState(current_data={"rows": 1}), TransactionalProcedure())
    with sop:
        sop(BeginOperation("go"))
        assert isinstance(sop.current_proc, ProcessOperation)
        sop(DataChanged({"rows": 5, "dirty": True}))
        assert sop.state.current_data == {"rows": 5, "dirty": True}
        with pytest.raises(SOPRetryExceptionHook) as hook:
            sop(OperationFailed("disk full"))
        assert str(hook.value) == "Operation failed. State restored to checkpoint. Please try again."
        assert sop.state.current_data == {"rows": 1} and sop.state.processing_stage == "initial"
        assert isinstance(sop.current_proc, ProcessOperation)
        sop(OperationCommitted("retried"))


def test_with_strict_semantics_a_rejecting_handler_is_rolled_back(engine: str) -> None:
    sop = SOP(CheckpointState(current_data={"rows": 1}), TransactionalProcedure(), semantics=STRICT)
    with sop:
        sop(BeginOperation("go"))
        sop(DataChanged({"rows": 5}))
        with pytest.raises(SOPRetryExceptionHook, match=r"^Operation failed\. State restored"):
            sop(OperationFailed("disk full"))
        assert sop.state.current_data == {"rows": 5}  # the restore was rolled back with the rejection
        sop(OperationCommitted("anyway"))


def test_a_failure_before_any_checkpoint_asks_for_manual_intervention(engine: str) -> None:
    sop = SOP(CheckpointState(), TransactionalProcedure())
    with pytest.raises(SOPRetryExceptionHook, match=r"^Operation failed and checkpoint restoration failed"), sop:
        sop(OperationFailed("early"))


def test_failures_below_the_threshold_are_rejected_and_counted_in_the_state(engine: str) -> None:
    sop = SOP(ProcessingState(), ConditionalProcessor())
    with sop:
        sop(ItemProcessed({"success": True, "item_id": "a"}))
        with rejected("Processing failed for item. Continuing with next item."):
            sop(ItemProcessed({"success": False, "item_id": "b"}))
        assert sop.state.error_count == 1 and sop.state.failed_items == ["b"]
        sop(ItemProcessed({"success": False, "item_id": "c"}))
        assert isinstance(sop.current_proc, ErrorHandlingProcedure) and sop.state.status == "failed"
        sop(ItemProcessed({"success": True, "item_id": "d"}))
        assert isinstance(sop.current_proc, End)
