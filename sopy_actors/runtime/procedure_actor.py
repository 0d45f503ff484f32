"""ProcedureActor: runs handler code for SOPs; stateless, shared, restartable.

Everything crosses in JSON form (procedure, state, event), so SOP hosts never import user code
and this actor is the only place a workflow's classes are loaded.
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from typing import Any

import ray

from sopy_actors.core.codec import (
    decode_procedure,
    decode_state,
    encode_procedure,
    encode_state,
)
from sopy_actors.core.events import event_from_wire
from sopy_actors.core.transition import Filters, step
from sopy_actors.errors import SopyError

logger = logging.getLogger(__name__)

calling_sop: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "sopy_calling_sop", default=None
)
"""The SOP whose handler runs in this thread; a sub-SOP started here becomes its child."""


def run_call(
    sop_id: str,
    procedure_data: dict[str, Any],
    state_data: dict[str, Any],
    event_data: dict[str, Any],
    filters: Filters,
) -> dict[str, Any]:
    """Decode, run the transition function, encode; errors come back as values, not raised.

    Returns:
        {"outcome", "procedure", "state", "prompt", "handler", "seconds"} or {"error": SopyError}.
    """
    started = time.perf_counter()
    token = calling_sop.set(sop_id)
    try:
        procedure = decode_procedure(procedure_data)
        state = decode_state(state_data)
        event = event_from_wire(event_data)
        transition = step(procedure, state, event, filters=filters, sop_id=sop_id)
        return {
            "outcome": transition.outcome.value,
            "procedure": encode_procedure(transition.procedure),
            "state": encode_state(transition.state),  # type: ignore[arg-type]
            "prompt": transition.prompt,
            "handler": transition.handler,
            "event_type": type(event).__name__,
            "seconds": time.perf_counter() - started,
        }
    except SopyError as error:
        return {"error": error, "seconds": time.perf_counter() - started}
    finally:
        calling_sop.reset(token)


@ray.remote
class ProcedureActor:
    """Threaded actor (`max_concurrency` handler calls at once); holds no SOP state."""

    def __init__(self, namespace: str) -> None:
        # Handlers may start sub-SOPs or attach to SOPs: give this process the engine.
        from sopy_actors.runtime.engine import install_worker_engine

        install_worker_engine(namespace)

    def handle(
        self,
        sop_id: str,
        procedure: dict[str, Any],
        state: dict[str, Any],
        event: dict[str, Any],
        filters: Filters,
    ) -> dict[str, Any]:
        """Run the handler for one event of one SOP (see `run_call`); runs in a pool thread."""
        return run_call(sop_id, procedure, state, event, filters)

    def location(self) -> dict[str, str | int]:
        """Where this actor runs: its process id and Ray node id."""
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}
