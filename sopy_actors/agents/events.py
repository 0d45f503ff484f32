"""Events agents send to SOPs: generic tool events, tool failures and call completions.

`ToolUseRequested` / `ToolResultReady` are what a guarded tool sends when its `@tool` names no
event of its own; `ToolFailed` is what any guarded tool sends instead of its result event when
it ends without a result; `AgentCompleted` is what `agent.submit(..., deliver_to=handle)`
delivers. All four are optional (`sop_optional`): a procedure without a handler for them ignores
them, so an SOP only has to handle what it cares about. Pure pydantic; importable without Ray or
strands.

SOPy's generic tool events are the same classes under SOPy's names: `eToolUse` is
`ToolUseRequested` and `eToolResult` is `ToolResultReady`, so a handler declared for either name
receives the events sent under the other (handlers match the exact class). Their payloads also
read as the strands dicts SOPy's carry: `event.payload["name"]`, `["input"]`, `["toolUseId"]`
for a use, `["status"]`, `["content"]`, `["toolUseId"]` for a result. Use events carry the
agent's name as `sender`, result events as `sender` and `target` (SOPy sets `target`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sopy_actors.agents.results import AgentResult
from sopy_actors.core.events import Event
from sopy_actors.errors import InputError, SopyError, error_from_wire

__all__ = [
    "AgentCompleted",
    "AgentCompletion",
    "ToolFailed",
    "ToolFailure",
    "ToolOutput",
    "ToolResultReady",
    "ToolUse",
    "ToolUseRequested",
    "eToolResult",
    "eToolUse",
]


class ToolUse(BaseModel):
    """A tool call the model wants to make.

    Also reads as strands' ToolUse dict, as SOPy's `eToolUse` payload does: `use["name"]`,
    `use["input"]`, `use["toolUseId"]`.

    Attributes:
        tool: the tool's name.
        input: the arguments the model gave.
        toolUseId: the model's id for the call.
    """

    model_config = ConfigDict(frozen=True)

    tool: str
    input: dict[str, Any] = Field(default_factory=dict)
    toolUseId: str | None = None

    def __getitem__(self, key: str) -> Any:
        return {"name": self.tool, "input": self.input, "toolUseId": self.toolUseId}[key]


class ToolOutput(BaseModel):
    """What a tool returned, as the model sees it (text; JSON for structured results).

    Also reads as strands' ToolResult dict, as SOPy's `eToolResult` payload does:
    `output["status"]` ("success"), `output["content"]` (`[{"text": text}]`),
    `output["toolUseId"]`.

    Attributes:
        tool: the tool's name.
        text: the result's text.
        toolUseId: the model's id for the call.
    """

    model_config = ConfigDict(frozen=True)

    tool: str
    text: str
    toolUseId: str | None = None

    def __getitem__(self, key: str) -> Any:
        return {"toolUseId": self.toolUseId, "status": "success", "content": [{"text": self.text}]}[key]


class ToolUseRequested(Event[ToolUse]):
    """An agent asks to run a tool; a rejection keeps the tool from running."""

    sop_optional = True


class ToolResultReady(Event[ToolOutput]):
    """A tool ran; a rejection shows the model the recovery prompt instead of the result."""

    sop_optional = True


eToolUse = ToolUseRequested
"""SOPy's name for the generic use event (`sopy.interface.strands.eToolUse`)."""

eToolResult = ToolResultReady
"""SOPy's name for the generic result event (`sopy.interface.strands.eToolResult`)."""


class ToolFailure(BaseModel):
    """How a tool call that the SOP accepted ended without a result.

    Attributes:
        tool: the tool's name.
        status: "error" (the tool failed, or its result did not fit the result event) or
            "interrupted" (the agent's process stopped while the tool ran, so it may or may not
            have taken effect; the agent call is run again and goes on from there).
        error: what happened, in the wire format of `sopy_actors.errors`: an AgentError, or
            the CircuitOpen that kept the tool from running (its circuit breaker was open).
    """

    model_config = ConfigDict(frozen=True)

    tool: str
    status: Literal["error", "interrupted"]
    error: dict[str, Any]

    @property
    def message(self) -> str:
        """What happened, in words."""
        return str(self.error.get("message", ""))

    def exception(self) -> SopyError:
        """The failure as an exception (an AgentError or CircuitOpen; `retryable` says whether to call again)."""
        return error_from_wire(self.error)


class ToolFailed(Event[ToolFailure]):
    """A tool call the SOP accepted ended without a result; sent instead of its result event.

    Its `toolUseId` is the use event's. A use event whose answer the agent never received (its
    process stopped meanwhile) is followed by a ToolFailed too, as if it had been accepted.
    """

    sop_optional = True


class AgentCompletion(BaseModel):
    """How a submitted agent call ended: its result, or an error.

    Attributes:
        agent: the agent's name.
        call_id: the call's id (`AgentFuture.call_id`).
        result: the result when the call succeeded.
        error: otherwise the error, in the wire format of `sopy_actors.errors`.
    """

    model_config = ConfigDict(frozen=True)

    agent: str
    call_id: str
    result: AgentResult | None = None
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True when the call produced a result."""
        return self.result is not None

    @property
    def message(self) -> str | None:
        """What went wrong, in words (None when the call succeeded)."""
        return None if self.error is None else str(self.error.get("message", ""))

    @property
    def retryable(self) -> bool:
        """Whether calling again may succeed."""
        return self.error is not None and self.exception().retryable

    def exception(self) -> SopyError:
        """The call's error as the exception `result()` raises (an AgentError).

        Raises:
            InputError: the call succeeded; there is no error.
        """
        if self.error is None:
            raise InputError(f"agent=<{self.agent}>, call=<{self.call_id}> | the call succeeded")
        return error_from_wire(self.error)


class AgentCompleted(Event[AgentCompletion]):
    """A submitted agent call finished (delivered to the SOP named by `deliver_to`)."""

    sop_optional = True
    sop_from_runtime = True
