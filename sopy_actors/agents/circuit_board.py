"""The circuits of a cluster's agents and tools, as the breaker service holds them (plain Python).

A target names what a circuit guards: `agent:<agent name>` for an agent's invocations and
`tool:<tool name>` for a tool, whichever agent calls it. Names are the agents' and tools' own
(`AgentSpec.name`, the strands tool name), so two agents that use the same tool share its
circuit, and so do two agent actors serving specs of the same name.

`CircuitBoard` keeps one `Circuit` (`sopy_actors.recovery.breaker`) per target with one clock;
`sopy_actors.agents.breakers.BreakerActor` wraps one for the whole cluster. No Ray here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sopy_actors.errors import CircuitOpen, InputError
from sopy_actors.recovery.breaker import BreakerSettings, Circuit

__all__ = ["CircuitBoard", "agent_target", "tool_target"]


def agent_target(agent: str) -> str:
    """The target of an agent's circuit: `agent:<name>`."""
    return f"agent:{agent}"


def tool_target(tool: str) -> str:
    """The target of a tool's circuit: `tool:<name>`."""
    return f"tool:{tool}"


class CircuitBoard:
    """One `Circuit` per target, moved on by one clock; not thread-safe (one owner calls it).

    Args:
        clock: returns the current time in seconds (default `time.time`; tests pass a fake).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._circuits: dict[str, Circuit] = {}

    def admit(self, target: str, settings: BreakerSettings) -> None:
        """Let one call to `target` through now, or refuse it.

        The first call to a target creates its closed circuit. A call with other settings
        than the circuit's replaces them and keeps the circuit's state: the last one declared
        wins.

        Raises:
            CircuitOpen: the circuit is open, or half-open with its one probe call out.
            InputError: `target` is not `agent:<name>` or `tool:<name>`.
        """
        if not target.startswith(("agent:", "tool:")) or target.endswith(":"):
            raise InputError(f"circuit target must be 'agent:<name>' or 'tool:<name>', got {target!r}", fields=("target",))
        circuit = self._circuits.get(target) or Circuit(target=target, settings=settings)
        if circuit.settings != settings:
            circuit = circuit.model_copy(update={"settings": settings})
        try:
            self._circuits[target] = circuit.admit(self._clock())
        except CircuitOpen:
            self._circuits[target] = circuit  # refused: the circuit as it was (with the new settings)
            raise

    def record(self, target: str, *, ok: bool) -> None:
        """A call admitted earlier ended: `ok` or failed. Unknown targets are ignored (the
        board was rebuilt since the call was admitted)."""
        circuit = self._circuits.get(target)
        if circuit is not None:
            now = self._clock()
            self._circuits[target] = circuit.succeeded(now) if ok else circuit.failed(now)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every circuit as it stands now, as JSON data (`Circuit`'s fields), by target."""
        now = self._clock()
        return {target: circuit.at(now).model_dump(mode="json") for target, circuit in sorted(self._circuits.items())}
