"""SOPy tutorial 2: procedures, events, handlers; unit tests of handlers and flows on both engines."""

from __future__ import annotations

import pytest

from sopy_actors.sopy import SOP, End, Event, show
from sopy_actors.sopy.core.event import EventBus
from sopy_actors.sopy.core.sop import SOPRetryExceptionHook
from tests.sopy_compat.checks import rejected
from tests.sopy_compat.procedures_events import (
    AuditNote,
    BackupCopy,
    CompleteEvent,
    CopyFailed,
    CopySuccess,
    DebugEvent,
    FileProcessed,
    FileState,
    HighPriorityEvent,
    LowPriorityEvent,
    MigrateCopy,
    ProcessFiles,
    ProcessingProcedure,
    ProcessingResult,
    ProcessTask,
    SelectiveProcessor,
    StartEvent,
    StartProcedure,
    TaskDone,
    TaskListReceived,
    TaskPlanner,
)


def test_a_handler_called_directly_returns_the_next_procedure_or_a_recovery_text() -> None:
    state = FileState(files_to_process=["a.txt", "b.txt"])
    procedure = ProcessFiles()
    assert procedure.handle_file_processed(state, FileProcessed(ProcessingResult("a.txt", True))) is procedure
    failed = procedure.handle_file_processed(state, FileProcessed(ProcessingResult("b.txt", False)))
    assert isinstance(failed, str) and "b.txt" in failed
    assert isinstance(StartProcedure().handle_start(state, StartEvent("begin")), ProcessingProcedure)


def test_the_integration_flow_of_the_tutorial_reaches_end(engine: str) -> None:
    sop = SOP(state=FileState(), init_proc=StartProcedure())
    with sop:
        EventBus.push_event(StartEvent(payload="begin"))
        assert isinstance(sop.current_proc, ProcessingProcedure)
        EventBus.push_event(CompleteEvent(payload="done"))
        assert isinstance(sop.current_proc, End)


def test_failures_are_counted_on_the_procedure_across_rejections_and_reset_by_a_success(engine: str) -> None:
    sop = SOP(FileState(files_to_process=["a.txt", "b.txt"]), ProcessFiles(), retry_limits=5)
    prompts = []
    with sop:
        for result in (("a.txt", False), ("a.txt", False), ("a.txt", True), ("b.txt", False)):
            try:
                sop(FileProcessed(ProcessingResult(*result)))
            except SOPRetryExceptionHook as hook:
                prompts.append(str(hook))
        assert sop.current_proc.retry_count == 1
        sop(FileProcessed(ProcessingResult("b.txt", True)))
        assert sop.state.processed_files == ["a.txt", "b.txt"]
    assert prompts == [
        "Processing failed for a.txt, retrying (1/3)",
        "Processing failed for a.txt, retrying (2/3)",
        "Processing failed for b.txt, retrying (1/3)",
    ]


def test_the_last_failure_records_the_file_although_the_event_is_rejected(engine: str) -> None:
    sop = SOP(FileState(files_to_process=["a.txt"]), ProcessFiles(), retry_limits=5)
    with sop:
        for _ in range(3):
            with pytest.raises(SOPRetryExceptionHook) as hook:
                sop(FileProcessed(ProcessingResult("a.txt", False)))
        assert str(hook.value) == "Failed to process a.txt after 3 attempts"
        assert sop.state.failed_files == ["a.txt"]  # SOPy keeps a rejecting handler's changes
        sop(FileProcessed(ProcessingResult("a.txt", True)))


def test_ignored_event_types_are_accepted_silently_even_with_a_handler(engine: str) -> None:
    sop = SOP(FileState(), SelectiveProcessor())
    with sop:
        EventBus.push_event(LowPriorityEvent("later"))
        EventBus.push_event(DebugEvent("trace"))
        assert sop.state.noted == [] and sop.num_retry == 0
        EventBus.push_event(AuditNote("checked", "all fine", "auditor"))
        EventBus.push_event(HighPriorityEvent("now"))
        assert sop.state.noted == ["checked by auditor: all fine", "now"]


def test_sopys_positional_event_constructor_and_show() -> None:
    note = AuditNote("checked", "all fine", "auditor", "ops", "tool-1")
    assert (note.payload, note.description, note.sender, note.target, note.toolUseId) == (
        "checked", "all fine", "auditor", "ops", "tool-1",
    )
    assert show(note) == str(note) == "AuditNote(sender=auditor, target=ops, payload=checked)"
    assert show(FileProcessed(ProcessingResult("a", True))) == (
        "FileProcessed(sender=None, target=None, payload=ProcessingResult(filename='a', success=True, message=''))"
    )

    class Keyworded(Event[int]):
        pass

    event = Keyworded(payload=1, sender="file_processor_agent", description="done")
    assert (event.payload, event.sender, event.description, event.target) == (1, "file_processor_agent", "done", None)


def test_inherited_handlers_keep_their_own_count_in_each_procedure(engine: str) -> None:
    sop = SOP(FileState(), BackupCopy())
    with sop:
        with pytest.raises(SOPRetryExceptionHook, match=r"^Copy failed, retrying \(1/3\)$"):
            sop(CopyFailed("disk busy"))
        sop(CopySuccess("/backup/a"))
        assert isinstance(sop.current_proc, MigrateCopy) and sop.current_proc.retry_count == 0
        with pytest.raises(SOPRetryExceptionHook, match=r"^Copy failed, retrying \(1/3\)$"):
            sop(CopyFailed("disk busy"))
        sop(CopySuccess("/dest/a"))
        assert sop.state.backup_files == {"/backup/a"} and sop.state.migrated_files == {"/dest/a"}


def test_a_procedure_created_with_its_prompt_at_run_time_keeps_it(engine: str) -> None:
    sop = SOP(FileState(), TaskPlanner())
    with sop:
        sop(TaskListReceived(["index the archive", "send the report"]))
        current = sop.current_proc
        assert isinstance(current, ProcessTask) and current.task == "index the archive"
        assert str(current.prompt) == "Process task: index the archive"
        assert str(current) == "ProcessTask(Process task: index the archive)"
        with rejected("Finish index the archive first."):
            sop(TaskDone("send the report"))
        sop(TaskDone("index the archive"))
