"""The guard: strands hooks that hold each tool call to the SOP an agent call works for.

Runs inside the AgentActor, on its event loop. One `SOPGuard` serves every conversation of the
actor; what belongs to one call (the owning SOP, the tool-call records) travels in that call's
`invocation_state` as a `CallContext`, so concurrent calls for different SOPs never cross.

For each tool call of a call that has an owner:
1. `BeforeToolCallEvent`: the tool's use event goes to the owner (sender = agent name) and is
   awaited. Rejected (or unfit input, or the SOP cannot take events): `cancel_tool` = the
   recovery prompt, so the tool does not run and the model gets the prompt as an error result.
2. `AfterToolCallEvent` (the tool ran and succeeded): its result event goes to the owner.
   Rejected (or unfit result): the model sees the recovery prompt as an error result instead.
A tool that failed sends no result event; the model sees strands' error text. Calls without an
owner run unguarded but are still recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from strands.hooks import (
    AfterToolCallEvent,
    BeforeToolCallEvent,
    HookProvider,
    HookRegistry,
)

from sopy_actors.agents.results import ToolCall
from sopy_actors.agents.tools import ToolEvents, result_event, use_event
from sopy_actors.errors import InputError

__all__ = ["CONTEXT_KEY", "CallContext", "SOPGuard"]

logger = logging.getLogger(__name__)

CONTEXT_KEY = "sopy_call"


@dataclass
class CallContext:
    """What the guard knows about one agent call (mutable; lives for the call only).

    Attributes:
        owner: the SOPHandle the tool events go to, or None (unguarded).
        call_id: the call's id.
        records: tool-call records by tool use id, in call order.
    """

    owner: Any
    call_id: str
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def tool_calls(self) -> list[ToolCall]:
        """The calls' records as ToolCall models, in order."""
        return [ToolCall.model_validate(record) for record in self.records.values()]


def _text(result: dict[str, Any]) -> str:
    return "\n".join(block["text"] for block in result.get("content", []) if "text" in block)


def _error(event: AfterToolCallEvent, message: str) -> None:
    event.result = {**event.result, "status": "error", "content": [{"text": message}]}


class SOPGuard(HookProvider):
    """Tool call -> use event, tool result -> result event, rejections -> error tool results.

    Args:
        agent: the agent's name (the events' `sender`).
        events: event classes by tool name.
    """

    def __init__(self, agent: str, events: dict[str, ToolEvents]) -> None:
        self.agent = agent
        self.events = events

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        """Install the two callbacks (strands calls this once per Agent)."""
        registry.add_callback(BeforeToolCallEvent, self.before_tool)
        registry.add_callback(AfterToolCallEvent, self.after_tool)

    async def before_tool(self, event: BeforeToolCallEvent) -> None:
        """Ask the owning SOP whether this tool call may run."""
        call: CallContext | None = event.invocation_state.get(CONTEXT_KEY)
        if call is None:
            return
        name, tool_use_id = event.tool_use["name"], event.tool_use["toolUseId"]
        tool_input = dict(event.tool_use.get("input") or {})
        record = {"name": name, "input": tool_input, "tool_use_id": tool_use_id, "status": "ok"}
        call.records[tool_use_id] = record
        if call.owner is None:
            return
        events = self.events.get(name, ToolEvents())
        try:
            message = use_event(events, name, tool_input, sender=self.agent, tool_use_id=tool_use_id)
        except InputError as error:
            self._refuse(event, record, "error", f"Tool call {name} does not fit {events.use.__name__}: {error}")
            return
        prompt = await self._send(call, message)
        if prompt is not None:
            self._refuse(event, record, "rejected", prompt)

    async def after_tool(self, event: AfterToolCallEvent) -> None:
        """Send a successful tool result to the owning SOP; show a rejection to the model."""
        call: CallContext | None = event.invocation_state.get(CONTEXT_KEY)
        tool_use_id = event.tool_use["toolUseId"]
        record = call.records.get(tool_use_id) if call is not None else None
        if call is None or record is None or event.cancel_message is not None:
            return
        text = _text(dict(event.result))
        record["message"] = text
        if event.result.get("status") != "success" or event.exception is not None:
            record["status"] = "error"
            return
        if call.owner is None:
            return
        name = record["name"]
        events = self.events.get(name, ToolEvents())
        try:
            message = result_event(events, name, text, sender=self.agent, tool_use_id=tool_use_id)
        except InputError as error:
            record.update(status="error", message=f"The result of {name} does not fit {events.result.__name__}: {error}")
            _error(event, record["message"])
            return
        prompt = await self._send(call, message)
        if prompt is not None:
            record.update(status="rejected", message=prompt)
            _error(event, prompt)

    async def _send(self, call: CallContext, message: Any) -> str | None:
        """Send one event to the owner; the recovery prompt if it was refused, else None."""
        try:
            receipt = await call.owner.send_async(message)
        except Exception as error:
            logger.warning(
                "agent=<%s>, sop=<%s>, event=<%s> | the SOP could not take the event: %s",
                self.agent, call.owner.sop_id, type(message).__name__, error,
            )
            return f"The procedure cannot accept this now ({type(error).__name__}: {error}). Stop and report."
        if receipt.rejected:
            logger.info(
                "agent=<%s>, sop=<%s>, event=<%s> | rejected by the SOP",
                self.agent, call.owner.sop_id, type(message).__name__,
            )
            return receipt.prompt or f"{type(message).__name__} was rejected by the procedure."
        return None

    @staticmethod
    def _refuse(event: BeforeToolCallEvent, record: dict[str, Any], status: str, message: str) -> None:
        record.update(status=status, message=message)
        event.cancel_tool = message
