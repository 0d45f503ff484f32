"""SOPy tutorial 7: tools through `sopy_actors.sopy.interface.strands`; guarded agent calls.

The procedures are driven by the tools' events pushed on the EventBus, as a tool would send
them, and by a guarded scripted agent: in this process before `sopy_actors.init()`, in an agent
actor after it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from sopy_actors.agents import ScriptedModel
from sopy_actors.errors import InputError
from sopy_actors.sopy import SOP, End, Event
from sopy_actors.sopy.core.event import EventBus
from sopy_actors.sopy.core.sop import SOPRetryExceptionHook
from sopy_actors.sopy.interface.strands import StrandsAgent, ToolDefException, eToolResult, eToolUse, tool
from tests.sopy_compat import tool_integration as t
from tests.sopy_compat.checks import rejected

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def test_a_tool_called_as_a_plain_function_just_runs(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("1,2,3")
    assert t.read_file(str(tmp_path / "data.csv")) == (str(tmp_path / "data.csv"), "1,2,3")
    assert t.read_file(str(tmp_path / "missing")) == (str(tmp_path / "missing"), None)


def test_a_use_event_whose_constructor_misses_a_tool_parameter_is_refused_when_declared() -> None:
    class MoveRequest(Event[tuple[str, str]]):
        def __init__(self, toolUseId: str, source: str) -> None:
            super().__init__(toolUseId=toolUseId, payload=(source, source))

    message = "Tool use event MoveRequest must accept all parameters of the tool function move: dest."
    with pytest.raises(ToolDefException, match=f"^{re.escape(message)}$"):

        @tool(t.CopyResult, MoveRequest)
        def move(source: str, dest: str) -> None:
            """Move a file."""


def test_sopys_generic_tool_event_names_are_exported() -> None:
    assert eToolUse.__name__ and eToolResult.__name__


def test_tool_events_drive_the_procedures_when_pushed_on_the_bus(engine: str, tmp_path: Path) -> None:
    path = str(tmp_path / "data.csv")
    sop = SOP(t.DataState(), t.ProcessDataProcedure())
    with sop:
        with pytest.raises(SOPRetryExceptionHook, match=r"^Failed to read file"):
            EventBus.push_event(t.FileReadEvent((path, None), toolUseId="t1"))
        EventBus.push_event(t.FileReadEvent((path, "1,2,3"), toolUseId="t2"))
        with pytest.raises(SOPRetryExceptionHook, match=r"^An error occurred while handling event CopyRequest"):
            EventBus.push_event(t.CopyRequest("t3", "/etc/hosts", "/tmp/x"))
        EventBus.push_event(t.CopyRequest("t4", path, path + ".published"))
        EventBus.push_event(t.CopyResult((path, path + ".published"), toolUseId="t4"))
        assert sop.state.raw_data == "1,2,3"


def test_a_multi_tool_etl_procedure_reports_each_stage_failure(engine: str) -> None:
    sop = SOP(t.DataState(), t.ETLProcedure(), retry_limits=5)
    with sop:
        with rejected("Data extraction failed: timeout. Please check the source."):
            sop(t.ExtractionResult({"success": False, "error": "timeout"}))
        sop(t.ExtractionResult({"success": True, "data": [1, 2]}))
        with pytest.raises(SOPRetryExceptionHook, match=r"^Data transformation failed: bad rule"):
            sop(t.TransformationResult({"success": False, "error": "bad rule"}))
        sop(t.TransformationResult({"success": True, "data": [2, 4]}))
        with rejected("Data loading failed: disk full. Please check the destination."):
            sop(t.LoadResult({"success": False, "error": "disk full"}))
        sop(t.LoadResult({"success": True, "count": 2}))
        assert (sop.state.extracted, sop.state.transformed, sop.state.records_loaded) == ([1, 2], [2, 4], 2)


@pytest.mark.parametrize(
    ("issue", "outcome"),
    [
        ("network", t.RetryWithBackoffProcedure),
        ("permission", t.RequestPermissionsProcedure),
        ("resource", t.WaitForResourcesProcedure),
    ],
)
def test_a_diagnosis_picks_the_recovery(engine: str, issue: str, outcome: type) -> None:
    sop = SOP(t.DataState(), t.DiagnosticProcedure())
    with sop:
        with rejected("Unknown issue type: cosmic rays. Manual intervention required."):
            sop(t.DiagnosticResult({"issue_type": "cosmic rays"}))
        sop(t.DiagnosticResult({"issue_type": issue}))
        assert type(sop.current_proc) is outcome and isinstance(sop.current_proc, End)


def test_a_guarded_agent_refuses_off_procedure_calls_and_the_error_handler_finishes_the_work(
    engine: str, tmp_path: Path
) -> None:
    data, published = tmp_path / "data.csv", tmp_path / "data.csv.published"
    data.write_text("1,2,3")
    script = [
        {"tool": "copy_file", "input": {"source": str(data), "dest": str(published)}},  # off-procedure: read first
        {"tool": "read_file", "input": {"path": str(tmp_path / "missing.csv")}},
        {"tool": "read_file", "input": {"path": str(data)}},
        "Read: {result}",  # the first call stops here; the SOP waits in PublishCopy
        {"tool": "copy_file", "input": {"source": str(data), "dest": str(published)}},
        "Done: {result}",
    ]
    agent = StrandsAgent(tools=[t.read_file, t.copy_file], model=ScriptedModel(script), name="sopy-compat-publisher")
    recoveries: list[str] = []

    def error_handler(prompt: object) -> object:
        recoveries.append(str(prompt))
        return agent(f"Error occurred: {prompt}")

    sop = SOP(t.DataState(), t.ProcessDataProcedure()).with_recovery(error_handler, retry_limits=3)
    with sop:
        result = agent("Publish data.csv")
        assert not published.exists() and sop.num_retry == 2
    refusals = [call.message for call in result.tool_calls if call.status == "rejected"]
    assert refusals == [
        f"An error occured in Procedure ProcessDataProcedure: Event CopyRequest(sender=sopy-compat-publisher, "
        f"target=None, payload=('{data}', '{published}')) should not happen in procedure ProcessDataProcedure. "
        "Please try again.. Prompt for this procedure is Process the uploaded data file",
        f"An error occured in Procedure ProcessDataProcedure: Failed to read file {tmp_path}/missing.csv. "
        "Please check the file path and try again.. Prompt for this procedure is Process the uploaded data file",
    ]
    assert [call.name for call in result.tool_calls] == ["copy_file", "read_file", "read_file"]
    assert recoveries == [
        "SOP left unfinished: current procedure is PublishCopy with prompt Copy the file into the publish directory."
    ]
    assert published.read_text() == "1,2,3"  # copied once: by the call the error handler made
    assert sop.num_retry == 3


@pytest.mark.parametrize("engine", ["in_process"], indirect=True)
def test_in_process_an_agent_works_for_the_with_block_and_sop_needs_the_runtime(engine: str, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("1,2,3")
    agent = StrandsAgent(
        tools=[t.read_file], model=ScriptedModel([{"tool": "read_file", "input": {"path": str(data)}}, "Done"]),
        name="sopy-compat-in-process",
    )
    sop = SOP(t.DataState(), t.ProcessDataProcedure())
    with pytest.raises(Exception, match="SOP left unfinished"), sop:
        result = agent("Read it")
        assert sop.state.raw_data == "1,2,3" and type(sop.current_proc).__name__ == "PublishCopy"
        with pytest.raises(InputError, match=r"call sopy_actors\.init"):
            agent("Read it", sop=object())  # type: ignore[arg-type]
    assert (str(result), [(c.name, c.status) for c in result.tool_calls]) == ("Done", [("read_file", "ok")])
    assert result.conversation.startswith("sop-") and agent.messages(result.conversation)[-1]["role"] == "assistant"
