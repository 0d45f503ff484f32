"""The guard: strands hooks that hold each tool call to the SOP an agent call works for.

Runs inside the AgentActor, on its event loop. One `SOPGuard` serves every conversation of the
actor; what belongs to one call (the owning SOP, the tool-call records) travels in that call's
`invocation_state` as a `CallContext`, so concurrent calls for different SOPs never cross.

For each tool call of a call that has an owner:
1. `BeforeToolCallEvent`: the tool's use event goes to the owner (sender = agent name) and is
   awaited. Rejected, or the SOP cannot take events, or the use event cannot be built from the
   model's input (it does not fit, or the event's constructor raised: logged, never raised):
   `cancel_tool` = the refusal, so the tool does not run and the model gets it as an error result.
   Accepted (or a call without an owner), a tool with a circuit breaker asks it next
   (`sopy_actors.agents.breakers`); open, the tool does not run either: the model gets "Not run:
   <the CircuitOpen message>" as an error result and the owner `ToolFailed` with the CircuitOpen.
2. `AfterToolCallEvent`: the tool succeeded: its result event goes to the owner. Rejected (or
   unfit result): the model sees the refusal as an error result instead. The tool failed (or its
   result did not fit): `ToolFailed` goes to the owner instead. A result event the owner said
   (answering the use event) its procedure cannot refuse is sent without waiting; `confirm`
   waits for it before the call answers.
3. The agent's process stopped while the tool ran: when the call runs again, `interrupted`
   sends `ToolFailed` (status "interrupted") for it and gives the tool result that closes it.
So every use event the SOP accepted is followed by its result event or by `ToolFailed`. A
refusal of a `ToolFailed` is what the model sees as the tool's result. A refusal is worded as
SOPy words it (`refusal_text`): the SOP's recovery prompt, with its procedure and instruction.
Calls without an owner run unguarded (but for breakers) and are still recorded. A tool run that
a breaker let through is reported to it: a success, or a failure (it raised or returned an
error). Every change to a record is saved (`CallContext.on_change`), so a restarted actor knows
which tool calls were running.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from strands.hooks import (
    AfterToolCallEvent,
    BeforeToolCallEvent,
    HookProvider,
    HookRegistry,
)
from strands.types.content import ContentBlock
from strands.types.tools import ToolResultContent, ToolResultStatus, ToolUse

from sopy_actors.agents.circuit_board import tool_target
from sopy_actors.agents.events import ToolFailure
from sopy_actors.agents.results import ToolCall
from sopy_actors.agents.tools import ToolEvents, failure_event, result_event, use_event
from sopy_actors.core.events import Event
from sopy_actors.errors import AgentError, InputError, SopyError, error_from_wire, error_to_wire, is_retryable
from sopy_actors.runtime.messages import Receipt

if TYPE_CHECKING:
    from sopy_actors.agents.breakers import AgentBreakers

__all__ = ["CONTEXT_KEY", "CallContext", "SOPGuard", "refusal_text"]

logger = logging.getLogger(__name__)

CONTEXT_KEY = "sopy_call"


_RUNNING = "running"  # a record's status from before the use event is sent until the tool returns
_INTERRUPTED = (
    "Interrupted: the agent's process stopped while {name} ran, so it returned no result; it may or "
    "may not have taken effect. Check before calling it again."
)
_NOT_STARTED = "Not run: the agent's process stopped before {name} started. Call it again if it is still needed."


@dataclass
class CallContext:
    """What the guard knows about one agent call (mutable; lives for the call only).

    Attributes:
        owner: the SOPHandle the tool events go to, or None (unguarded).
        call_id: the call's id.
        records: tool-call records by tool use id, in call order (ToolCall fields; the status
            is "running" while the tool call is under way).
        on_change: called after each change to `records` (the actor saves them).
        admitted: tool use ids a circuit breaker let through, until the tool returns.
        settled: tool use ids whose result event the SOP will not refuse (read from the code
            of the procedure it is in after the use event): it is sent without waiting.
        unconfirmed: (record, its result event's receipt to come) of those sent so; the
            call waits for them before it answers (`SOPGuard.confirm`).
    """

    owner: Any
    call_id: str
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    on_change: Callable[[], None] = lambda: None
    admitted: set[str] = field(default_factory=set)
    settled: set[str] = field(default_factory=set)
    unconfirmed: list[tuple[dict[str, Any], Awaitable[Receipt]]] = field(default_factory=list)

    def tool_calls(self) -> list[ToolCall]:
        """The records as ToolCall models, in order; one still running counts as interrupted."""
        return [
            ToolCall.model_validate({**record, "status": "interrupted"} if record["status"] == _RUNNING else record)
            for record in self.records.values()
        ]


def refusal_text(receipt: Receipt, event_type: str = "The event") -> str:
    """What the model sees when the SOP refuses a tool event: SOPy's text, spelling included.

    `An error occured in Procedure {procedure}: {recovery prompt}. Prompt for this procedure is
    {the procedure's instruction}` (no final period; a prompt that ends with one gives "..").

    Args:
        receipt: the SOP's receipt of the refused event.
        event_type: names the event when the receipt carries no recovery prompt.
    """
    prompt = receipt.prompt or f"{event_type} was rejected by the procedure"
    instruction = receipt.instruction or ""
    return f"An error occured in Procedure {receipt.procedure}: {prompt}. Prompt for this procedure is {instruction}"


def _reason(error: Exception) -> str:
    """Why an event could not be built: an InputError names the field; anything else its type."""
    return str(error) if isinstance(error, InputError) else f"{type(error).__name__}: {error}"


def _text(result: dict[str, Any]) -> str:
    return "\n".join(block["text"] for block in result.get("content", []) if "text" in block)


def _error(event: AfterToolCallEvent, message: str) -> None:
    event.result = {**event.result, "status": "error", "content": [{"text": message}]}


class SOPGuard(HookProvider):
    """Tool call -> use event, tool result -> result event, rejections -> error tool results.

    Args:
        agent: the agent's name (the events' `sender`).
        events: event classes by tool name.
        breakers: the agent's circuit breakers (tools without one are not checked), or None.
    """

    def __init__(self, agent: str, events: dict[str, ToolEvents], breakers: AgentBreakers | None = None) -> None:
        self.agent = agent
        self.events = events
        self.breakers = breakers

    def register_hooks(self, registry: HookRegistry, **kwargs: Any) -> None:
        """Install the two callbacks (strands calls this once per Agent)."""
        registry.add_callback(BeforeToolCallEvent, self.before_tool)
        registry.add_callback(AfterToolCallEvent, self.after_tool)

    async def before_tool(self, event: BeforeToolCallEvent) -> None:
        """Ask the owning SOP whether this tool call may run, then the tool's circuit breaker."""
        call: CallContext | None = event.invocation_state.get(CONTEXT_KEY)
        if call is None:
            return
        name, tool_use_id = event.tool_use["name"], event.tool_use["toolUseId"]
        tool_input = dict(event.tool_use.get("input") or {})
        record = {"name": name, "input": tool_input, "tool_use_id": tool_use_id, "status": _RUNNING}
        call.records[tool_use_id] = record
        call.on_change()  # saved before the SOP hears of it: a restart must know it may be running
        if call.owner is None or await self._accepted(call, event, record):
            await self._admit(call, event, record)

    async def _accepted(self, call: CallContext, event: BeforeToolCallEvent, record: dict[str, Any]) -> bool:
        """Send the use event to the owner; refused (or not buildable), cancel the tool and say False."""
        name, tool_use_id, tool_input = record["name"], record["tool_use_id"], record["input"]
        events = self.events.get(name, ToolEvents())
        try:
            message = use_event(events, name, tool_input, sender=self.agent, tool_use_id=tool_use_id)
        except Exception as error:  # the event's own constructor may raise anything: refuse, never crash
            logger.warning(
                "agent=<%s>, sop=<%s>, tool=<%s>, event=<%s> | the use event cannot be built from the input: %s",
                self.agent, call.owner.sop_id, name, events.use.__name__, error,
            )
            refusal = (
                f"Tool call {name} does not fit {events.use.__name__}: {_reason(error)}. "
                f"Call {name} with the arguments its schema lists."
            )
            self._refuse(call, event, record, "error", refusal)
            return False
        prompt = await self._send(call, message, probe=(tool_use_id, events.result))
        if prompt is not None:
            self._refuse(call, event, record, "rejected", prompt)
            return False
        return True

    async def _admit(self, call: CallContext, event: BeforeToolCallEvent, record: dict[str, Any]) -> None:
        """Ask the tool's circuit breaker, if it has one; open, the tool does not run."""
        target = tool_target(record["name"])
        if self.breakers is None or not self.breakers.guards(target):
            return
        refusal = await self.breakers.admit(target)
        if refusal is None:
            call.admitted.add(record["tool_use_id"])
            return
        logger.info("agent=<%s>, call=<%s>, tool=<%s> | circuit open: tool not run", self.agent, call.call_id, record["name"])
        record.update(status="error", message=f"Not run: {refusal['message']}", error=refusal)
        await self._fail(call, record, "error", error=error_from_wire(refusal))
        event.cancel_tool = record["message"]
        call.on_change()

    async def after_tool(self, event: AfterToolCallEvent) -> None:
        """Tell the tool's breaker how it went; send the tool's result, or its failure, to the
        owning SOP; show a rejection to the model."""
        call: CallContext | None = event.invocation_state.get(CONTEXT_KEY)
        tool_use_id = event.tool_use["toolUseId"]
        if call is not None and tool_use_id in call.admitted and self.breakers is not None:
            call.admitted.discard(tool_use_id)
            ok = event.result.get("status") == "success" and event.exception is None
            await self.breakers.record(tool_target(event.tool_use["name"]), ok=ok)
        record = call.records.get(tool_use_id) if call is not None else None
        if call is None or record is None or event.cancel_message is not None:
            return
        name, text = record["name"], _text(dict(event.result))
        events = self.events.get(name, ToolEvents())
        if event.result.get("status") != "success" or event.exception is not None:
            retryable = event.exception is not None and is_retryable(event.exception)
            failure = AgentError(f"agent=<{self.agent}>, tool=<{name}> | {text}", agent=self.agent, retryable=retryable)
            record.update(status="error", message=text, error=error_to_wire(failure))
            if (prompt := await self._fail(call, record, "error", retryable=retryable)) is not None:
                _error(event, prompt)
        elif call.owner is None:
            record.update(status="ok", message=text)
        else:
            try:
                message = result_event(events, name, text, sender=self.agent, tool_use_id=tool_use_id, call_id=call.call_id)
            except Exception as error:  # as for use events: a result event that cannot be built is a failure
                logger.warning(
                    "agent=<%s>, sop=<%s>, tool=<%s>, event=<%s> | the result event cannot be built: %s",
                    self.agent, call.owner.sop_id, name, events.result.__name__, error,
                )
                record.update(
                    status="error", message=f"The result of {name} does not fit {events.result.__name__}: {_reason(error)}"
                )
                await self._fail(call, record, "error", retryable=False)
                _error(event, record["message"])
            else:
                await self._send_result(call, event, record, message, text)
        call.on_change()

    async def _send_result(
        self, call: CallContext, event: AfterToolCallEvent, record: dict[str, Any], message: Any, text: str
    ) -> None:
        """Send the tool's result event; refused, the model sees the refusal instead of the result.
        One the SOP will not refuse (`call.settled`) goes without waiting: the model goes on."""
        if record["tool_use_id"] in call.settled:
            record.update(status="ok", message=text)
            call.unconfirmed.append((record, call.owner.send_soon(message)))
            return
        prompt = await self._send(call, message)
        if prompt is None:
            record.update(status="ok", message=text)
        else:
            record.update(status="rejected", message=prompt)
            _error(event, prompt)

    async def confirm(self, call: CallContext) -> None:
        """Wait for the result events sent without waiting (`send_soon`); one refused after all
        (the handler raised, or the SOP moved on meanwhile) changes its record to say so, and is
        logged: the model was not told."""
        unconfirmed, call.unconfirmed = call.unconfirmed, []
        for record, sending in unconfirmed:
            prompt: str | None
            try:
                receipt = await sending
            except Exception as error:
                prompt = f"The procedure cannot accept this now ({type(error).__name__}: {error}). Stop and report."
            else:
                prompt = refusal_text(receipt, "The result event") if receipt.rejected else None
            if prompt is not None:
                logger.warning(
                    "agent=<%s>, sop=<%s>, tool=<%s> | the result event was refused after the model went on: %s",
                    self.agent, call.owner.sop_id, record["name"], prompt,
                )
                record.update(status="rejected", message=prompt)
                call.on_change()

    async def interrupted(self, call: CallContext, open_uses: list[ToolUse]) -> list[ContentBlock]:
        """Settle the tool calls of a call whose agent process died; the results that close `open_uses`.

        Runs when the call starts again, before the model is called. Every tool call still
        running becomes "interrupted" and the owner gets its `ToolFailed`. `open_uses` are the
        tool uses of the conversation's last message, whose results were never added: each gets
        the tool result the model should see (a tool that had finished keeps its result).
        """
        for record in call.records.values():
            if record["status"] == _RUNNING:
                record.update(status="interrupted", message=_INTERRUPTED.format(name=record["name"]))
                await self._fail(call, record, "interrupted", retryable=True)
        results: list[ContentBlock] = []
        for use in open_uses:
            record = call.records.setdefault(
                use["toolUseId"],
                {
                    "name": use["name"],
                    "input": dict(use.get("input") or {}),
                    "tool_use_id": use["toolUseId"],
                    "status": "interrupted",
                    "message": _NOT_STARTED.format(name=use["name"]),
                },
            )
            status: ToolResultStatus = "success" if record["status"] == "ok" else "error"
            content: list[ToolResultContent] = [{"text": record["message"]}]
            results.append({"toolResult": {"toolUseId": use["toolUseId"], "status": status, "content": content}})
        call.on_change()
        return results

    async def _fail(
        self,
        call: CallContext,
        record: dict[str, Any],
        status: Literal["error", "interrupted"],
        *,
        retryable: bool = False,
        error: SopyError | None = None,
    ) -> str | None:
        """Send `ToolFailed` for a tool call that ended without a result (`record["message"]` says
        how; `error` is the failure, default an AgentError saying so).

        Returns the SOP's recovery prompt, which then replaces the record's message, or None.
        """
        if call.owner is None:
            return None
        name = record["name"]
        if error is None:
            error = AgentError(
                f"agent=<{self.agent}>, call=<{call.call_id}>, tool=<{name}> | {record['message']}",
                agent=self.agent,
                retryable=retryable,
            )
        failure = ToolFailure(tool=name, status=status, error=error_to_wire(error))
        message = failure_event(failure, sender=self.agent, tool_use_id=record["tool_use_id"], call_id=call.call_id)
        prompt = await self._send(call, message)
        if prompt is not None:
            record["message"] = prompt
        return prompt

    async def _send(self, call: CallContext, message: Any, *, probe: tuple[str, type[Event[Any]]] | None = None) -> str | None:
        """Send one event to the owner; the refusal the model sees if it was refused, else None.

        Args:
            probe: (tool use id, its result event class): if the owner can tell
                (`send_probing`) that the SOP will not refuse that result event, the tool use
                id goes into `call.settled`.
        """
        try:
            if probe is not None and (probing := getattr(call.owner, "send_probing", None)) is not None:
                receipt, settles = await probing(message, probe[1])
                if settles and not receipt.rejected:
                    call.settled.add(probe[0])
            else:
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
            return refusal_text(receipt, type(message).__name__)
        return None

    @staticmethod
    def _refuse(call: CallContext, event: BeforeToolCallEvent, record: dict[str, Any], status: str, message: str) -> None:
        record.update(status=status, message=message)
        event.cancel_tool = message
        call.on_change()
