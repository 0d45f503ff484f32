"""AgentFuture: a submitted agent call, as plain data that reattaches to its actor.

A future is a frozen pydantic model (actor name, namespace and the call's request), so SOPy code
may keep it where it keeps anything: in a procedure attribute or in state. It survives the
runtime's JSON checkpoints and can be checked from any process connected to the cluster.
The call itself runs in the AgentActor whether or not anybody waits; asking an actor that
restarted since about a call it does not know starts that call again (same call id).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import ray
from pydantic import BaseModel, ConfigDict

from sopy_actors.agents.results import AgentResult
from sopy_actors.errors import AgentError, error_from_wire
from sopy_actors.runtime.engine import on_uninstall
from sopy_actors.runtime.handle import SOPHandle
from sopy_actors.runtime.rayutil import wait

__all__ = ["AgentFuture", "AgentRequest", "agent_actor", "forget_agent_actor", "keep_reply", "reply_to_result"]

_actors: dict[tuple[str, str], Any] = {}  # (namespace, actor name) -> its handle, looked up once
_actors_lock = threading.Lock()


_REPLIES_KEPT = 10_000  # replies of submitted calls held until result() takes them (oldest dropped)
_replies: OrderedDict[str, Any] = OrderedDict()  # call id -> the ObjectRef of its actor's `wait`
_replies_lock = threading.Lock()


def keep_reply(call_id: str, reply: Any) -> None:
    """Hold the reply (an ObjectRef of `AgentActor.wait`) of a call submitted from this process,
    for its future's `result()`: no second actor call then. Beyond `_REPLIES_KEPT`, the oldest
    are dropped (their `result()` asks the actor again; calls are idempotent by id)."""
    with _replies_lock:
        _replies[call_id] = reply
        while len(_replies) > _REPLIES_KEPT:
            _replies.popitem(last=False)


def _take_reply(call_id: str) -> Any:
    with _replies_lock:
        return _replies.pop(call_id, None)


def _forget_all() -> None:
    with _actors_lock:
        _actors.clear()
    with _replies_lock:
        _replies.clear()


on_uninstall(_forget_all)  # actor handles and replies of one Ray session are no good in the next


def agent_actor(namespace: str, name: str, create: Callable[[], Any] | None = None) -> Any:
    """The AgentActor `name` (a handle remembered in this process), created by `create` if it
    is not running; None if it is not and there is no `create`."""
    with _actors_lock:
        actor = _actors.get((namespace, name))
        if actor is None:
            try:
                actor = ray.get_actor(name, namespace=namespace)
            except ValueError:
                if create is None:
                    return None
                actor = create()
            _actors[(namespace, name)] = actor
        return actor


def forget_agent_actor(namespace: str, name: str) -> None:
    """Drop the remembered handle (the actor was stopped, or died for good)."""
    with _actors_lock:
        _actors.pop((namespace, name), None)


class AgentRequest(BaseModel):
    """One agent call, as sent to the AgentActor.

    Attributes:
        call_id: unique id of the call (also the id of its AgentCompleted event).
        prompt: the user prompt.
        conversation: the conversation id it continues.
        sop: the SOP whose tool events it sends, or None (unguarded).
        deliver_to: the SOP that receives AgentCompleted when the call ends, or None.
    """

    model_config = ConfigDict(frozen=True)

    call_id: str
    prompt: str
    conversation: str
    sop: SOPHandle | None = None
    deliver_to: SOPHandle | None = None


def reply_to_result(reply: dict[str, Any], agent: str) -> AgentResult:
    """The AgentResult of an actor reply, or raise its error.

    Raises:
        AgentError: the call failed or was cancelled (`retryable` says whether to try again).
        CircuitOpen: the agent's circuit breaker refused the call (it was not made).
    """
    if "error" in reply:
        raise error_from_wire(reply["error"])
    return AgentResult.model_validate(reply["ok"])


class AgentFuture(BaseModel):
    """The pending result of `StrandsAgent.submit`; storable in procedure attributes and state.

    Attributes:
        agent: the agent's name.
        actor: the AgentActor's name.
        namespace: the Ray namespace of the deployment.
        request: the call.
    """

    model_config = ConfigDict(frozen=True)

    agent: str
    actor: str
    namespace: str
    request: AgentRequest

    @property
    def call_id(self) -> str:
        """The call's id (the `call_id` of its AgentCompleted event)."""
        return self.request.call_id

    def _actor(self) -> Any:
        actor = agent_actor(self.namespace, self.actor)
        if actor is None:
            raise AgentError(f"agent=<{self.agent}> | agent actor {self.actor} is gone", agent=self.agent, retryable=True)
        return actor

    def _get(self, ref: Any, timeout: float | None) -> Any:
        return wait(ref, timeout, what=f"agent=<{self.agent}>, call=<{self.call_id}> | the agent actor", on_death=self._died)

    def _died(self, message: str) -> AgentError:
        forget_agent_actor(self.namespace, self.actor)  # a new actor of that name gets a new handle
        return AgentError(message, agent=self.agent, retryable=True)

    def done(self) -> bool:
        """True once the call finished (with a result, an error, or cancelled)."""
        return bool(self._get(self._actor().poll.remote(self.request.model_dump(mode="json")), None))

    def result(self, timeout: float | None = None) -> AgentResult:
        """Wait for the call and return its result.

        Raises:
            AgentError: the call failed or was cancelled.
            CircuitOpen: the agent's circuit breaker refused the call (it was not made).
            TimeoutError: no result within `timeout` seconds (the call goes on).
        """
        reply = None
        kept = _take_reply(self.call_id)
        if kept is not None:
            try:
                reply = self._get(kept, timeout)
            except TimeoutError:
                keep_reply(self.call_id, kept)  # still good for the next result()
                raise
            except AgentError:  # the actor died after the submit: a successor resumes the call
                if agent_actor(self.namespace, self.actor) is None:
                    raise
        if reply is None:
            reply = self._get(self._actor().wait.remote(self.request.model_dump(mode="json")), timeout)
        return reply_to_result(reply, self.agent)

    def cancel(self) -> bool:
        """Cancel the call; True if it had not finished. Its result() then raises AgentError."""
        return bool(self._get(self._actor().cancel.remote(self.call_id), None))
