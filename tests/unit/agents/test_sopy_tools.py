"""Tools as SOPy writes them: use events built from the call, SOPy's refusal text, tool methods.

The guard runs in process here, in a real strands Agent with the offline ScriptedModel, and
sends its events to an SOP run in this process (`LocalOwner`); no Ray.
"""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest
from strands import Agent
from strands.tools.executors import SequentialToolExecutor

from sopy_actors import Event, Outcome, ScriptedModel, StrandsAgent, tool
from sopy_actors.agents import (
    AgentSpec,
    ToolDefException,
    ToolOutput,
    ToolResultReady,
    ToolUse,
    ToolUseRequested,
    eToolResult,
    eToolUse,
)
from sopy_actors.agents.guard import CONTEXT_KEY, CallContext, SOPGuard, refusal_text
from sopy_actors.agents.spec import BoundTool
from sopy_actors.agents.tools import ToolEvents, events_of, result_event, use_event
from sopy_actors.errors import DefinitionError, InputError
from sopy_actors.runtime.messages import Receipt
from tests.support import sopy_tools as s
from tests.support.sopy_tools import LocalOwner, calls


class eCopy(Event[tuple[str, str]]):
    def __init__(self, source: str, dest: str) -> None:
        super().__init__(payload=(source, dest))


class eMove(Event[tuple[str, str]]):
    def __init__(self, toolUseId: str, source: str) -> None:
        super().__init__(toolUseId=toolUseId, payload=(source, source))


class eAnything(Event[dict[str, Any]]):
    def __init__(self, **tool_input: Any) -> None:
        super().__init__(toolUseId=tool_input.pop("toolUseId"), payload=tool_input)


class eCopied(Event[Any]):
    pass


def _move(source: str, dest: str) -> str:
    """Move a file.

    Args:
        source: the file.
        dest: where it goes.
    """
    return dest


def _run(owner: LocalOwner, tools: list[Any], steps: list[Any], prompt: str) -> tuple[str, CallContext]:
    """One guarded agent call in this process: the model plays `steps`; the tool events go to `owner`."""
    guard = SOPGuard("sopy-agent", {t.tool_name: events_of(t) for t in tools})
    agent = Agent(
        model=ScriptedModel(steps),
        tools=tools,
        hooks=[guard],
        tool_executor=SequentialToolExecutor(),
        callback_handler=None,
    )
    call = CallContext(owner=owner, call_id="c1")
    result = agent(prompt, invocation_state={CONTEXT_KEY: call})
    return str(result).strip(), call


def _source(tmp_path: Path) -> Path:
    source = tmp_path / "files"
    source.mkdir()
    (source / "a.txt").write_text("alpha")
    return source


# -- definition-time checks ---------------------------------------------------------------------


def test_a_use_event_whose_constructor_lacks_tool_use_id_is_refused_in_sopys_words() -> None:
    with pytest.raises(ToolDefException) as caught:
        tool(eCopied, eCopy)(_move)
    assert str(caught.value) == "Tool use event eCopy must accept a 'toolUseId' parameter."
    assert isinstance(caught.value, DefinitionError)


def test_a_use_event_whose_constructor_lacks_a_tool_parameter_is_refused_naming_them() -> None:
    with pytest.raises(ToolDefException) as caught:
        tool(eCopied, eMove)(_move)
    assert str(caught.value) == "Tool use event eMove must accept all parameters of the tool function _move: dest."


def test_every_problem_of_a_use_event_constructor_is_listed_at_once() -> None:
    class eNothing(Event[str]):
        def __init__(self, path: str) -> None:
            super().__init__(payload=path)

    with pytest.raises(ToolDefException) as caught:
        tool(eCopied, eNothing)(_move)
    assert caught.value.problems == (
        "Tool use event eNothing must accept a 'toolUseId' parameter.",
        "Tool use event eNothing must accept all parameters of the tool function _move: source, dest.",
    )
    assert str(caught.value).startswith("Invalid tool _move for 2 reasons:")


def test_a_constructor_taking_any_keyword_and_the_plain_event_constructor_pass_the_checks() -> None:
    assert events_of(tool(eCopied, eAnything)(_move)).use is eAnything
    assert events_of(tool(eCopied, eCopied)(_move)).use is eCopied  # payload built from the input


def test_a_tool_def_exception_pickles_with_its_message() -> None:
    with pytest.raises(ToolDefException) as caught:
        tool(eCopied, eCopy)(_move)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is ToolDefException and str(copy) == str(caught.value)
    assert copy.problems == caught.value.problems


def test_event_arguments_that_are_not_events_are_tool_def_exceptions() -> None:
    with pytest.raises(ToolDefException, match="@tool use_event must be an Event subclass"):
        tool(eCopied, int)


# -- building the use event ---------------------------------------------------------------------


def test_a_sopy_style_use_event_is_built_from_the_tool_input_with_the_agent_as_sender() -> None:
    built = use_event(events_of(s.cp), "cp", {"source": "/a", "dest": "/b"}, sender="w", tool_use_id="t1")
    assert isinstance(built, s.eCopyRequest)
    assert (built.payload, built.toolUseId, built.sender, built.target) == (("/a", "/b"), "t1", "w", None)


def test_input_a_sopy_style_constructor_does_not_take_raises_where_the_event_is_built() -> None:
    with pytest.raises(TypeError, match="dest"):
        use_event(events_of(s.cp), "cp", {"source": "/a"}, sender="w", tool_use_id="t1")
    with pytest.raises(InputError, match="payload"):
        use_event(events_of(s.cp), "cp", {"source": "/a", "dest": 3}, sender="w", tool_use_id="t1")


def test_a_call_whose_use_event_cannot_be_built_is_refused_logged_and_never_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = _source(tmp_path)
    owner = LocalOwner(s.backup_sop(source, tmp_path / "backup"))
    steps = [{"tool": "cp", "input": {"source": "{prompt}/a.txt"}}, "saw: {result}"]

    with caplog.at_level(logging.WARNING, logger="sopy_actors.agents.guard"):
        text, call = _run(owner, [s.read_dir, s.cp], steps, str(source))

    refusal = (
        "Tool call cp does not fit eCopyRequest: TypeError: eCopyRequest.__init__() missing 1 required "
        "positional argument: 'dest'. Call cp with the arguments its schema lists."
    )
    assert text == f"saw: {refusal}"
    assert [(r["status"], r["message"]) for r in call.records.values()] == [("error", refusal)]
    assert calls(source) == [] and owner.events == []
    assert "the use event cannot be built from the input" in caplog.text


# -- the refusal text ---------------------------------------------------------------------------


def test_the_refusal_text_is_sopys_spelling_included() -> None:
    receipt = Receipt(
        outcome=Outcome.REJECTED,
        procedure="ReadDir",
        version=1,
        prompt="Failed to read directory /x. Please check the path and try again.",
        instruction="Read the directory to be migrated",
    )
    assert refusal_text(receipt) == (
        "An error occured in Procedure ReadDir: Failed to read directory /x. Please check the path and try again.. "
        "Prompt for this procedure is Read the directory to be migrated"
    )
    unknown = Receipt(outcome=Outcome.REJECTED, procedure="P", version=1)
    assert refusal_text(unknown, "eX") == (
        "An error occured in Procedure P: eX was rejected by the procedure. Prompt for this procedure is "
    )


def test_a_refused_call_never_runs_and_the_model_sees_the_refusal_then_an_accepted_call_runs(tmp_path: Path) -> None:
    source, backup = _source(tmp_path), tmp_path / "backup"
    owner = LocalOwner(s.backup_sop(source, backup))
    steps = [
        {"tool": "cp", "input": {"source": "{prompt}/a.txt", "dest": str(backup / "a.txt")}},
        {"tool": "read_dir", "input": {"path": "{prompt}"}},
        {"tool": "cp", "input": {"source": "{prompt}/a.txt", "dest": str(tmp_path / "elsewhere.txt")}},
        {"tool": "cp", "input": {"source": "{prompt}/a.txt", "dest": str(backup / "a.txt")}},
        "done: {result}",
    ]

    text, call = _run(owner, [s.read_dir, s.cp], steps, str(source))

    early = (
        f"An error occured in Procedure ReadDir: Read {source} before copying {source}/a.txt.. "
        "Prompt for this procedure is Read the directory to be backed up"
    )
    astray = (
        f"An error occured in Procedure BackUpCopy: Destination {tmp_path}/elsewhere.txt is not in the backup "
        f"directory {backup}.. Prompt for this procedure is Copy every file into the backup directory"
    )
    records = [(r["name"], r["status"], r["message"]) for r in call.records.values()]
    assert [(name, status) for name, status, _ in records] == [
        ("cp", "rejected"), ("read_dir", "ok"), ("cp", "rejected"), ("cp", "ok")
    ]
    assert (records[0][2], records[2][2]) == (early, astray)
    assert calls(source) == ["read_dir", "cp"]  # the refused copies never ran
    assert not (tmp_path / "elsewhere.txt").exists() and (backup / "a.txt").read_text() == "alpha"
    assert json.loads(text.removeprefix("done: ")) == [f"{source}/a.txt", f"{backup}/a.txt"]
    assert owner.run.done and owner.run.state.copied == [f"{source}/a.txt"]
    copy_requests = [e for e in owner.events if isinstance(e, s.eCopyRequest)]
    assert {(e.sender, e.target) for e in copy_requests} == {("sopy-agent", None)}
    copied = next(e for e in owner.events if isinstance(e, s.eFileCopied))
    assert (copied.sender, copied.target, copied.toolUseId) == ("sopy-agent", "sopy-agent", copy_requests[-1].toolUseId)


# -- tool methods of an object ------------------------------------------------------------------


def test_a_tool_method_keeps_its_events_and_self_stays_out_of_its_schema(tmp_path: Path) -> None:
    db = s.DatabaseConnection(str(tmp_path))
    for method in (db.connect, db.query, s.DatabaseConnection.query):
        properties = method.tool_spec["inputSchema"]["json"]["properties"]
        assert "self" not in properties
    assert list(db.query.tool_spec["inputSchema"]["json"]["properties"]) == ["sql"]
    assert (events_of(db.connect).result, events_of(db.connect).use) == (s.ConnectionResult, ToolUseRequested)
    assert (events_of(db.query).result, events_of(db.query).use) == (s.QueryResult, s.QueryRequested)


def test_tool_methods_run_on_their_object_in_a_guarded_strands_agent(tmp_path: Path) -> None:
    db = s.DatabaseConnection(str(tmp_path))
    owner = LocalOwner(s.query_sop())
    steps = [
        {"tool": "query", "input": {"sql": "SELECT 1"}},
        {"tool": "connect", "input": {"connection_string": "db://reports"}},
        {"tool": "query", "input": {"sql": "DROP TABLE t"}},
        {"tool": "query", "input": {"sql": "SELECT 1"}},
        "rows: {result}",
    ]

    text, call = _run(owner, [db.connect, db.query], steps, "report")

    assert [r["status"] for r in call.records.values()] == ["rejected", "ok", "rejected", "ok"]
    assert next(iter(call.records.values()))["message"] == (
        "An error occured in Procedure Connecting: Connect before running SELECT 1.. "
        "Prompt for this procedure is Connect to the database"
    )
    assert calls(tmp_path) == ["connect", "query"]
    assert (db.connection, db.queries) == ("db://reports", 1)  # in process: the caller's own object
    assert text == 'rows: ["db://reports #1: SELECT 1"]'
    assert owner.run.done and owner.run.state.rows == ["db://reports #1: SELECT 1"]


def test_an_agent_spec_stores_tool_methods_as_data_and_holds_their_object_beside_it(tmp_path: Path) -> None:
    db = s.DatabaseConnection(str(tmp_path))
    spec = AgentSpec(name="db", tools=[s.read_dir, db.connect, db.query])
    reference, connect, query = spec.tools
    assert reference == "tests.support.sopy_tools:read_dir"
    assert isinstance(connect, BoundTool) and isinstance(query, BoundTool)
    assert (connect.owner, connect.method, query.method) == ("tests.support.sopy_tools:DatabaseConnection", "connect", "query")
    assert connect.digest == query.digest  # one object: the actor binds both methods to one copy
    assert spec.tool_objects() == {connect.digest: db}
    assert pickle.loads(pickle.dumps(spec)).tool_objects()[connect.digest].directory == str(tmp_path)

    restored = AgentSpec.model_validate(spec.model_dump(mode="json"))
    assert restored == spec and restored.actor_name() == spec.actor_name()  # equal data: the same agent
    with pytest.raises(InputError, match="rebuilt from JSON") as caught:
        restored.tool_objects()
    assert caught.value.fields == ("tools",)


def test_agents_of_objects_that_differ_run_on_different_actors() -> None:
    first, second = s.DatabaseConnection("/one"), s.DatabaseConnection("/two")
    same = s.DatabaseConnection("/one")
    assert AgentSpec(name="db", tools=[first.connect]).actor_name() != AgentSpec(name="db", tools=[second.connect]).actor_name()
    assert AgentSpec(name="db", tools=[first.connect]).actor_name() == AgentSpec(name="db", tools=[same.connect]).actor_name()


def test_a_tool_method_of_an_object_that_cannot_be_pickled_is_refused_naming_the_tool(tmp_path: Path) -> None:
    db = s.DatabaseConnection(str(tmp_path))
    with (tmp_path / "open.txt").open("w") as handle:
        db.connection = handle  # type: ignore[assignment]
        with pytest.raises(InputError, match=r"tools\[0\]: DatabaseConnection.connect .* cannot be pickled") as caught:
            StrandsAgent(tools=[db.connect], name="db")
    assert caught.value.fields == ("tools",)


def test_a_tool_method_listed_twice_is_refused(tmp_path: Path) -> None:
    db = s.DatabaseConnection(str(tmp_path))
    with pytest.raises(InputError, match="lists a tool twice"):
        AgentSpec(name="db", tools=[db.connect, db.connect])


# -- SOPy's generic tool events -----------------------------------------------------------------


def test_sopys_generic_tool_events_are_ours_and_their_payloads_read_as_strands_dicts() -> None:
    assert eToolUse is ToolUseRequested and eToolResult is ToolResultReady
    use = use_event(ToolEvents(), "calls", {"directory": "/d"}, sender="w", tool_use_id="t1")
    assert isinstance(use, eToolUse) and use.sender == "w"
    assert isinstance(use.payload, ToolUse)
    assert (use.payload["name"], use.payload["input"], use.payload["toolUseId"]) == ("calls", {"directory": "/d"}, "t1")
    result = result_event(ToolEvents(), "calls", "[]", sender="w", tool_use_id="t1", call_id="c1")
    assert isinstance(result, eToolResult) and (result.sender, result.target) == ("w", "w")
    assert isinstance(result.payload, ToolOutput)
    assert result.payload["status"] == "success" and result.payload["content"] == [{"text": "[]"}]
    assert result.payload["toolUseId"] == "t1"
