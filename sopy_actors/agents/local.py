"""Agents in this process: a strands Agent run here, its tool calls held to a `with sop:` run here.

When no runtime is installed (`sopy_actors.init()` has not run), a SOPy program's `with sop:`
block runs as a `sopy_actors.testing.LocalSOP` in this process, which no agent actor can reach.
SOPy's `StrandsAgent` (`sopy_actors.sopy.interface.strands`) then runs its agent here instead:

    with sop:                                  # a LocalSOP run
        result = agent("Move all files ...")   # a strands Agent in this process, guarded

The agent is built as the AgentActor builds it (`build_model`, the spec's tools, `SOPGuard`,
`SequentialToolExecutor`, no callback handler), once per spec and conversation, and each call
is guarded the same way: the tool's use event goes to the innermost `with sop:` run first
(through `LocalOwner`), and a refused call never runs; the model gets SOPy's refusal text.
The call returns the same `AgentResult`.

Each call runs in a thread of its own (a strands Agent runs its own event loop there), while
the caller waits; the SOP's handlers run in that thread. Unlike on the runtime, tool methods of
an object (`tools=[db.connect]`) change the caller's object, not a copy; conversations live in
memory only; nothing is reported to the Monitor. Plain Python over strands: no Ray actor.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any

from strands import Agent
from strands.agent import AgentResult as StrandsResult

from sopy_actors.agents.building import new_strands_agent
from sopy_actors.agents.guard import CONTEXT_KEY, CallContext, SOPGuard
from sopy_actors.agents.providers import build_model
from sopy_actors.agents.results import AgentResult, Usage
from sopy_actors.agents.spec import AgentSpec, BoundTool, load_tool
from sopy_actors.agents.tools import events_of
from sopy_actors.core.context import innermost_run
from sopy_actors.errors import AgentError, InputError, as_sopy_error
from sopy_actors.runtime.messages import Receipt
from sopy_actors.testing import LocalSOP

__all__ = ["LocalAgent", "LocalOwner", "local_agent", "owner_here"]

logger = logging.getLogger(__name__)

_MAX_AGENTS = 64  # strands Agents (conversations) one LocalAgent keeps in memory
_agents: dict[str, LocalAgent] = {}
_agents_lock = threading.Lock()


class LocalOwner:
    """The owner an in-process agent call sends its tool events to: a LocalSOP run.

    What `SOPGuard` needs of an owner (`sop_id`, `send_async`), over `LocalSOP.send`.

    Args:
        run: the run of a `with sop:` block in this process.
    """

    def __init__(self, run: LocalSOP[Any]) -> None:
        self.run = run

    @property
    def sop_id(self) -> str:
        """The run's id."""
        return self.run.sop_id

    async def send_async(self, event: Any) -> Receipt:
        """Apply `event` to the run (in the calling thread) and say what it did, as a SOP host replies.

        Raises:
            SopyError: what `LocalSOP.send` raises (the guard refuses the tool call with it).
        """
        transition = self.run.send(event)
        procedure = self.run.procedure  # where the run is now, as the host's receipt says
        return Receipt(
            outcome=transition.outcome,
            procedure=self.run.procedure_name,
            version=self.run.version,
            prompt=transition.prompt,
            instruction=str(procedure.prompt),
        )


def owner_here(sop: Any) -> LocalOwner | None:
    """The owner of an in-process call: the innermost `with sop:` run, or None (unguarded).

    Raises:
        InputError: `sop=` was given (an SOPHandle needs the actor runtime), or the innermost
            run is not an in-process one.
    """
    if sop is not None:
        raise InputError(
            "sop= names an SOP on the actor runtime, which this process has not joined: call "
            "sopy_actors.init() first, or call the agent inside `with sop:` without sop=",
            fields=("sop",),
        )
    run = innermost_run()
    if run is None:
        return None
    if not isinstance(run, LocalSOP):
        raise InputError(
            f"the current `with sop:` run is a {type(run).__name__}, which an in-process agent cannot reach; "
            "call sopy_actors.init() first so that the agent runs on the actor runtime too",
            fields=("sop",),
        )
    return LocalOwner(run)


class LocalAgent:
    """One AgentSpec's strands Agents in this process (one per conversation), and its guard.

    Args:
        spec: the agent's spec; its tool methods are bound to the objects it holds.
    """

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec
        name = spec.name
        self._model = build_model(spec.model, agent=name)
        objects = spec.tool_objects()
        self._tools = [entry.bind(objects) if isinstance(entry, BoundTool) else load_tool(entry) for entry in spec.tools]
        self._guard = SOPGuard(name, {t.tool_name: events_of(t) for t in self._tools if hasattr(t, "tool_name")})
        self._agents: OrderedDict[str, Agent] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def __call__(
        self, prompt: str, *, sop: Any = None, conversation: str | None = None, timeout: float | None = None
    ) -> AgentResult:
        """Run the agent on `prompt` in this process and wait for its result (blocking).

        Its tool calls work for the innermost `with sop:` run of the calling context, if any.

        Args:
            prompt: the user prompt.
            sop: must be None here (see `owner_here`).
            conversation: the conversation to continue; default `sop-<run id>` inside
                `with sop:`, else a new one.
            timeout: seconds to wait; the call goes on after a timeout.

        Raises:
            AgentError: the model or the agent loop failed.
            InputError: bad arguments.
            TimeoutError: no result within `timeout`.
        """
        if not isinstance(prompt, str) or not prompt:
            raise InputError("prompt must be a non-empty str", fields=("prompt",))
        owner = owner_here(sop)
        if conversation is None:
            conversation = f"sop-{owner.sop_id}" if owner is not None else f"call-{uuid.uuid4().hex}"
        call = CallContext(owner=owner, call_id=uuid.uuid4().hex)
        done: Future[AgentResult] = Future()
        context = contextvars.copy_context()

        def work() -> None:
            try:
                done.set_result(self._run(prompt, conversation, call))
            except BaseException as error:
                done.set_exception(error)

        # A thread of its own (not a pool): a tool may call another agent and wait for it.
        threading.Thread(target=context.run, args=(work,), name=f"sopy-agent-{call.call_id[:8]}", daemon=True).start()
        return done.result(timeout)

    def _run(self, prompt: str, conversation: str, call: CallContext) -> AgentResult:
        name = self.spec.name
        started = time.perf_counter()
        try:
            with self._conversation_lock(conversation):
                agent = self._agent(conversation)
                result: StrandsResult = asyncio.run(agent.invoke_async(prompt, invocation_state={CONTEXT_KEY: call}))
        except Exception as error:
            logger.warning("agent=<%s>, call=<%s> | call failed", name, call.call_id, exc_info=True)
            failure = as_sopy_error(error, wrap=AgentError)
            raise AgentError(
                f"agent=<{name}>, call=<{call.call_id}> | {failure}", agent=name, retryable=failure.retryable
            ) from error
        invocation = result.metrics.latest_agent_invocation
        usage = {key: int(value) for key, value in invocation.usage.items()} if invocation is not None else {}  # type: ignore[call-overload]
        return AgentResult(
            text=str(result).strip(),
            stop_reason=str(result.stop_reason),
            usage=Usage(
                input_tokens=usage.get("inputTokens", 0),
                output_tokens=usage.get("outputTokens", 0),
                total_tokens=usage.get("totalTokens", 0),
            ),
            tool_calls=tuple(call.tool_calls()),
            latency_seconds=time.perf_counter() - started,
            agent=name,
            call_id=call.call_id,
            conversation=conversation,
        )

    def messages(self, conversation: str) -> list[dict[str, Any]]:
        """The strands messages of a conversation held here (empty if there is none)."""
        with self._conversation_lock(conversation):
            agent = self._agents.get(conversation)
            return [dict(message) for message in agent.messages] if agent is not None else []

    def _conversation_lock(self, conversation: str) -> threading.Lock:
        # A strands Agent serves one invocation at a time: calls of a conversation queue here.
        with self._lock:
            lock = self._locks.get(conversation)
            if lock is None:
                lock = self._locks[conversation] = threading.Lock()
            return lock

    def _agent(self, conversation: str) -> Agent:
        with self._lock:
            agent = self._agents.get(conversation)
            if agent is not None:
                self._agents.move_to_end(conversation)
                return agent
        agent = new_strands_agent(self.spec, self._model, self._tools, self._guard)
        with self._lock:
            self._agents[conversation] = agent
            for old in list(self._agents):
                if len(self._agents) <= _MAX_AGENTS:
                    break
                lock = self._locks.get(old)
                if lock is None or not lock.locked():
                    del self._agents[old]
                    self._locks.pop(old, None)
        return agent


def local_agent(spec: AgentSpec) -> LocalAgent:
    """The LocalAgent of `spec` in this process, built on first use (equal specs share it)."""
    key = spec.actor_name()
    with _agents_lock:
        agent = _agents.get(key)
        if agent is None:
            agent = _agents[key] = LocalAgent(spec)
    return agent
