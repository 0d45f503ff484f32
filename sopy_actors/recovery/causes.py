"""Which kind of recovery cause a failure is (`CauseKind`), from the exception or its wire form.

- an agent call failed (`AgentError`) or was refused by an open breaker (`CircuitOpen`): agent_error;
- a child SOP failed (`SOPFailed` raised by waiting on it, or its `SubSOPFailed` event that no
  handler took): sub_sop_failed;
- something timed out (`TimedOut`, `TimeoutError`, a procedure's `timeout`): timeout;
- anything else a handler raised: handler_raised.

The rejection limit (`RecoveryExhausted` from the commit rule) is its own kind, rejection_limit.
Pure; no Ray.
"""

from __future__ import annotations

from typing import Any

from sopy_actors.errors import (
    AgentError,
    CircuitOpen,
    HandlerError,
    RecoveryExhausted,
    SOPFailed,
    SopyError,
    TimedOut,
    error_from_wire,
    error_to_wire,
    is_retryable,
)
from sopy_actors.recovery.ladder import Cause
from sopy_actors.recovery.policy import CauseKind

__all__ = ["cause_kind", "cause_of", "cause_of_wire", "raised_wire"]


def cause_kind(error: BaseException) -> CauseKind:
    """The cause kind of an exception (see the module docstring)."""
    if isinstance(error, AgentError | CircuitOpen):
        return "agent_error"
    if isinstance(error, RecoveryExhausted):
        return "rejection_limit"
    if isinstance(error, SOPFailed):
        return "sub_sop_failed"
    if isinstance(error, TimedOut | TimeoutError):
        return "timeout"
    return "handler_raised"


def raised_wire(error: BaseException, *, sop_id: str, procedure: str, event_type: str) -> dict[str, Any]:
    """A handler's exception in the error wire format, keeping what recovery needs.

    A `SopyError` keeps its class; a `TimeoutError` becomes `TimedOut`; another exception a
    `HandlerError` naming it, whose `retryable` is the original's (a `ConnectionError` stays
    retryable).
    """
    if isinstance(error, SopyError):
        return error_to_wire(error)
    if isinstance(error, TimeoutError):
        where = f"sop=<{sop_id}>, procedure=<{procedure}>, event=<{event_type}>"
        return error_to_wire(TimedOut(f"{where} | handler raised TimeoutError: {error}"))
    wrapped = HandlerError(sop_id=sop_id, procedure=procedure, event_type=event_type, cause=error)
    wrapped.retryable = is_retryable(error)
    return error_to_wire(wrapped)


def cause_of_wire(error: dict[str, Any]) -> Cause:
    """The recovery cause of an error in wire form (a handler's, or a host's own)."""
    return Cause(kind=cause_kind(error_from_wire(error)), error=error)


def cause_of(error: BaseException) -> Cause:
    """The recovery cause of an exception."""
    return Cause(kind=cause_kind(error), error=error_to_wire(error))
