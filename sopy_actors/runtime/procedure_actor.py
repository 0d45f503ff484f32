"""ProcedureActor: runs handler code for SOPs; stateless, shared, restartable.

Everything crosses in JSON form (procedure, state, event), so SOP hosts never import user code
and this actor is the only place a workflow's classes are loaded.
"""

from __future__ import annotations

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
from sopy_actors.core.context import handling
from sopy_actors.core.events import event_from_wire
from sopy_actors.core.transition import Filters, step
from sopy_actors.errors import SopyError, error_to_wire
from sopy_actors.runtime.engine import install_worker_engine
from sopy_actors.runtime.messages import HandlerCall, HandlerResult
from sopy_actors.telemetry.reporter import MetricsReporter

logger = logging.getLogger(__name__)

def run_call(call: HandlerCall) -> HandlerResult:
    """Decode, run the transition function, encode; errors come back as values, not raised."""
    started = time.perf_counter()
    try:
        procedure = decode_procedure(call.procedure)
        state = decode_state(call.state)
        event = event_from_wire(call.event)
        filters = Filters(tuple(call.filters["observed"]), tuple(call.filters["agents"]))
        with handling(call.sop_id):
            transition = step(procedure, state, event, filters=filters, sop_id=call.sop_id)
        return {
            "outcome": transition.outcome.value,
            "procedure": encode_procedure(transition.procedure),
            "state": encode_state(transition.state),
            "prompt": transition.prompt,
            "handler": transition.handler,
            "event_type": type(event).__name__,
            "seconds": time.perf_counter() - started,
        }
    except Exception as error:
        if not isinstance(error, SopyError):
            logger.exception("sop=<%s> | handler call failed", call.sop_id)
        return {"error": error_to_wire(error), "seconds": time.perf_counter() - started}


@ray.remote
class ProcedureActor:
    """Threaded actor (`max_concurrency` handler calls at once); holds no SOP state."""

    def __init__(
        self, namespace: str, max_concurrency: int = 16, job_runtime_env: dict[str, Any] | None = None
    ) -> None:
        # Handlers may start sub-SOPs, attach to SOPs and call agents: give this process the
        # engine, with the runtime_env of the job whose SOPs it serves (see job_runtime_env()).
        install_worker_engine(namespace, job_runtime_env)
        # Counts this actor's restarts; the host reports the handler durations it gets back.
        self._metrics = MetricsReporter(namespace, kind="procedure")
        self._workers = max_concurrency
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="sopy-handler")

    def handle_batch(self, calls_json: str) -> str:
        """Run the handlers of several SOPs' events; results in call order.

        Args:
            calls_json: a JSON list of `HandlerCall`s. JSON crosses far faster than Ray's
                pickling of nested dicts.

        Returns:
            The JSON list of their `HandlerResult`s.

        Up to `max_concurrency` calls run side by side, as separate Ray calls would, so one
        handler that blocks (on a child SOP, an agent) does not hold up the rest; a larger
        batch is cut into that many runs of consecutive calls, one thread each, which keeps
        thread hand-offs (and GIL contention) per run instead of per call.
        """
        calls = [HandlerCall(*call) for call in json.loads(calls_json)]
        if len(calls) == 1:
            results = [run_call(calls[0])]
        else:
            runs = min(self._workers, len(calls))
            size = -(-len(calls) // runs)
            chunks = [calls[i : i + size] for i in range(0, len(calls), size)]
            ran = self._pool.map(lambda chunk: [run_call(call) for call in chunk], chunks)
            results = [result for chunk in ran for result in chunk]
        return json.dumps(results)

    def location(self) -> dict[str, str | int]:
        """Where this actor runs: its process id and Ray node id."""
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}
