"""`@tool`: a strands tool whose calls and results are events of the SOP the agent works for.

    @tool(FileMigrated, MigrateRequested)
    def migrate(path: str, to_dir: str) -> FileCopy:
        '''Move one file to the destination directory.'''

The decorator returns the real strands tool (`strands.tool(function)`), marked with its event
classes; nothing is wrapped. The guard (`sopy_actors.agents.guard`, strands hooks inside the
agent actor) builds the events:

- before the tool runs: the use event, payload = the tool's input (the input dict validated
  against the payload type; a single argument is the payload itself when the payload type is
  not a model or dict). Default: `ToolUseRequested(ToolUse(tool, input))`.
- after it ran: the result event, payload = the tool's result (JSON results are decoded, then
  validated). Default: `ToolResultReady(ToolOutput(tool, text))`.
- when it ended without a result (it failed, or the agent's process stopped while it ran):
  `ToolFailed(ToolFailure(tool, status, error))`, for every tool.

The result event and the failure share one id per tool call (`outcome_id`), so an SOP applies
one of them once, even when a re-run call reports as interrupted a tool whose result got out.

Plain strands tools in an agent's tool list are guarded with the default events.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, get_origin

from pydantic import BaseModel

from sopy_actors.agents.events import (
    ToolFailed,
    ToolFailure,
    ToolOutput,
    ToolResultReady,
    ToolUse,
    ToolUseRequested,
)
from sopy_actors.core.events import Event
from sopy_actors.errors import DefinitionError

__all__ = ["ToolEvents", "events_of", "failure_event", "outcome_id", "result_event", "tool", "use_event"]

_MARK = "sop_tool_events"

EventClass = type[Event[Any]]


class ToolEvents:
    """The event classes of one tool: `use` before it runs, `result` after."""

    __slots__ = ("result", "use")

    def __init__(self, result: EventClass | None = None, use: EventClass | None = None) -> None:
        self.result = result or ToolResultReady
        self.use = use or ToolUseRequested


def _is_event_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, Event)


def tool(
    result_event: EventClass | Callable[..., Any] | None = None,
    use_event: EventClass | None = None,
    **strands_options: Any,
) -> Any:
    """Declare a guarded tool: `@tool`, `@tool(ResultEvent)` or `@tool(ResultEvent, UseEvent)`.

    Args:
        result_event: the event its result becomes (default `ToolResultReady`).
        use_event: the event its call becomes before it runs (default `ToolUseRequested`).
        **strands_options: passed to `strands.tool` (`name`, `description`, `context`, ...).

    Returns:
        The strands tool (a `DecoratedFunctionTool`), or a decorator making one.

    Raises:
        DefinitionError: an event argument is not an Event subclass.
    """
    import strands

    if callable(result_event) and not isinstance(result_event, type):  # bare @tool
        return _mark(strands.tool(result_event), ToolEvents())
    problems = [
        f"{label} must be an Event subclass, got {value!r}"
        for label, value in (("result_event", result_event), ("use_event", use_event))
        if value is not None and not _is_event_class(value)
    ]
    if problems:
        raise DefinitionError("@tool", problems)
    events = ToolEvents(result_event, use_event)

    def decorate(function: Callable[..., Any]) -> Any:
        return _mark(strands.tool(function, **strands_options), events)

    return decorate


def _mark(strands_tool: Any, events: ToolEvents) -> Any:
    setattr(strands_tool, _MARK, events)
    return strands_tool


def events_of(strands_tool: Any) -> ToolEvents:
    """The event classes of a tool (the defaults for a tool not declared with `@tool` here)."""
    events = getattr(strands_tool, _MARK, None)
    return events if isinstance(events, ToolEvents) else ToolEvents()


def _payload_type(event_class: EventClass) -> Any:
    return event_class.model_fields["payload"].annotation


def _is_structured(annotation: Any) -> bool:
    origin = get_origin(annotation) or annotation
    return (isinstance(origin, type) and issubclass(origin, BaseModel | dict)) or annotation is Any


def use_event(
    events: ToolEvents, name: str, tool_input: dict[str, Any], *, sender: str, tool_use_id: str
) -> Event[Any]:
    """The use event of one tool call.

    Raises:
        InputError: the input does not fit the event's payload type (names the field).
    """
    if events.use is ToolUseRequested:
        payload: Any = ToolUse(tool=name, input=tool_input)
    elif len(tool_input) == 1 and not _is_structured(_payload_type(events.use)):
        payload = next(iter(tool_input.values()))
    else:
        payload = tool_input
    return events.use(payload=payload, sender=sender, toolUseId=tool_use_id)


def outcome_id(call_id: str, tool_use_id: str) -> str:
    """The id of the event that tells the SOP how one tool call of an agent call ended."""
    return f"tool-outcome-{call_id}-{tool_use_id}"


def result_event(
    events: ToolEvents, name: str, text: str, *, sender: str, tool_use_id: str, call_id: str
) -> Event[Any]:
    """The result event of one tool run, from the result text the model would see.

    Raises:
        InputError: the result does not fit the event's payload type (names the field).
    """
    if events.result is ToolResultReady:
        payload: Any = ToolOutput(tool=name, text=text)
    elif _payload_type(events.result) is str:
        payload = text
    else:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            payload = text
    return events.result(payload=payload, sender=sender, toolUseId=tool_use_id, id=outcome_id(call_id, tool_use_id))


def failure_event(failure: ToolFailure, *, sender: str, tool_use_id: str, call_id: str) -> ToolFailed:
    """The event telling the SOP that a tool call it accepted ended without a result."""
    return ToolFailed(payload=failure, sender=sender, toolUseId=tool_use_id, id=outcome_id(call_id, tool_use_id))
