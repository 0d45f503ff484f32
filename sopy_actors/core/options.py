"""Typed per-class options for procedure actors (declared on procedure classes; pure data)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ProcedureOptions"]


class ProcedureOptions(BaseModel):
    """How a procedure class runs: declare `sop_options = ProcedureOptions(...)` on the class.

    Attributes:
        placement: "own" gives the class its own actor(s); "shared" runs it in one actor that
            all light "shared" classes use.
        replicas: how many actors serve the class (events go round robin).
        max_concurrency: handler calls one actor runs at once (threads).
        num_cpus: CPUs each actor holds (0: placement only).
        resources: custom resources each actor needs, e.g. {"gpu_node": 0.01}.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    placement: Literal["own", "shared"] = "own"
    replicas: int = Field(default=1, ge=1, le=64)
    max_concurrency: int = Field(default=16, ge=1, le=1000)
    num_cpus: float = Field(default=0, ge=0)
    resources: dict[str, float] = Field(default_factory=dict)
