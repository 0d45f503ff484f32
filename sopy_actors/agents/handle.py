"""StrandsAgent: the handle procedures hold to call a specialist agent.

A handle is plain data (its `AgentSpec`), so it pickles, fits in procedure attributes (the
runtime's JSON checkpoints) and works from any process connected with `sopy_actors.init()`:
the driver, a procedure actor running a handler, another actor. Equal specs, called with the
same job code (runtime_env), share one AgentActor (get-or-create by name, detached, restarted
by Ray).

Tool methods of an object (`tools=[db.connect, db.query]`) run on the agent actor's copy of
the object, shipped (pickled by Ray) when the actor starts: their state lives in that actor.
The handle holds the object, and so do its pickles; a handle rebuilt from JSON does not, and
can only call an actor that is already running (see `sopy_actors.agents.spec`).

Which SOP a call works for (whose tool events it sends):
- `sop=handle` given: that SOP.
- otherwise the SOP of the innermost `with sop:` block in this context .
- otherwise none: the tools run unguarded.
Deadlock rule: inside a handler of SOP X (a procedure actor), X is busy with the event that runs
the handler, so a blocking call (`agent(...)`) cannot wait on X for its tool events: such a call
is unguarded unless `sop=` names another SOP, and `agent(..., sop=X)` raises `InputError`.
`submit(..., sop=X)` is allowed: the handler returns before the first tool event reaches X
(in a handler, `sopy_actors.current_sop()` is X's handle: `deliver_to=current_sop()`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import ray
from pydantic import BaseModel, ConfigDict

from sopy_actors.agents.future import (
    AgentFuture,
    AgentRequest,
    agent_actor,
    forget_agent_actor,
    keep_reply,
    reply_to_result,
)
from sopy_actors.agents.metrics import AgentStatistics
from sopy_actors.agents.results import AgentResult
from sopy_actors.agents.sessions import agents_directory
from sopy_actors.agents.spec import AgentSpec
from sopy_actors.core.context import agent_substitute, handling_sop_id, innermost_run
from sopy_actors.errors import InputError
from sopy_actors.recovery.breaker import BreakerSettings
from sopy_actors.runtime.engine import current_engine
from sopy_actors.runtime.handle import SOPHandle
from sopy_actors.runtime.options import STORE_ACTOR, create_actor, ray_options
from sopy_actors.runtime.rayutil import wait

__all__ = ["StrandsAgent"]

_ACTOR_CONCURRENCY = 100_000  # each call submitted or waited for holds a slot; the spec's max_concurrency limits model calls
_NAMES_CACHED = 10_000  # specs whose actor name is remembered (by object)
_names: dict[int, tuple[AgentSpec, str]] = {}


def _spec_actor_name(spec: AgentSpec) -> str:
    """`spec.actor_name()`, computed once per spec object (it hashes the spec's JSON)."""
    cached = _names.get(id(spec))
    if cached is None or cached[0] is not spec:
        if len(_names) >= _NAMES_CACHED:
            _names.clear()
        cached = _names[id(spec)] = (spec, spec.actor_name())
    return cached[1]


def _owner(sop: SOPHandle | None, *, blocking: bool) -> SOPHandle | None:
    """The SOP a call works for (see the module docstring)."""
    calling = handling_sop_id()
    if sop is not None:
        if not isinstance(sop, SOPHandle):
            raise InputError(f"sop must be an SOPHandle, got {type(sop).__name__}", fields=("sop",))
        if blocking and sop.sop_id == calling:
            raise InputError(
                f"sop=<{calling}> | an agent called inside a handler of this SOP cannot send it tool "
                "events: the SOP is busy with the event that runs the handler (deadlock). Call the "
                "agent without sop= (unguarded), or use agent.submit(..., sop=handle, deliver_to=handle)",
                fields=("sop",),
            )
        return sop
    run = innermost_run()
    if run is None:
        return None
    if not isinstance(run, SOPHandle):
        raise InputError(
            f"the current `with sop:` run is a {type(run).__name__}, which an agent actor cannot reach; "
            "start the SOP on the actor runtime (sopy_actors.init()) to guard agent tools",
            fields=("sop",),
        )
    return run if run.sop_id != calling else None


class StrandsAgent(BaseModel):
    """A specialist agent: `agent("...")` runs it, `agent.submit("...")` runs it in the background.

    Args:
        tools: its tools (`@sopy_actors.tool` or strands `@tool` functions, "module:qualname",
            or tool methods of an object that pickles: `db.connect`).
        system_prompt: its system prompt.
        model: None ($SOPY_MODEL, else the offline scripted model), "provider:model", a
            ScriptedModel or a ModelConfig (see `sopy_actors.agents.providers`).
        name: its name (event sender, metrics label); default "agent-<hash of the spec>".
        max_concurrency: model calls its actor makes at once (its calls wait on tools and
            SOPs without holding one).
        persist_sessions: keep conversations (and running calls) across actor restarts.
        breaker: a circuit breaker on its invocations (`BreakerSettings`), shared by every
            caller in the cluster; an open one makes calls raise `CircuitOpen` at once.
        tool_breakers: circuit breakers on its tools, by tool name; a tool whose circuit is
            open does not run (see `sopy_actors.agents.breakers`).
        resources: custom Ray resources its actor needs (e.g. `{"llm": 0.01}`: only nodes
            that offer `llm` run it).

    Raises:
        InputError: an argument is invalid (names the field), including a model provider
            whose strands extra is not installed.
    """

    model_config = ConfigDict(frozen=True)

    spec: AgentSpec

    def __init__(
        self,
        spec: AgentSpec | None = None,
        /,
        *,
        tools: Sequence[Any] = (),
        system_prompt: str = "",
        model: Any = None,
        name: str | None = None,
        max_concurrency: int = 4,
        persist_sessions: bool = True,
        breaker: BreakerSettings | None = None,
        tool_breakers: Mapping[str, BreakerSettings] | None = None,
        resources: Mapping[str, float] | None = None,
    ) -> None:
        if spec is None:
            fields = {
                "system_prompt": system_prompt,
                "tools": list(tools),
                "model": model,
                "max_concurrency": max_concurrency,
                "persist_sessions": persist_sessions,
                "breaker": breaker,
                "tool_breakers": dict(tool_breakers or {}),
                "resources": dict(resources or {}),
            }
            if name is None:
                anonymous = AgentSpec(name="agent", **fields)
                name = f"agent-{hashlib.sha256(anonymous.model_dump_json().encode()).hexdigest()[:8]}"
            spec = AgentSpec(name=name, **fields)
        elif not isinstance(spec, AgentSpec):
            raise InputError(f"StrandsAgent(spec) takes an AgentSpec, got {type(spec).__name__}", fields=("spec",))
        super().__init__(spec=spec)

    # Validation (checkpoints, pickles) builds the model from its fields, not through __init__.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @property
    def name(self) -> str:
        """The agent's name (what `SOP.from_agent(agent)` filters on)."""
        return self.spec.name

    def __repr__(self) -> str:
        return f"StrandsAgent({self.spec.name!r}, model={self.spec.model.describe()!r})"

    # -- calls -----------------------------------------------------------------------------

    def __call__(
        self,
        prompt: str,
        *,
        sop: SOPHandle | None = None,
        conversation: str | None = None,
        timeout: float | None = None,
    ) -> AgentResult:
        """Run the agent on `prompt` and wait for its result (blocking; any process).

        Args:
            prompt: the user prompt.
            sop: the SOP whose tool events this call sends (default: see the module docstring).
            conversation: the conversation to continue; default `sop-<id>` of the owning SOP,
                else a new one.
            timeout: seconds to wait; the call goes on after a timeout.

        Raises:
            AgentError: the model or the agent loop failed, or the call was cancelled.
            CircuitOpen: the agent's circuit breaker is open: the call was not made.
            InputError: bad arguments, or `sop=` names the SOP whose handler is running.
            TimeoutError: no result within `timeout`.
        """
        if (substitute := self._substitute()) is not None:
            return substitute(prompt, sop=sop, conversation=conversation, timeout=timeout)
        request = self._request(prompt, sop, conversation, None, blocking=True)
        future = self._future(request)
        reply = future._get(self._actor().wait.remote(request.model_dump(mode="json")), timeout)
        return reply_to_result(reply, self.name)

    def submit(
        self,
        prompt: str,
        *,
        deliver_to: SOPHandle | None = None,
        sop: SOPHandle | None = None,
        conversation: str | None = None,
    ) -> AgentFuture:
        """Start the agent on `prompt` in the background and return its future at once.

        Args:
            prompt: the user prompt.
            deliver_to: an SOP that receives `AgentCompleted` (result or error) when the call
                ends, delivered once even if the agent actor restarts meanwhile.
            sop: the SOP whose tool events this call sends (default: see the module docstring;
                here `sop=` may name the SOP whose handler is running).
            conversation: the conversation to continue (default as for `__call__`).
        """
        if deliver_to is not None and not isinstance(deliver_to, SOPHandle):
            raise InputError(f"deliver_to must be an SOPHandle, got {type(deliver_to).__name__}", fields=("deliver_to",))
        if (substitute := self._substitute()) is not None:
            return substitute.submit(prompt, deliver_to=deliver_to, sop=sop, conversation=conversation)
        request = self._request(prompt, sop, conversation, deliver_to, blocking=False)
        future = self._future(request)
        # Not waited for: an agent actor starting cold takes seconds, and submits must not queue
        # behind it. The call's `wait` starts it and holds its reply for result() (one actor
        # call per call); calls are idempotent by id, so result() asks again if this was lost.
        keep_reply(request.call_id, self._actor().wait.remote(request.model_dump(mode="json")))
        return future

    def statistics(self) -> AgentStatistics:
        """The agent actor's cumulative metrics (calls, errors, tokens, tool calls, latency)."""
        return AgentStatistics.model_validate(wait(self._actor().metrics.remote(), what=f"agent=<{self.name}> | the agent actor"))

    def shutdown(self) -> None:
        """Stop the actor (the process) serving this agent for the calling job's code.

        Handles with an equal spec share that actor, so they are stopped too; their next call
        starts a new one. Conversations stay in their files and are resumed, and calls
        in flight run again when the next actor starts, as after a crash. A no-op when no
        actor runs.
        """
        namespace = current_engine().config.namespace
        name = self.actor_name()
        forget_agent_actor(namespace, name)
        try:
            actor = ray.get_actor(name, namespace=namespace)
        except ValueError:
            return
        ray.kill(actor, no_restart=True)

    def messages(self, conversation: str) -> list[dict[str, Any]]:
        """The strands messages of a conversation (for inspection and tests)."""
        return list(wait(self._actor().messages.remote(conversation), what=f"agent=<{self.name}> | the agent actor"))

    # -- plumbing --------------------------------------------------------------------------

    def _substitute(self) -> StrandsAgent | None:
        """The agent a recovery `Fallback` put in this one's place for the SOP whose handler
        runs here, if any (see `sopy_actors.core.context.agent_substitute`)."""
        spec = agent_substitute(self.name)
        if spec is None or spec.get("name") == self.name:
            return None
        return StrandsAgent(AgentSpec.model_validate(spec))

    def _request(
        self, prompt: str, sop: SOPHandle | None, conversation: str | None, deliver_to: SOPHandle | None, *, blocking: bool
    ) -> AgentRequest:
        if not isinstance(prompt, str) or not prompt:
            raise InputError("prompt must be a non-empty str", fields=("prompt",))
        owner = _owner(sop, blocking=blocking)
        if conversation is None:
            conversation = f"sop-{owner.sop_id}" if owner is not None else f"call-{uuid.uuid4().hex}"
        return AgentRequest(
            call_id=uuid.uuid4().hex,
            prompt=prompt,
            conversation=conversation,
            sop=owner,
            deliver_to=deliver_to,
        )

    def _future(self, request: AgentRequest) -> AgentFuture:
        namespace = current_engine().config.namespace
        return AgentFuture(agent=self.name, actor=self.actor_name(), namespace=namespace, request=request)

    def actor_name(self) -> str:
        """The name of the AgentActor serving this agent for the calling job's code.

        The spec and the job's runtime_env (its packages are named by content hash) name the
        actor, so a job shipping changed tool code gets an actor running that code.
        """
        return _spec_actor_name(self.spec) + current_engine().job_code_key()

    def _actor(self) -> Any:
        """The AgentActor of this spec, created on first use (one per spec per cluster).

        Raises:
            InputError: the actor must be created, but this handle was rebuilt from JSON and
                lacks the objects of its tool methods.
        """
        from sopy_actors.agents.actor import AgentActor

        namespace = current_engine().config.namespace
        name = self.actor_name()

        def create() -> Any:
            objects = self.spec.tool_objects()
            store = ray.get_actor(STORE_ACTOR, namespace=namespace)
            directory = agents_directory(str(wait(store.local_directory.remote(), what="the Store"))) / name
            options = ray_options(
                name=name,
                namespace=namespace,
                max_concurrency=_ACTOR_CONCURRENCY,
                resources=dict(self.spec.resources),
                runtime_env=current_engine().job_runtime_env(),  # user tool modules
            )
            return create_actor(AgentActor, options, self.spec.model_dump(mode="json"), str(directory), objects)

        return agent_actor(namespace, name, create)
