"""Typed per-class options for procedure actors (declared on procedure classes; pure data)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["STRICT", "ProcedureOptions", "Semantics"]


class ProcedureOptions(BaseModel):
    """How a procedure class runs: declare `sop_options = ProcedureOptions(...)` on the class.

    Attributes:
        placement: "own" gives the class its own actor(s); "shared" runs it in one actor that
            all light "shared" classes use.
        replicas: how many actors serve the class (events go round robin).
        max_concurrency: handler calls one actor runs at once (on its worker threads, or on the
            thread that received a call alone in its batch).
        num_cpus: CPUs each actor holds (0: placement only).
        resources: custom resources each actor needs, e.g. {"gpu_node": 0.01}.
        handler_timeout: seconds a handler may run; past it the event fails with `TimedOut`
            (nothing is committed; the handler's thread runs on until the handler returns). A
            call alone in its batch is timed by the host from when it sent it.
        max_state_bytes: the largest state (as JSON) a handler may commit; larger fails the
            event with `StateError` (the host keeps every live SOP's state in memory).
        timeout: seconds an SOP may stay in this procedure (None: no limit). Past it, a durable
            timer raises a `timeout` recovery cause: the recovery policy answers it, and without
            one the SOP fails with `TimedOut`. Leaving the procedure disarms it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    placement: Literal["own", "shared"] = "own"
    replicas: int = Field(default=1, ge=1, le=64)
    max_concurrency: int = Field(default=16, ge=1, le=1000)
    num_cpus: float = Field(default=0, ge=0)
    resources: dict[str, float] = Field(default_factory=dict)
    handler_timeout: float = Field(default=300.0, gt=0)
    max_state_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class Semantics(BaseModel):
    """How an SOP treats rejections and failing handlers; the default is SOPy's.

    Attributes:
        rollback_rejected: False (SOPy): a handler that rejects (returns a str or raises)
            keeps the state changes it made; True: its state changes are discarded.
        count: "total" (SOPy): every rejection counts against `retry_limits`, successes do
            not reset the count; "consecutive": only rejections in a row count.
        handler_errors: "reject" (SOPy): a handler that raises rejects the event with its
            procedure's `recover_prompt`; "fail": an AssertionError rejects, anything else
            raises `HandlerError` and nothing is committed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rollback_rejected: bool = False
    count: Literal["total", "consecutive"] = "total"
    handler_errors: Literal["reject", "fail"] = "reject"


STRICT = Semantics(rollback_rejected=True, count="consecutive", handler_errors="fail")
"""Stricter than SOPy: rejections roll back, only consecutive ones count, exceptions fail."""
