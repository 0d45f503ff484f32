"""The `HealthCheck` event the Monitor sends to monitored SOPs, and its metrics model.

Pure Python (no Ray). The payload is a plain `dict` validated against `HealthMetrics`, so a
handler can do what SOPy's PredictiveRecovery does — `self.health_metrics.update(event.payload)`,
`metrics.get("memory_usage", 0)` — and the values checkpoint as JSON with the procedure.
`event.metrics` gives the same data as a typed model.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sopy_actors.core.events import Event
from sopy_actors.recovery.breaker import CircuitStateName

__all__ = ["DependencyStatus", "HealthCheck", "HealthMetrics", "NodeHealth"]


class NodeHealth(BaseModel):
    """One Ray node as the Monitor last measured it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    memory_usage: float = Field(ge=0)
    """Memory in use over the node's memory (or over the SOP's `memory_budget`), 0-1 and up."""
    memory_used_bytes: int = Field(ge=0)
    memory_total_bytes: int = Field(ge=0)
    cpu_usage: float = Field(ge=0, le=1)
    head: bool = False


class DependencyStatus(BaseModel):
    """The last result of a registered dependency probe."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    up: bool
    latency_seconds: float | None = None
    error: str | None = None
    checked_at: float | None = None


class HealthMetrics(BaseModel):
    """What a `HealthCheck` carries.

    Attributes:
        memory_usage: the highest memory ratio of any node (0-1; above 1 past a budget).
        cpu_usage: the highest CPU ratio of any node, 0-1.
        response_times: recent handler and agent-call durations in seconds, oldest first.
        error_rate: share of events whose handler failed over the last 60 s.
        error_rate_baseline: the same share over the last 10 minutes.
        rejection_rate: share of events rejected over the last 60 s.
        dependencies: each registered probe's last result, by probe name.
        nodes: each node's reading, by short node id.
        actor_restarts: sopy actor restarts since the Monitor's totals began.
        queued_events: events waiting on hosts.
        circuits: each circuit breaker's state (closed, half_open or open) by target
            (`agent:<name>`, `tool:<name>`; see `sopy_actors.agents.breakers`).
        sampled_at: Unix time of the reading.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    memory_usage: float = Field(default=0.0, ge=0)
    cpu_usage: float = Field(default=0.0, ge=0, le=1)
    response_times: list[float] = Field(default_factory=list)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_rate_baseline: float = Field(default=0.0, ge=0, le=1)
    rejection_rate: float = Field(default=0.0, ge=0, le=1)
    dependencies: dict[str, DependencyStatus] = Field(default_factory=dict)
    nodes: dict[str, NodeHealth] = Field(default_factory=dict)
    actor_restarts: int = Field(default=0, ge=0)
    queued_events: int = Field(default=0, ge=0)
    circuits: dict[str, CircuitStateName] = Field(default_factory=dict)
    sampled_at: float = 0.0


class HealthCheck(Event[dict[str, Any]]):
    """Health metrics delivered by the Monitor to an SOP that asked with `SOP.monitored()`.

    Optional: a procedure without a handler for it ignores it. The payload is `HealthMetrics`
    as plain JSON data (a dict); `metrics` validates it back into the model.
    """

    sop_optional: ClassVar[bool] = True
    sop_from_runtime: ClassVar[bool] = True

    @field_validator("payload", mode="before")
    @classmethod
    def _validate_metrics(cls, value: Any) -> Any:
        if isinstance(value, HealthMetrics):
            return value.model_dump(mode="json")
        return HealthMetrics.model_validate(value).model_dump(mode="json")

    @property
    def metrics(self) -> HealthMetrics:
        """The payload as a typed model."""
        return HealthMetrics.model_validate(self.payload)
