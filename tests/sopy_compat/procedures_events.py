"""SOPy tutorial 2 (procedures and events), re-implemented from its descriptions.

File processing with a retry count kept on the procedure, a custom event constructor in SOPy's
positional order, an `ignore` list, procedure inheritance, procedures built with a prompt at
run time, and the start/processing/complete flow of the tutorial's integration test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from sopy_actors.sopy import End, Event, Procedure, Prompt, handler, make_prompt


@dataclass
class ProcessingResult:
    """A rich payload (the tutorial's dataclass)."""

    filename: str
    success: bool
    message: str = ""


class FileState(BaseModel):
    files_to_process: list[str] = Field(default_factory=list)
    processed_files: list[str] = Field(default_factory=list)
    failed_files: list[str] = Field(default_factory=list)
    backup_files: set[str] = Field(default_factory=set)
    migrated_files: set[str] = Field(default_factory=set)
    noted: list[str] = Field(default_factory=list)


class FileProcessed(Event[ProcessingResult]):
    """A file was processed (or not)."""


class ProcessFiles(Procedure[FileState]):
    """Stays while files are left, ends when none is; a failing file is retried up to three times."""

    prompt = make_prompt("Process each file in the queue one by one")

    def __init__(self) -> None:
        self.retry_count = 0
        self.max_retries = 3

    @handler
    def handle_file_processed(self, state: FileState, event: FileProcessed):
        name = event.payload.filename
        if event.payload.success:
            state.processed_files.append(name)
            state.files_to_process.remove(name)
            self.retry_count = 0
            return self if state.files_to_process else End()
        self.retry_count += 1
        if self.retry_count >= self.max_retries:
            state.failed_files.append(name)
            return f"Failed to process {name} after {self.max_retries} attempts"
        return f"Processing failed for {name}, retrying ({self.retry_count}/{self.max_retries})"


class AuditNote(Event[str]):
    """An event whose constructor passes SOPy's five arguments on, positionally."""

    def __init__(
        self,
        payload: str,
        description: str | None = None,
        sender: Any = None,
        target: Any = None,
        toolUseId: str | None = None,
    ) -> None:
        super().__init__(payload, description, sender, target, toolUseId)


class HighPriorityEvent(Event[str]):
    pass


class LowPriorityEvent(Event[str]):
    pass


class DebugEvent(Event[str]):
    pass


class SelectiveProcessor(Procedure[FileState]):
    prompt = make_prompt("Handle urgent work only")
    ignore = [LowPriorityEvent, DebugEvent]  # noqa: RUF012 - SOPy's lists work

    @handler
    def handle_high_priority(self, state: FileState, event: HighPriorityEvent):
        state.noted.append(event.payload)
        return End()

    @handler
    def handle_low_priority(self, state: FileState, event: LowPriorityEvent):
        state.noted.append("never: the event is ignored")  # the tutorial: "never called"

    @handler
    def handle_audit(self, state: FileState, event: AuditNote):
        state.noted.append(f"{event.payload} by {event.sender}: {event.description}")
        return self


class CopySuccess(Event[str]):
    """A copy reached its destination (payload: the destination)."""


class CopyFailed(Event[str]):
    """A copy failed (payload: why)."""


class BaseCopyProcedure(Procedure[FileState]):
    """The shared failure handling of both copy steps."""

    def __init__(self) -> None:
        self.retry_count = 0
        self.max_retries = 3

    @handler
    def handle_copy_failure(self, state: FileState, event: CopyFailed):
        self.retry_count += 1
        if self.retry_count >= self.max_retries:
            return "Copy operation failed after maximum retries"
        return f"Copy failed, retrying ({self.retry_count}/{self.max_retries})"


class BackupCopy(BaseCopyProcedure):
    prompt = make_prompt("Copy files to backup location")

    @handler
    def handle_copy_success(self, state: FileState, event: CopySuccess):
        state.backup_files.add(event.payload)
        return MigrateCopy()


class MigrateCopy(BaseCopyProcedure):
    prompt = make_prompt("Copy files to final destination")

    @handler
    def handle_copy_success(self, state: FileState, event: CopySuccess):
        state.migrated_files.add(event.payload)
        return End()


class TaskListReceived(Event[list[str]]):
    pass


class TaskDone(Event[str]):
    pass


class TaskPlanner(Procedure[FileState]):
    prompt = make_prompt("Plan the tasks")

    @handler
    def handle_task_list(self, state: FileState, event: TaskListReceived):
        if not event.payload:
            return End()
        return ProcessTask(prompt=make_prompt(f"Process task: {event.payload[0]}"), task=event.payload[0])


class ProcessTask(Procedure[FileState]):
    """A procedure whose prompt and task are given when it is created."""

    def __init__(self, prompt: Prompt, task: str) -> None:
        self.prompt = prompt
        self.task = task

    @handler
    def handle_task_done(self, state: FileState, event: TaskDone):
        if event.payload != self.task:
            return f"Finish {self.task} first."
        state.processed_files.append(self.task)
        return End()


class StartEvent(Event[str]):
    pass


class CompleteEvent(Event[str]):
    pass


class StartProcedure(Procedure[FileState]):
    prompt = make_prompt("Start the work")

    @handler
    def handle_start(self, state: FileState, event: StartEvent):
        return ProcessingProcedure()


class ProcessingProcedure(Procedure[FileState]):
    prompt = make_prompt("Do the work")

    @handler
    def handle_complete(self, state: FileState, event: CompleteEvent):
        return End()
