"""AgentActor: one async Ray actor per distinct AgentSpec, running its strands Agents.

The actor builds its model once. A strands `Agent` serves one invocation at a time and keeps no
conversation between calls here: a call takes an idle Agent (one is built only when none is
idle), loads its conversation into it (`sessions.Conversation`: the messages and the rest of a
strands session snapshot) and gives it back when it ends. Conversations stay in memory (the
latest `_MAX_CONVERSATIONS`) and, with `persist_sessions`, in a file each, saved when a call
ends and when its tool calls change (`sessions.Conversations`: an appended line each). Calls
of one conversation queue behind each other; calls of different conversations run at once,
and `spec.max_concurrency` limits how many call the model at the same moment (each model call
holds a slot while it streams; tools and the SOP's answers hold none). Agents are called with
`invoke_async` only. Every method runs on the actor's event loop and returns plain dicts.
Calls are keyed by call id and idempotent: asking for a call the actor does not know (it
restarted) starts it again.

With `persist_sessions`, a call and its tool-call records are on disk until it finishes
(`sessions.PendingCalls`), and a restarted actor runs its calls again, in the order they came.
A call that had begun goes on where its conversation stopped, without its prompt again: the SOP
gets `ToolFailed` for the tool calls the dead process left running, the model gets an error
result for them, and the call's AgentResult has `attempts` > 1 and lists them as "interrupted".

A spec with circuit breakers (`breaker`, `tool_breakers`) has the actor ask the cluster's
breaker service before each call and tool run (`sopy_actors.agents.breakers`); a call its
agent breaker refuses ends at once with `CircuitOpen` as its error.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import ray
from strands import Agent
from strands.agent import AgentResult as StrandsResult
from strands.hooks import MessageAddedEvent
from strands.telemetry.metrics import EventLoopMetrics
from strands.types.content import Message, Messages

from sopy_actors.agents.breakers import AgentBreakers
from sopy_actors.agents.building import new_strands_agent
from sopy_actors.agents.circuit_board import agent_target
from sopy_actors.agents.events import AgentCompleted, AgentCompletion
from sopy_actors.agents.future import AgentRequest
from sopy_actors.agents.guard import CONTEXT_KEY, CallContext, SOPGuard
from sopy_actors.agents.metrics import AgentMetrics
from sopy_actors.agents.providers import build_model
from sopy_actors.agents.results import ToolCall
from sopy_actors.agents.sessions import (
    Conversation,
    Conversations,
    PendingCall,
    PendingCalls,
    final_answer,
    has_prompt,
    open_tool_uses,
    prompt_message,
)
from sopy_actors.agents.spec import AgentSpec, BoundTool, load_tool
from sopy_actors.agents.tools import events_of
from sopy_actors.errors import AgentError, as_sopy_error, error_to_wire
from sopy_actors.runtime.heap import settle
from sopy_actors.telemetry import names
from sopy_actors.telemetry.reporter import MetricsReporter

__all__ = ["AgentActor"]

logger = logging.getLogger(__name__)

_MAX_CONVERSATIONS = 512  # conversations kept in memory (persisted ones are read again on demand)
_MAX_IDLE_AGENTS = 64  # idle strands Agents kept for the next calls
_MAX_RESULTS = 4096  # finished calls remembered for late result() calls


@ray.remote
class AgentActor:
    """Async actor serving one AgentSpec (see the module docstring).

    Args:
        spec: the AgentSpec as JSON data.
        directory: where this actor keeps its conversations and pending calls.
        objects: the objects of the spec's tool methods, by digest (`AgentSpec.tool_objects`;
            pickled by Ray as actor arguments). The tool calls change these copies.
    """

    def __init__(self, spec: dict[str, Any], directory: str, objects: dict[str, Any]) -> None:
        self._spec = AgentSpec.model_validate(spec)
        name = self._spec.name
        self._model = build_model(self._spec.model, agent=name)
        tools = [entry.bind(objects) if isinstance(entry, BoundTool) else load_tool(entry) for entry in self._spec.tools]
        self._tools = tools
        namespace = ray.get_runtime_context().namespace
        self._breakers = AgentBreakers.of(self._spec, namespace)
        self._guard = SOPGuard(
            name, {t.tool_name: events_of(t) for t in tools if hasattr(t, "tool_name")}, breakers=self._breakers
        )
        persisted = self._spec.persist_sessions
        self._pending = PendingCalls(Path(directory)) if persisted else None
        self._saved = Conversations(Path(directory)) if persisted else None
        self._conversations: OrderedDict[str, Conversation] = OrderedDict()
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}  # conversation -> its lock, calls using it
        self._model_calls = asyncio.Semaphore(self._spec.max_concurrency)
        self._idle = [self._new_agent()]
        self._blank = self._idle[0].take_snapshot(preset="session", exclude=["messages"])  # a new conversation
        self._running: dict[str, Agent] = {}  # call id -> its Agent, while inside invoke_async
        self._tasks: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self._results: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cancelled: set[str] = set()
        self._metrics = AgentMetrics(name)
        self._reporter = MetricsReporter(namespace, kind="agent")
        resumed = self._pending.load() if self._pending is not None else []
        for pending in resumed:  # oldest first: each conversation's queue keeps its order
            self._start(pending)
        settle()
        logger.info(
            "agent=<%s>, model=<%s>, pid=<%d>, resumed=<%d> | agent actor ready",
            name, self._spec.model.describe(), os.getpid(), len(resumed),
        )

    # -- calls -----------------------------------------------------------------------------

    async def wait(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run the call (unless it runs or ran already) and return its reply."""
        return await asyncio.shield(self._ensure(request))

    async def poll(self, request: dict[str, Any]) -> bool:
        """Whether the call has finished (starting it if this actor does not know it)."""
        return self._ensure(request).done()

    async def cancel(self, call_id: str) -> bool:
        """Cancel a call; False if it had already finished or is unknown."""
        task = self._tasks.get(call_id)
        if task is None or task.done():
            return False
        self._cancelled.add(call_id)
        agent = self._running.get(call_id)
        if agent is not None:
            agent.cancel()  # strands stops at its next safe point
        else:
            task.cancel()
        return True

    def _ensure(self, data: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        call_id = data["call_id"]
        if call_id in self._results:
            done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            done.set_result(self._results[call_id])
            return done
        task = self._tasks.get(call_id)
        if task is None:
            task = self._start(PendingCall(request=AgentRequest.model_validate(data), sequence=time.time_ns()))
        return task

    def _start(self, pending: PendingCall) -> asyncio.Task[dict[str, Any]]:
        task = asyncio.get_running_loop().create_task(self._run(pending))
        self._tasks[pending.request.call_id] = task
        return task

    def _save(self, pending: PendingCall) -> None:
        if self._pending is not None:
            self._pending.save(pending)

    async def _run(self, pending: PendingCall) -> dict[str, Any]:
        request = pending.request
        if self._breakers is not None or request.conversation in self._turns:
            self._save(pending)  # it will wait before it begins (when it begins, it is saved anyway)
        refusal = await self._breakers.admit(agent_target(self._spec.name)) if self._breakers is not None else None
        if refusal is None:
            reply = await self._call(pending)
        else:  # the circuit is open: nothing runs, nothing is counted as a call
            logger.info("agent=<%s>, call=<%s> | circuit open: call refused", self._spec.name, request.call_id)
            reply = {"error": refusal, "call_id": request.call_id}
        if request.deliver_to is not None:
            await self._deliver(request, reply)
        self._finish(request.call_id, reply)
        return reply

    async def _call(self, pending: PendingCall) -> dict[str, Any]:
        """Run one call (its attempt, metrics and breaker outcome); returns the reply."""
        request = pending.request
        failed: bool | None = None  # for the agent's breaker: None when cancelled
        started = time.perf_counter()
        call = CallContext(owner=request.sop, call_id=request.call_id, records=pending.tool_calls)
        reply: dict[str, Any]
        usage = {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}
        self._metrics.in_flight += 1
        try:
            async with self._turn(request.conversation):
                conversation = self._conversation(request.conversation)
                pending.attempts += 1
                self._save(pending)
                agent = self._checkout(conversation)
                if self._saved is not None:
                    call.on_change = self._saver(self._saved, request.conversation, agent, pending)
                try:
                    result = await self._attempt(agent, request, call, pending.attempts)
                finally:
                    self._checkin(request.conversation, agent)
            invocation = result.metrics.latest_agent_invocation
            if invocation is not None:
                usage = {key: int(value) for key, value in invocation.usage.items()}  # type: ignore[call-overload]
            if request.call_id in self._cancelled:
                reply = {"error": self._cancelled_error(request)}
            else:
                failed = False
                latency = time.perf_counter() - started
                reply = {"ok": self._result(request, result, call, usage, latency, pending.attempts)}
        except asyncio.CancelledError:
            reply = {"error": self._cancelled_error(request)}
        except Exception as error:
            failed = True
            logger.warning("agent=<%s>, call=<%s> | call failed", self._spec.name, request.call_id, exc_info=True)
            failure = as_sopy_error(error, wrap=AgentError)
            failure = AgentError(
                f"agent=<{self._spec.name}>, call=<{request.call_id}> | {failure}",
                agent=self._spec.name,
                retryable=failure.retryable,
            )
            reply = {"error": error_to_wire(failure)}
        finally:
            self._metrics.in_flight -= 1
        reply["call_id"] = request.call_id
        latency = time.perf_counter() - started
        records = call.tool_calls()
        self._metrics.record(
            latency=latency,
            input_tokens=int(usage.get("inputTokens", 0)),
            output_tokens=int(usage.get("outputTokens", 0)),
            tool_calls=len(records),
            rejected_tool_calls=sum(1 for r in records if r.status == "rejected"),
            interrupted_tool_calls=sum(1 for r in records if r.status == "interrupted"),
            error="error" in reply,
        )
        self._report(records, failed="error" in reply, usage=usage, latency=latency)
        if self._breakers is not None and failed is not None:
            await self._breakers.record(agent_target(self._spec.name), ok=not failed)
        return reply

    def _saver(self, conversations: Conversations, name: str, agent: Agent, pending: PendingCall) -> Callable[[], None]:
        """What saves a running call when its tool calls change: its conversation (if it has new
        messages), then the call. In that order: a restart must never find a tool call running
        that the conversation does not show."""
        saved = len(agent.messages)

        def save() -> None:
            nonlocal saved
            if len(agent.messages) != saved:
                conversations.save(name, Conversation.of(agent))
                saved = len(agent.messages)
            self._save(pending)

        return save

    async def _attempt(self, agent: Agent, request: AgentRequest, call: CallContext, attempt: int) -> StrandsResult:
        """Run one attempt of a call; a later attempt goes on where the conversation stopped.

        Returns the strands AgentResult (for a call whose answer was already in the conversation
        when its process died, one made from that answer: no model call, no usage).
        """
        prompt: Messages | None = [prompt_message(request.prompt, request.call_id)]
        if attempt > 1:
            logger.info("agent=<%s>, call=<%s>, attempt=<%d> | running the call again", self._spec.name, request.call_id, attempt)
            self._metrics.reruns += 1
            self._reporter.count(names.AGENT_CALL_RERUNS, (self._spec.name,))
            begun = has_prompt(agent.messages, request.call_id)
            closing = await self._guard.interrupted(call, open_tool_uses(agent.messages) if begun else [])
            if closing:
                await self._append(agent, {"role": "user", "content": closing})
            if begun:
                answer = final_answer(agent.messages)
                if answer is not None:
                    return StrandsResult(stop_reason="end_turn", message=answer, metrics=EventLoopMetrics(), state={})
                prompt = None  # the conversation ends with the prompt or with tool results: go on
        self._running[request.call_id] = agent
        try:
            result = await agent.invoke_async(prompt, invocation_state={CONTEXT_KEY: call})
            await self._guard.confirm(call)  # the SOP has every result event when the call answers
            return result
        finally:
            del self._running[request.call_id]

    @staticmethod
    async def _append(agent: Agent, message: Message) -> None:
        """Add a message as strands does (its hooks hear of it: MessageAddedEvent)."""
        message["tracking_id"] = str(uuid.uuid4())
        agent.messages.append(message)
        await agent.hooks.invoke_callbacks_async(MessageAddedEvent(agent=agent, message=message))

    def _report(self, records: list[ToolCall], *, failed: bool, usage: dict[str, Any], latency: float) -> None:
        """Send one call's counts to the Monitor (the reporter batches them; nothing waits)."""
        name = self._spec.name
        self._reporter.count(names.AGENT_CALLS, (name, "error" if failed else "ok"))
        self._reporter.observe(names.AGENT_CALL_DURATION, (name,), latency)
        for direction, key in (("input", "inputTokens"), ("output", "outputTokens")):
            self._reporter.count(names.AGENT_TOKENS, (name, direction), int(usage.get(key, 0)))
        for record in records:
            # The model names the tool: only the agent's own tool names become label values.
            tool = record.name if record.name in self._guard.events else "unknown"
            self._reporter.count(names.TOOL_CALLS, (name, tool))
            if record.status == "rejected":
                self._reporter.count(names.TOOL_CALLS_REJECTED, (name, tool))

    def _result(
        self, request: AgentRequest, result: Any, call: CallContext, usage: dict[str, Any], latency: float, attempts: int
    ) -> dict[str, Any]:
        return {
            "text": str(result).strip(),
            "stop_reason": str(result.stop_reason),
            "usage": {
                "input_tokens": int(usage.get("inputTokens", 0)),
                "output_tokens": int(usage.get("outputTokens", 0)),
                "total_tokens": int(usage.get("totalTokens", 0)),
            },
            "tool_calls": [record.model_dump(mode="json") for record in call.tool_calls()],
            "latency_seconds": latency,
            "agent": self._spec.name,
            "call_id": request.call_id,
            "conversation": request.conversation,
            "attempts": attempts,
        }

    def _cancelled_error(self, request: AgentRequest) -> dict[str, Any]:
        error = AgentError(
            f"agent=<{self._spec.name}>, call=<{request.call_id}> | Cancelled: the call was cancelled",
            agent=self._spec.name,
        )
        return error_to_wire(error)

    async def _deliver(self, request: AgentRequest, reply: dict[str, Any]) -> None:
        assert request.deliver_to is not None
        completion = AgentCompletion(
            agent=self._spec.name, call_id=request.call_id, result=reply.get("ok"), error=reply.get("error")
        )
        # A deterministic id: a call run again after a restart is delivered once.
        event = AgentCompleted(payload=completion, sender=self._spec.name, id=f"agent-completed-{request.call_id}")
        try:
            await request.deliver_to.send_async(event)
        except Exception as failure:
            logger.warning(
                "agent=<%s>, call=<%s>, sop=<%s> | AgentCompleted not delivered: %s",
                self._spec.name, request.call_id, request.deliver_to.sop_id, failure,
            )
            reply["delivery_error"] = f"{type(failure).__name__}: {failure}"

    def _finish(self, call_id: str, reply: dict[str, Any]) -> None:
        self._results[call_id] = reply
        while len(self._results) > _MAX_RESULTS:
            self._results.popitem(last=False)
        self._tasks.pop(call_id, None)
        self._cancelled.discard(call_id)
        if self._pending is not None:
            self._pending.remove(call_id)

    # -- conversations and agents -----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _turn(self, conversation: str) -> AsyncIterator[None]:
        """Wait for the conversation's turn: its calls run one at a time, in the order they came."""
        lock, users = self._turns.get(conversation, (None, 0))
        lock = lock or asyncio.Lock()
        self._turns[conversation] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns.pop(conversation)
            if users > 1:
                self._turns[conversation] = (lock, users - 1)

    def _conversation(self, name: str) -> Conversation:
        """The conversation: in memory, else saved, else new."""
        conversation = self._conversations.get(name)
        if conversation is None:
            conversation = self._load(name)
        self._remember(name, conversation)
        return conversation

    def _load(self, name: str) -> Conversation:
        if self._saved is not None:
            saved = self._saved.load(name)
            if saved is not None:
                return saved
            legacy = self._saved.legacy_session(name)
            if legacy is not None:  # strands restores it into an Agent built with its session manager
                agent = new_strands_agent(self._spec, self._model, self._tools, self._guard, session_manager=legacy)
                return Conversation.of(agent)
        return Conversation([], self._blank)

    def _remember(self, name: str, conversation: Conversation) -> None:
        """Keep the conversation in memory, forgetting the least recent ones no call is using."""
        self._conversations[name] = conversation
        self._conversations.move_to_end(name)
        excess = len(self._conversations) - _MAX_CONVERSATIONS
        for old in list(itertools.islice(self._conversations, max(excess, 0))):
            if old not in self._turns:
                del self._conversations[old]

    def _new_agent(self) -> Agent:
        return new_strands_agent(self._spec, self._model, self._tools, self._guard, model_calls=self._model_calls)

    def _checkout(self, conversation: Conversation) -> Agent:
        """An idle Agent (or a new one), continuing `conversation`."""
        agent = self._idle.pop() if self._idle else self._new_agent()
        conversation.load_into(agent)
        agent.event_loop_metrics = EventLoopMetrics()  # this call's: `latest_agent_invocation`
        return agent

    def _checkin(self, name: str, agent: Agent) -> None:
        """Keep (and save) the conversation the call left in `agent`; the Agent is idle again."""
        conversation = Conversation.of(agent)
        self._remember(name, conversation)
        if self._saved is not None:
            self._saved.save(name, conversation)
        if len(self._idle) < _MAX_IDLE_AGENTS:
            self._idle.append(agent)

    # -- inspection ------------------------------------------------------------------------

    async def metrics(self) -> dict[str, Any]:
        """The cumulative metrics snapshot (shape: `sopy_actors.agents.metrics`)."""
        return self._metrics.snapshot()

    async def messages(self, conversation: str) -> list[dict[str, Any]]:
        """The strands messages of a conversation (read from its file if persisted and not in memory)."""
        async with self._turn(conversation):
            return [dict(message) for message in self._conversation(conversation).messages]

    async def location(self) -> dict[str, Any]:
        """Process id, node id, and whether this process is a restart."""
        context = ray.get_runtime_context()
        return {
            "pid": os.getpid(),
            "node": context.get_node_id(),
            "restarted": context.was_current_actor_reconstructed,
        }
