"""Cluster-wide circuit breakers for agents and tools: the breaker service and its clients.

One `BreakerActor` per deployment namespace (`sopy-breakers`, detached, created by the first
agent actor that needs it) holds a `Circuit` per target (`sopy_actors.agents.circuit_board`):
`agent:<agent name>` and `tool:<tool name>`, shared by every SOP and agent actor of the
cluster. Declare breakers on the spec:

    StrandsAgent(tools=[fetch], name="researcher",
                 breaker=BreakerSettings(failure_threshold=3, window=60, cool_down=30),
                 tool_breakers={"fetch": BreakerSettings(failure_threshold=5)})

- Agent: each invocation asks `agent:<name>` first. Refused, the call fails at once with
  `CircuitOpen` (retryable; `call()` / `result()` raise it, `AgentCompleted.error` carries it)
  and runs nothing; it is not counted as an agent call. A call whose model or agent loop
  raised counts as a failure, one that returned as a success; a cancelled call as neither.
- Tool: each call of a tool with a breaker asks `tool:<name>` after the SOP accepted its use
  event, before it runs. Refused, the tool does not run: the model gets an error tool result
  ("Not run: circuit=<tool:fetch> | open: ...") and the SOP gets `ToolFailed` whose error is
  the `CircuitOpen`. A tool that raised or returned an error result counts as a failure.

Agents without a breaker never talk to the service. A service that does not answer lets the
call through (logged): breakers protect targets, they must not stop the cluster. The circuits
live in the service's memory; after a restart of its process every circuit starts closed.
The Monitor reads the circuits for `sopy_circuit_state{target}` and `HealthCheck` payloads.
Breakers act on the actor runtime only; an agent run in process (`agents.local`) has none.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import ray

from sopy_actors.agents.circuit_board import CircuitBoard, agent_target, tool_target
from sopy_actors.agents.spec import AgentSpec
from sopy_actors.errors import CircuitOpen, error_to_wire
from sopy_actors.recovery.breaker import BreakerSettings, Circuit
from sopy_actors.runtime.engine import current_engine
from sopy_actors.runtime.options import create_actor, ray_options
from sopy_actors.runtime.rayutil import wait

__all__ = ["BREAKER_ACTOR", "AgentBreakers", "BreakerActor", "breaker_service", "circuits"]

logger = logging.getLogger(__name__)

BREAKER_ACTOR = "sopy-breakers"
_CALL_TIMEOUT = 30.0


@ray.remote
class BreakerActor:
    """The breaker service: every circuit of the namespace (a sync actor: one call at a time)."""

    def __init__(self) -> None:
        self._board = CircuitBoard()

    def admit(self, target: str, settings: dict[str, Any]) -> dict[str, Any] | None:
        """Let one call to `target` through (None), or refuse it: the `CircuitOpen`, as error wire."""
        try:
            self._board.admit(target, BreakerSettings.model_validate(settings))
        except CircuitOpen as refusal:
            return error_to_wire(refusal)
        return None

    def record(self, target: str, ok: bool) -> None:
        """A call admitted earlier ended, `ok` or failed."""
        self._board.record(target, ok=ok)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every circuit as it stands now, as JSON data, by target."""
        return self._board.snapshot()


def breaker_service(namespace: str) -> Any:
    """The namespace's breaker service, created on first use (get-or-create by name; blocks)."""
    return create_actor(BreakerActor, ray_options(name=BREAKER_ACTOR, namespace=namespace))


def circuits() -> dict[str, Circuit]:
    """Every circuit breaker of the cluster as it stands now, by target (blocking; any process
    connected with `init()`). Empty until an agent with a breaker was first called.

    Raises:
        RuntimeUnavailable: `init()` has not run here, or the service did not answer.
    """
    namespace = current_engine().config.namespace
    try:
        actor = ray.get_actor(BREAKER_ACTOR, namespace=namespace)
    except ValueError:
        return {}
    snapshot = wait(actor.snapshot.remote(), _CALL_TIMEOUT, what="the breaker service")
    return {target: Circuit.model_validate(data) for target, data in snapshot.items()}


class AgentBreakers:
    """The circuits one agent actor consults, through the breaker service (async).

    Runs on the agent actor's event loop. Targets without settings here are not guarded:
    `admit` lets them through and `record` ignores them, without a call to the service.

    Args:
        namespace: the deployment's namespace.
        settings: breaker settings by target.
    """

    def __init__(self, namespace: str, settings: Mapping[str, BreakerSettings]) -> None:
        self._namespace = namespace
        self._settings = dict(settings)
        self._actor: Any = None
        self._lock = asyncio.Lock()

    @classmethod
    def of(cls, spec: AgentSpec, namespace: str) -> AgentBreakers | None:
        """The breakers a spec declares (`breaker`, `tool_breakers`), or None if it declares none."""
        settings = {tool_target(tool): value for tool, value in spec.tool_breakers.items()}
        if spec.breaker is not None:
            settings[agent_target(spec.name)] = spec.breaker
        return cls(namespace, settings) if settings else None

    def guards(self, target: str) -> bool:
        """Whether calls to `target` go through a breaker."""
        return target in self._settings

    async def admit(self, target: str) -> dict[str, Any] | None:
        """None if a call to `target` may go ahead now; else the `CircuitOpen` refusing it, as error wire."""
        settings = self._settings.get(target)
        if settings is None:
            return None
        refusal: dict[str, Any] | None = await self._call(target, "admit", settings.model_dump(mode="json"))
        return refusal

    async def record(self, target: str, *, ok: bool) -> None:
        """A call to `target` that `admit` let through ended, `ok` or failed."""
        if target in self._settings:
            await self._call(target, "record", ok)

    async def _call(self, target: str, method: str, *args: Any) -> Any:
        try:
            async with self._lock:
                if self._actor is None:
                    loop = asyncio.get_running_loop()
                    self._actor = await loop.run_in_executor(None, breaker_service, self._namespace)
            return await asyncio.wait_for(getattr(self._actor, method).remote(target, *args), _CALL_TIMEOUT)
        except (TimeoutError, ray.exceptions.RayError) as error:
            if isinstance(error, ray.exceptions.ActorDiedError):
                self._actor = None
            logger.warning(
                "target=<%s>, method=<%s> | the breaker service did not answer (%s: %s); the call goes ahead",
                target, method, type(error).__name__, error,
            )
            return None
