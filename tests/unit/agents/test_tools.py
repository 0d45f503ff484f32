"""@tool: a real strands tool marked with its events; events built from tool input and output."""

from __future__ import annotations

import pytest
from strands.tools.decorator import DecoratedFunctionTool

from sopy_actors import Event, StrandsAgent, tool
from sopy_actors.agents import ToolFailed, ToolFailure, ToolResultReady, ToolUseRequested
from sopy_actors.agents.tools import events_of, failure_event, result_event, use_event
from sopy_actors.core.context import handling
from sopy_actors.errors import AgentError, DefinitionError, InputError, error_to_wire
from sopy_actors.runtime.handle import SOPHandle
from tests.support import agentflow as a


def test_the_decorator_returns_a_strands_tool_marked_with_its_events() -> None:
    assert isinstance(a.write_draft, DecoratedFunctionTool)
    assert a.write_draft.tool_name == "write_draft"
    events = events_of(a.write_draft)
    assert (events.use, events.result) == (a.DraftRequested, a.DraftWritten)
    assert (events_of(a.shout).use, events_of(a.shout).result) == (ToolUseRequested, ToolResultReady)


def test_use_events_carry_the_tool_input_as_payload_and_the_agent_as_sender() -> None:
    draft = use_event(events_of(a.write_draft), "write_draft", {"path": "p", "text": "t"}, sender="w", tool_use_id="t1")
    assert draft == a.DraftRequested(payload=a.DraftRequest(path="p", text="t"), sender="w", toolUseId="t1", id=draft.id)
    single = use_event(events_of(a.publish), "publish", {"path": "p"}, sender="w", tool_use_id="t2")
    assert isinstance(single, a.PublishRequested) and single.payload == "p"
    generic = use_event(events_of(a.shout), "shout", {"text": "x"}, sender="w", tool_use_id="t3")
    assert isinstance(generic, ToolUseRequested)
    assert (generic.payload.tool, generic.payload.input) == ("shout", {"text": "x"})


def test_result_events_validate_the_tool_output() -> None:
    events = events_of(a.write_draft)
    written = result_event(events, "write_draft", '{"path": "p", "size": 3}', sender="w", tool_use_id="t", call_id="c")
    assert written.payload == a.FileNote(path="p", size=3)
    with pytest.raises(InputError, match=r"payload.size"):
        result_event(events, "write_draft", '{"path": "p", "size": "big"}', sender="w", tool_use_id="t", call_id="c")
    with pytest.raises(InputError, match=r"payload.text"):
        use_event(events_of(a.write_draft), "write_draft", {"path": "p"}, sender="w", tool_use_id="t")


def test_a_tool_calls_result_and_its_failure_share_one_id_so_the_sop_applies_only_one() -> None:
    result = result_event(events_of(a.shout), "shout", "HI", sender="w", tool_use_id="t1", call_id="c1")
    error = AgentError("agent=<w>, call=<c1>, tool=<shout> | Interrupted: ...", agent="w", retryable=True)
    failure = failure_event(
        ToolFailure(tool="shout", status="interrupted", error=error_to_wire(error)), sender="w", tool_use_id="t1", call_id="c1"
    )
    assert isinstance(failure, ToolFailed) and failure.sop_optional
    other_call = result_event(events_of(a.shout), "shout", "HI", sender="w", tool_use_id="t1", call_id="c2")
    assert failure.id == result.id != other_call.id
    assert (failure.toolUseId, failure.sender, failure.payload.message) == ("t1", "w", str(error))
    rebuilt = failure.payload.exception()
    assert isinstance(rebuilt, AgentError) and rebuilt.retryable and rebuilt.agent == "w"


def test_non_event_arguments_are_definition_errors() -> None:
    with pytest.raises(DefinitionError, match="result_event must be an Event subclass"):
        tool(str)  # type: ignore[arg-type]

    class Done(Event[str]):
        pass

    with pytest.raises(DefinitionError, match="use_event must be an Event subclass"):
        tool(Done, int)  # type: ignore[arg-type]


def test_a_blocking_call_inside_a_handler_may_not_guard_with_that_same_sop() -> None:
    agent = StrandsAgent(tools=[a.shout], name="shouter")
    with handling("busy-sop"), pytest.raises(InputError, match="deadlock") as caught:
        agent("hi", sop=SOPHandle("busy-sop", host="sopy-host-0", namespace="ns"))
    assert caught.value.fields == ("sop",)
