"""ProcedureActor: runs handler code for SOPs; stateless, shared, restartable.

Everything crosses in JSON form (procedure, state, event), so SOP hosts never import user code
and this actor is the only place a workflow's classes are loaded.
"""

from __future__ import annotations

import json
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
    procedure_class,
)
from sopy_actors.core.context import handling
from sopy_actors.core.events import event_from_wire, event_type_named
from sopy_actors.core.graph import may_refuse
from sopy_actors.core.options import ProcedureOptions, Semantics
from sopy_actors.core.references import definition_of, resolve_reference
from sopy_actors.core.transition import Filters, step
from sopy_actors.errors import HandlerError, InputError, SopyError, StateError, error_from_wire, error_to_wire
from sopy_actors.recovery.causes import raised_wire
from sopy_actors.runtime.blobs import StoreBlobs
from sopy_actors.runtime.engine import install_worker_engine
from sopy_actors.runtime.handler_runs import HandlerRuns
from sopy_actors.runtime.heap import settle
from sopy_actors.runtime.messages import ErrorWire, HandlerCall, HandlerResult
from sopy_actors.state.lazy import collect_sections, store_sections, use_blob_store
from sopy_actors.telemetry.reporter import MetricsReporter

logger = logging.getLogger(__name__)

_MAX_STATE_BYTES = ProcedureOptions().max_state_bytes


def run_call(call: HandlerCall) -> HandlerResult:
    """Decode, run the transition function, encode; errors come back as values, not raised."""
    started = time.perf_counter()
    try:
        procedure = decode_procedure(call.procedure)
        state = decode_state(call.state)
        event = event_from_wire(call.event)
        filters = Filters(tuple(call.filters["observed"]), tuple(call.filters["agents"]))
        with handling(call.sop_id, call.substitutes):
            semantics = Semantics.model_validate(call.semantics)
            # Decoded for this call alone: the handler may change them in place, uncopied.
            transition = step(
                procedure, state, event, filters=filters, semantics=semantics, sop_id=call.sop_id, owned=True
            )
        try:
            with collect_sections() as sections:
                state_data = encode_state(transition.state)
        except Exception as error:  # e.g. a value with no JSON form: this SOP's problem only
            raise StateError(
                f"sop=<{call.sop_id}>, procedure=<{call.procedure.get('name')}> | the new state cannot be "
                f"checkpointed as JSON: {type(error).__name__}: {error}; nothing was committed"
            ) from error
        store_sections(sections)  # changed lazy sections are durable before a checkpoint names them
        result: HandlerResult = {
            "outcome": transition.outcome.value,
            "procedure": _unlike_the_call(encode_procedure(transition.procedure), call.procedure, type(procedure)),
            "state": state_data,
            "prompt": transition.prompt,
            "handler": transition.handler,
            "event_type": type(event).__name__,
            "seconds": time.perf_counter() - started,
        }
        if transition.raised is not None:  # a rejection a recovery policy may answer instead
            result["raised"] = _raised(call, transition.raised, type(event).__name__)
        return result
    except Exception as error:
        if not isinstance(error, SopyError):
            logger.exception("sop=<%s> | handler call failed", call.sop_id)
        failed: HandlerResult = {"error": error_to_wire(error), "seconds": time.perf_counter() - started}
        if isinstance(error, HandlerError) and isinstance(error.__cause__, Exception):
            failed["raised"] = _raised(call, error.__cause__, error.event_type)
        return failed


_RETURNED_IF_CHANGED = ("definition", "options", "prompt")
"""Parts of a result's procedure left out when equal to the call's (the host puts its own back,
`ProcedureCalls`): usually unchanged, and a definition or a prompt can be kilobytes."""
_ABSENT = object()


def _unlike_the_call(encoded: dict[str, Any], called: dict[str, Any], called_class: type[Any]) -> dict[str, Any]:
    for part in _RETURNED_IF_CHANGED:
        if part in encoded and encoded[part] == _as_called(called, part, called_class):
            del encoded[part]
    return encoded


def _as_called(called: dict[str, Any], part: str, called_class: type[Any]) -> Any:
    """A part of the call's procedure; a definition the host left out (this actor had it) is
    the one the class was built from."""
    if part in called:
        return called[part]
    definition = definition_of(called_class) if part == "definition" else None
    return _ABSENT if definition is None else definition.data


def _raised(call: HandlerCall, error: Exception, event_type: str) -> ErrorWire:
    return raised_wire(error, sop_id=call.sop_id, procedure=str(call.procedure.get("name")), event_type=event_type)


def _encode(call: HandlerCall, result: HandlerResult) -> str:
    """The result as JSON, refused with a StateError if its state is over the size limit."""
    encoded = json.dumps(result)
    limit = int((call.procedure.get("options") or {}).get("max_state_bytes", _MAX_STATE_BYTES))
    if "state" not in result or len(encoded) <= limit:
        return encoded
    error = StateError(
        f"sop=<{call.sop_id}>, procedure=<{call.procedure.get('name')}> | the new state is {len(encoded)} bytes "
        f"as JSON, over max_state_bytes={limit}: keep large data out of the state (files, a database, "
        "lazy sections) or raise max_state_bytes in the procedure's sop_options; nothing was committed"
    )
    return json.dumps({"error": error_to_wire(error), "seconds": result.get("seconds", 0.0)})


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
        use_blob_store(StoreBlobs(namespace, self._metrics))  # lazy sections, counted
        self._runs = HandlerRuns(max_concurrency, run_call)
        settle()

    def handle_batch(self, calls_json: str) -> str:
        """Run the handlers of several SOPs' events; results in call order.

        Args:
            calls_json: a JSON list of `HandlerCall`s. JSON crosses far faster than Ray's
                pickling of nested dicts.

        Returns:
            The JSON list of their `HandlerResult`s; a call still running after the batch
            stalled is `{"pending": token}` (fetch it with `collect`). A result whose state is
            over the procedure's `max_state_bytes` is refused with a `StateError`.

        Up to `max_concurrency` calls run side by side, as separate Ray calls would, so one
        handler that blocks (on a child SOP, an agent) or hangs does not hold up the rest. A
        batch of one call runs on this thread when a slot is free, and is never answered
        pending: the host bounds its wait by the call's deadline. The actor has twice as many
        threads as slots, so its other methods are served while every slot holds a hung handler.
        A call received past its deadline is answered `TimedOut` without running.
        """
        calls = [HandlerCall(*call) for call in json.loads(calls_json)]
        alone = self._runs.run_alone(calls[0]) if len(calls) == 1 else None
        results = [alone] if alone is not None else self._runs.run_batch(calls)
        return "[" + ",".join(_encode(call, result) for call, result in zip(calls, results, strict=True)) + "]"

    def construct(self, reference: str, definition: Any = None) -> dict[str, Any]:
        """A new instance of the procedure class `reference` (`module:qualname`, or `module@key`
        built from `definition`), encoded: where a recovery `Fallback` moves an SOP. Errors come
        back as `{"error": wire}`."""
        try:
            return {"value": encode_procedure(procedure_class(reference, definition)())}
        except Exception as error:
            return {"error": error_to_wire(error)}

    def recovery_policy(self, reference: str, definition: Any = None) -> dict[str, Any]:
        """The `sop_recovery` of procedure class `reference` (see `construct`) as JSON
        (`{"value": None}` when it declares none); errors come back as `{"error": wire}`."""
        try:
            policy = getattr(procedure_class(reference, definition), "sop_recovery", None)
            return {"value": None if policy is None else policy.model_dump(mode="json")}
        except Exception as error:
            return {"error": error_to_wire(error)}

    def may_refuse(self, reference: str, event_type: str, definition: Any = None) -> dict[str, Any]:
        """`{"value": bool}`: whether procedure class `reference` (see `construct`) may refuse an
        event of wire type `event_type`, read from its handler's code (`core.graph.may_refuse`);
        errors come back as `{"error": wire}`."""
        try:
            return {"value": may_refuse(procedure_class(reference, definition), event_type_named(event_type))}
        except Exception as error:
            return {"error": error_to_wire(error)}

    def retryable(self, predicate: str, error: dict[str, Any]) -> dict[str, Any]:
        """`{"value": bool}`: what the `retry_on` predicate `predicate` says of `error` (wire form)."""
        try:
            function = resolve_reference(predicate)
            if not callable(function):
                raise InputError(f"retry_on {predicate} is not a function", fields=("retry_on",))
            return {"value": bool(function(error_from_wire(error)))}
        except Exception as failure:
            return {"error": error_to_wire(failure)}

    def collect(self, token: str) -> str:
        """The JSON `HandlerResult` of a call `handle_batch` answered as pending."""
        return json.dumps(self._runs.collect(token))

    def location(self) -> dict[str, str | int]:
        """Where this actor runs: its process id and Ray node id."""
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}
