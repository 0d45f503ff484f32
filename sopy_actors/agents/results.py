"""What an agent call returns: `AgentResult`, its `Usage` and `ToolCall` records.

Plain frozen pydantic models: they cross actor boundaries as `model_dump(mode="json")` data,
fit in SOP state and event payloads, and need neither Ray nor strands.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sopy_actors.errors import error_from_wire

__all__ = ["AgentResult", "ToolCall", "Usage"]


class Usage(BaseModel):
    """Tokens one agent call used (summed over its model calls)."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class ToolCall(BaseModel):
    """One tool call the model made during an agent call.

    Attributes:
        name: the tool's name.
        input: the arguments the model gave.
        tool_use_id: the model's id for the call.
        status: "ok" (ran, result accepted), "error" (the tool failed, its result did not fit
            the result event, or its circuit breaker was open, so it did not run), "rejected"
            (the SOP refused the call or its result) or
            "interrupted" (the agent's process stopped before the tool returned, so it has no
            result and may or may not have taken effect; the call was then run again).
        message: what the model was shown as the tool's result (the recovery prompt when
            rejected).
        error: when the tool failed or its circuit was open: the error in the wire format of
            `sopy_actors.errors` (an `AgentError` whose `retryable` is the tool exception's,
            or the `CircuitOpen` that kept it from running).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    input: dict[str, Any] = Field(default_factory=dict)
    tool_use_id: str = ""
    status: Literal["ok", "error", "rejected", "interrupted"] = "ok"
    message: str = ""
    error: dict[str, Any] | None = None


class AgentResult(BaseModel):
    """The outcome of one agent call; `str(result)` is its final text.

    Attributes:
        text: the model's final answer.
        stop_reason: why the model stopped ("end_turn", "max_tokens", "cancelled", ...).
        usage: tokens used by this call.
        tool_calls: every tool call, in order.
        latency_seconds: wall time of the call inside the agent actor.
        agent: the agent's name.
        call_id: this call's id.
        conversation: the conversation (strands session) the call belongs to.
        attempts: how many times the call ran: 1, or more when the agent's process died during
            the call and a restarted actor ran it again, continuing its conversation (then
            `tool_calls` also lists what earlier attempts did; `usage` and `latency_seconds`
            count the last attempt only).
    """

    model_config = ConfigDict(frozen=True)

    text: str
    stop_reason: str
    usage: Usage = Field(default_factory=Usage)
    tool_calls: tuple[ToolCall, ...] = ()
    latency_seconds: float = 0.0
    agent: str = ""
    call_id: str = ""
    conversation: str = ""
    attempts: int = 1

    @property
    def rerun(self) -> bool:
        """True when the call ran more than once (its agent's process died during it)."""
        return self.attempts > 1

    @property
    def rejected_tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls (or results) the SOP refused."""
        return tuple(call for call in self.tool_calls if call.status == "rejected")

    def raise_for_tool_errors(self) -> None:
        """Raise the error of the first tool call that failed, if any: an `AgentError` (its
        `retryable` says whether calling again may help) or `CircuitOpen`. The model may have
        answered around a failed tool; code that needs every tool to have worked calls this,
        and a recovery policy then answers the error."""
        for call in self.tool_calls:
            if call.status == "error" and call.error is not None:
                raise error_from_wire(call.error)

    def __str__(self) -> str:
        return self.text
