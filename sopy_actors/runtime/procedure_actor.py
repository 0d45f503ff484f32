"""ProcedureActor: runs handler code for SOPs; stateless, shared, restartable.

Everything crosses in JSON form (procedure, state, event), so SOP hosts never import user code
and this actor is the only place a workflow's classes are loaded.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
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
from sopy_actors.monitoring.reporter import MetricsReporter

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

    def __init__(
        self, namespace: str, max_concurrency: int = 16, job_runtime_env: dict[str, Any] | None = None
    ) -> None:
        # Handlers may start sub-SOPs, attach to SOPs and call agents: give this process the
        # engine, with the runtime_env of the job whose SOPs it serves (see job_runtime_env()).
        from sopy_actors.runtime.engine import install_worker_engine

        install_worker_engine(namespace, job_runtime_env)
        # Counts this actor's restarts; the host reports the handler durations it gets back.
        self._metrics = MetricsReporter(namespace, kind="procedure")
        self._workers = max_concurrency
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="sopy-handler")

    def handle_batch(self, calls_json: str) -> tuple[str, dict[int, SopyError]]:
        """Run the handlers of several SOPs' events; results in call order.

        Args:
            calls_json: a JSON list of [sop_id, procedure, state, event, [observed, agents]],
                all in wire form. JSON crosses far faster than Ray's pickling of nested dicts.

        Returns:
            The JSON list of `run_call` results, where a failed call's entry lacks "error",
            and the errors by call index.

        Up to `max_concurrency` calls run side by side, as separate Ray calls would, so one
        handler that blocks (on a child SOP, an agent) does not hold up the rest; a larger
        batch is cut into that many runs of consecutive calls, one thread each, which keeps
        thread hand-offs (and GIL contention) per run instead of per call.
        """
        calls = [
            (sop_id, procedure, state, event, Filters(tuple(observed), tuple(agents)))
            for sop_id, procedure, state, event, (observed, agents) in json.loads(calls_json)
        ]
        if len(calls) == 1:
            results = [run_call(*calls[0])]
        else:
            runs = min(self._workers, len(calls))
            size = -(-len(calls) // runs)
            chunks = [calls[i : i + size] for i in range(0, len(calls), size)]
            ran = self._pool.map(lambda chunk: [run_call(*call) for call in chunk], chunks)
            results = [result for chunk in ran for result in chunk]
        errors = {index: result.pop("error") for index, result in enumerate(results) if "error" in result}
        return json.dumps(results), errors

    def location(self) -> dict[str, str | int]:
        """Where this actor runs: its process id and Ray node id."""
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}
