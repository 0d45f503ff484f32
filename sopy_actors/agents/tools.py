"""`@tool`: a strands tool whose calls and results are events of the SOP the agent works for.

    @tool(FileMigrated, MigrateRequested)
    def migrate(path: str, to_dir: str) -> FileCopy:
        '''Move one file to the destination directory.'''

The decorator returns the real strands tool (`strands.tool(function)`), its function marked
with its event classes; nothing is wrapped. The mark is on the function, so a tool method
declared in a class (`db.connect`, SOPy tutorial 7) keeps its events once bound; strands leaves
`self` out of its schema. The guard (`sopy_actors.agents.guard`, strands hooks inside the agent
actor) builds the events:

- before the tool runs: the use event. A use event class with a constructor of its own is
  built as SOPy builds it, `UseEvent(toolUseId=<id>, **tool_input)`:

      class eCopyRequest(Event[tuple[str, str]]):
          def __init__(self, toolUseId: str, source: str, dest: str) -> None:
              super().__init__(toolUseId=toolUseId, payload=(source, dest))

  and `@tool` checks when the tool is declared that this constructor takes `toolUseId` and
  every tool parameter (`ToolDefException` otherwise, with SOPy's messages). Otherwise the
  payload is the tool's input (the input dict validated against the payload type; a single
  argument is the payload itself when the payload type is not a model or dict). Default:
  `ToolUseRequested(ToolUse(tool, input))`. The agent's name is the event's `sender` unless
  the constructor set one.
- after it ran: the result event, payload = the tool's result (JSON results are decoded, then
  validated). Default: `ToolResultReady(ToolOutput(tool, text))`.
- when it ended without a result (it failed, or the agent's process stopped while it ran):
  `ToolFailed(ToolFailure(tool, status, error))`, for every tool.

The result event and the failure share one id per tool call (`outcome_id`), so an SOP applies
one of them once, even when a re-run call reports as interrupted a tool whose result got out.

Plain strands tools in an agent's tool list are guarded with the default events.
"""

from __future__ import annotations

import inspect
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

__all__ = [
    "ToolDefException",
    "ToolEvents",
    "events_of",
    "failure_event",
    "outcome_id",
    "result_event",
    "tool",
    "use_event",
]

_MARK = "sop_tool_events"

EventClass = type[Event[Any]]


class ToolDefException(DefinitionError):
    """A `@tool` declaration is invalid (SOPy's name, `sopy.interface.strands.ToolDefException`).

    Raised when the tool is declared. With one problem the message is the problem itself, as
    SOPy words it (e.g. "Tool use event eCopyRequest must accept a 'toolUseId' parameter.");
    with several, every one is listed.
    """

    def __init__(self, subject: str, problems: list[str]) -> None:
        super().__init__(subject, problems)
        if len(self.problems) == 1:
            self.args = (self.problems[0],)


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
        ToolDefException: an event argument is not an Event subclass, or the use event has a
            constructor of its own that does not take `toolUseId` and every tool parameter.
    """
    import strands

    if callable(result_event) and not isinstance(result_event, type):  # bare @tool
        return strands.tool(result_event)
    problems = [
        f"@tool {label} must be an Event subclass, got {value!r}"
        for label, value in (("result_event", result_event), ("use_event", use_event))
        if value is not None and not _is_event_class(value)
    ]
    if problems:
        raise ToolDefException("@tool", problems)
    events = ToolEvents(result_event, use_event)

    def decorate(function: Callable[..., Any]) -> Any:
        # On the function, so the tool strands makes when a method is bound copies it too.
        setattr(function, _MARK, events)
        strands_tool = strands.tool(function, **strands_options)
        if _builds_from_arguments(events.use):
            problems = _constructor_problems(events.use, function.__name__, _parameters(strands_tool))
            if problems:
                raise ToolDefException(f"tool {function.__name__}", problems)
        return strands_tool

    return decorate


def _builds_from_arguments(event_class: EventClass) -> bool:
    """True when the event class has a constructor of its own (built SOPy's way from the input)."""
    owner = next(cls for cls in event_class.__mro__ if "__init__" in cls.__dict__)
    return owner is not Event and issubclass(owner, Event)


def _parameters(strands_tool: Any) -> list[str]:
    """The parameters the model passes to a tool: its input schema's properties."""
    schema = strands_tool.tool_spec["inputSchema"]
    return list(schema.get("json", schema).get("properties", {}))


def _constructor_problems(use: EventClass, function: str, parameters: list[str]) -> list[str]:
    """SOPy's definition-time checks of a use event's constructor, in SOPy's words."""
    accepted = inspect.signature(use.__init__).parameters.values()
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in accepted):
        return []
    names = {
        parameter.name
        for parameter in accepted
        if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    problems = []
    if "toolUseId" not in names:
        problems.append(f"Tool use event {use.__name__} must accept a 'toolUseId' parameter.")
    missing = [name for name in parameters if name not in names]
    if missing:
        problems.append(
            f"Tool use event {use.__name__} must accept all parameters of the tool function {function}: "
            f"{', '.join(missing)}."
        )
    return problems


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
    """The use event of one tool call (see the module docstring for how it is built).

    Raises:
        InputError: the input does not fit the event's payload type (names the field).
        Exception: whatever the use event's own constructor raises (TypeError for input it
            does not take).
    """
    if _builds_from_arguments(events.use):
        built = events.use(toolUseId=tool_use_id, **tool_input)
        return built if built.sender is not None else built.model_copy(update={"sender": sender})
    if events.use is ToolUseRequested:
        payload: Any = ToolUse(tool=name, input=tool_input, toolUseId=tool_use_id)
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

    The agent's name is its `sender` and, as in SOPy, its `target`.

    Raises:
        InputError: the result does not fit the event's payload type (names the field).
    """
    if events.result is ToolResultReady:
        payload: Any = ToolOutput(tool=name, text=text, toolUseId=tool_use_id)
    elif _payload_type(events.result) is str:
        payload = text
    else:
        try:
            payload = json.loads(text)
        except json.JSONDecodeError:
            payload = text
    return events.result(
        payload=payload, sender=sender, target=sender, toolUseId=tool_use_id, id=outcome_id(call_id, tool_use_id)
    )


def failure_event(failure: ToolFailure, *, sender: str, tool_use_id: str, call_id: str) -> ToolFailed:
    """The event telling the SOP that a tool call it accepted ended without a result (sent as a result event is)."""
    return ToolFailed(
        payload=failure, sender=sender, target=sender, toolUseId=tool_use_id, id=outcome_id(call_id, tool_use_id)
    )
