"""SOPy tutorial 7 (tool integration), re-implemented from its descriptions.

Tools declared with SOPy's `@tool(ResultEvent)` and `@tool(ResultEvent, UseEvent)`, a
procedure driven by a tool's result events, a multi-tool ETL procedure, and a diagnostic
procedure that branches on the diagnosis. Importing this module imports strands.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sopy_actors.sopy import End, Event, Procedure, handler, make_prompt
from sopy_actors.sopy.interface.strands import tool


class DataState(BaseModel):
    raw_data: str = ""
    file_path: str = ""
    extracted: list[int] = []
    transformed: list[int] = []
    records_loaded: int = 0


class FileReadEvent(Event[tuple[str, str | None]]):
    """A file was read: (path, content), or (path, None) when it could not be read."""


class CopyRequest(Event[tuple[str, str]]):
    """The agent asks to copy a file (built from the tool's input, SOPy's way)."""

    def __init__(self, toolUseId: str, source: str, dest: str) -> None:
        super().__init__(toolUseId=toolUseId, payload=(source, dest))


class CopyResult(Event[tuple[str, str] | None]):
    """A copy finished: (source, dest), or None when it failed."""


@tool(FileReadEvent)
def read_file(path: str) -> tuple[str, str | None]:
    """Read the contents of a file.

    Args:
        path: the file to read.
    """
    try:
        return path, Path(path).read_text()
    except OSError:
        return path, None


@tool(CopyResult, CopyRequest)
def copy_file(source: str, dest: str) -> tuple[str, str] | None:
    """Copy a file from source to destination.

    Args:
        source: the file to copy.
        dest: where the copy goes.
    """
    try:
        shutil.copy2(source, dest)
    except OSError:
        return None
    return source, dest


class ProcessDataProcedure(Procedure[DataState]):
    prompt = make_prompt("Process the uploaded data file")

    @handler
    def handle_file_read(self, state: DataState, event: FileReadEvent):
        path, content = event.payload
        if content is None:
            return f"Failed to read file {path}. Please check the file path and try again."
        state.raw_data = content
        state.file_path = path
        return PublishCopy()


class PublishCopy(Procedure[DataState]):
    prompt = make_prompt("Copy the file into the publish directory")

    @handler
    def handle_copy_request(self, state: DataState, event: CopyRequest):
        source, _ = event.payload
        assert source == state.file_path, f"Copy {state.file_path}, not {source}."
        return self

    @handler
    def handle_copy_result(self, state: DataState, event: CopyResult):
        if event.payload is None:
            return "The copy failed. Please try again."
        return End()


class ExtractionResult(Event[dict[str, Any]]):
    pass


class TransformationResult(Event[dict[str, Any]]):
    pass


class LoadResult(Event[dict[str, Any]]):
    pass


class ETLProcedure(Procedure[DataState]):
    prompt = make_prompt("Extract, transform, and load data")

    @handler
    def handle_extraction_complete(self, state: DataState, event: ExtractionResult):
        if not event.payload["success"]:
            return f"Data extraction failed: {event.payload['error']}. Please check the source."
        state.extracted = event.payload["data"]
        return self

    @handler
    def handle_transformation_complete(self, state: DataState, event: TransformationResult):
        if not event.payload["success"]:
            return f"Data transformation failed: {event.payload['error']}. Please check the transformation rules."
        state.transformed = event.payload["data"]
        return self

    @handler
    def handle_load_complete(self, state: DataState, event: LoadResult):
        if not event.payload["success"]:
            return f"Data loading failed: {event.payload['error']}. Please check the destination."
        state.records_loaded = event.payload["count"]
        return End()


class DiagnosticResult(Event[dict[str, Any]]):
    pass


class DiagnosticProcedure(Procedure[DataState]):
    prompt = make_prompt("Diagnose the system to understand the failure")

    @handler
    def handle_diagnostic_result(self, state: DataState, event: DiagnosticResult):
        issue = event.payload["issue_type"]
        if issue == "network":
            return RetryWithBackoffProcedure()
        elif issue == "permission":
            return RequestPermissionsProcedure()
        elif issue == "resource":
            return WaitForResourcesProcedure()
        else:
            return f"Unknown issue type: {issue}. Manual intervention required."


class RetryWithBackoffProcedure(End):
    prompt = make_prompt("Retry with backoff")


class RequestPermissionsProcedure(End):
    prompt = make_prompt("Request the missing permissions")


class WaitForResourcesProcedure(End):
    prompt = make_prompt("Wait for resources")
