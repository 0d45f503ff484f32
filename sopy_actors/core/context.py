"""Where code runs: the SOP whose handler runs in this thread, the agents its recovery replaced,
and the innermost `with sop:` run.

Plain context variables (no Ray). The engines set them; `sopy_actors.current_sop()` reads them.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

__all__ = ["agent_substitute", "handling", "handling_sop_id", "innermost_run", "within"]

_handling: contextvars.ContextVar[str | None] = contextvars.ContextVar("sopy_handling_sop", default=None)
_runs: contextvars.ContextVar[Any] = contextvars.ContextVar("sopy_with_run", default=None)
_substitutes: contextvars.ContextVar[dict[str, dict[str, Any]]] = contextvars.ContextVar("sopy_agent_substitutes")


def handling_sop_id() -> str | None:
    """The id of the SOP whose handler runs in this thread (in a ProcedureActor), else None.

    An SOP started while it is set becomes that SOP's child.
    """
    return _handling.get()


@contextlib.contextmanager
def handling(sop_id: str, substitutes: dict[str, dict[str, Any]] | None = None) -> Iterator[None]:
    """Mark the body as running a handler of `sop_id`.

    Args:
        substitutes: agents a recovery `Fallback` replaced for this SOP: the failed agent's
            name (or "*": every agent) -> the fallback agent's spec as JSON.
    """
    token = _handling.set(sop_id)
    replaced = _substitutes.set(substitutes or {})
    try:
        yield
    finally:
        _substitutes.reset(replaced)
        _handling.reset(token)


def agent_substitute(name: str) -> dict[str, Any] | None:
    """The spec (JSON) of the agent that replaces agent `name` in the handler running here, if any."""
    substitutes = _substitutes.get({})
    return substitutes.get(name) or substitutes.get("*")


def innermost_run() -> Any:
    """The run of the innermost `with sop:` block in this context, or None."""
    return _runs.get()


@contextlib.contextmanager
def within(run: Any) -> Iterator[None]:
    """Make `run` the innermost `with sop:` run for the body."""
    token = _runs.set(run)
    try:
        yield
    finally:
        _runs.reset(token)
