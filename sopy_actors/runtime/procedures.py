"""A host's calls to ProcedureActors: which actor runs a procedure class, batched per actor."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import ray

from sopy_actors.core.options import ProcedureOptions
from sopy_actors.core.references import DefinitionNeeded, definition_source, is_definition_reference
from sopy_actors.core.transition import Outcome
from sopy_actors.errors import RuntimeUnavailable, as_sopy_error, error_to_wire
from sopy_actors.runtime.coalesce import Coalescer
from sopy_actors.runtime.handler_runs import handler_timeout, timed_out
from sopy_actors.runtime.messages import FilterSpec, HandlerCall, HandlerResult, unwrap
from sopy_actors.runtime.options import code_runtime_env, create_actor, procedure_actor_name, ray_options, runtime_env_key
from sopy_actors.runtime.procedure_actor import ProcedureActor
from sopy_actors.runtime.records import SOPRecord
from sopy_actors.telemetry import names
from sopy_actors.telemetry.reporter import MetricsReporter

__all__ = ["ProcedureCalls"]

logger = logging.getLogger(__name__)

_CODE_CACHE = 10_000  # runtime_env objects remembered (hosts give SOPs of one job one object)
# Answers remembered per procedure class (options, actor names, policies, refusals, ignored
# events): generated workflow steps are new classes per workflow, so the caches are bounded.
_CLASS_CACHE = 10_000
# Definitions remembered as sent, per procedure actor: well under what an actor keeps
# (`KEPT_DEFINITIONS`), so that several hosts' sets mostly name definitions it still has.
_TAUGHT_CACHE = 1_000


class _Traffic:
    """Bytes of handler-call JSON a host sent to and received from procedure actors."""

    def __init__(self, metrics: MetricsReporter | None) -> None:
        self.sent = 0
        self.received = 0
        self._metrics = metrics

    def add(self, sent: int, received: int) -> None:
        self.sent += sent
        self.received += received
        if self._metrics is not None:
            self._metrics.count(names.HANDLER_BYTES, ("sent",), sent)
            self._metrics.count(names.HANDLER_BYTES, ("received",), received)


def _unavailable(error: Exception) -> HandlerResult:
    return {"error": error_to_wire(RuntimeUnavailable(f"procedure actor unavailable: {error}"))}


def _make_room(cache: dict[Any, Any] | set[Any], limit: int | None = None) -> None:
    """Empty a cache that is full (default limit `_CLASS_CACHE`); its answers are derived or
    asked again as needed."""
    if len(cache) >= (_CLASS_CACHE if limit is None else limit):
        cache.clear()


def _definition_for(record: SOPRecord, reference: str) -> Any:
    """The definition a class built from data (`reference`) is built from, where the SOP's
    procedure is built from the same one; else None (an imported class needs none)."""
    definition = record.procedure.get("definition")
    if definition is None or not is_definition_reference(reference):
        return None
    return definition if definition_source(reference) == definition_source(str(record.procedure["type"])) else None


def _definition_needed(result: HandlerResult) -> bool:
    """Whether the actor could not run the call because it lacks the definition left out of it."""
    return "error" in result and result["error"].get("type") == DefinitionNeeded.__name__


def _call_failed(error: Exception) -> HandlerResult:
    """The result of a handler call that failed in Ray (the actor lost, or its method raised)."""
    if isinstance(error, ray.exceptions.RayActorError):
        return _unavailable(error)
    return {"error": error_to_wire(as_sopy_error(error))}


async def _run_batch(actor: Any, traffic: _Traffic, calls: list[HandlerCall]) -> list[HandlerResult]:
    """One `ProcedureActor.handle_batch` round trip, JSON both ways.

    The actor may run a batch of one on its receiving thread, and then cannot answer it
    pending (see `HandlerRuns.run_alone`): its handler timeout is enforced here, up to the
    call's deadline (time queued before the actor took the call counts).
    """
    sent = json.dumps(calls)
    reply = actor.handle_batch.remote(sent)
    if len(calls) == 1:
        deadline = calls[0].deadline
        timeout = handler_timeout(calls[0].procedure) if deadline is None else max(0.0, deadline - time.time())
        try:
            async with asyncio.timeout(timeout):  # not `wait_for(reply.as_future())`: Ray deprecated it
                received = await reply
        except TimeoutError:  # nothing of it is committed; the actor does not start it late
            return [timed_out(calls[0])]
    else:
        received = await reply
    traffic.add(len(sent), len(received))
    results: list[HandlerResult] = json.loads(received)
    return results


class _Target(NamedTuple):
    """A procedure actor as a host calls it: its handle, the coalescer of its handler calls, and
    the definitions it has been sent (by `definition_source`), left out of its calls since."""

    actor: Any
    calls: Coalescer[HandlerCall, HandlerResult]
    taught: set[str]


class ProcedureCalls:
    """Runs handlers for one host: the calls of one event-loop turn go to each actor as one batch.

    Procedure actors are created on first use, one per class (`sop_options.replicas` of them,
    used round-robin) and per job code (see `procedure_actor_name`). Runs on the host's loop.

    A procedure class built from a definition (a generated workflow step) is sent with its
    definition (kilobytes) to each actor once: later calls leave it out, and the actor builds
    the class from what it kept. An actor that no longer has it (restarted, or dropped it)
    answers `DefinitionNeeded`, and the call is made again with the definition.

    Args:
        namespace: the deployment's namespace.
        metrics: where to count `sopy_handler_call_bytes_total` (None: not counted).
    """

    def __init__(self, namespace: str, metrics: MetricsReporter | None = None) -> None:
        self._namespace = namespace
        self.traffic = _Traffic(metrics)
        self._options: dict[str, ProcedureOptions] = {}
        self._actors: dict[str, _Target] = {}
        self._policies: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._refusing: dict[tuple[str, str, str], bool] = {}  # (code key, procedure type, event type)
        self._round_robin = 0
        # Derived from static data once, not per event: the job's code and its key by the
        # runtime_env object (kept alive here, so its id stays its own), actor names by class.
        self._codes: dict[int, tuple[dict[str, Any] | None, dict[str, Any] | None, str]] = {}
        self._names: dict[tuple[str, int, str], str] = {}
        self._ignored: set[tuple[str, str, str]] = set()  # (code key, procedure type, event type)
        self._pending: dict[str, _Target] = {}  # a slow handler's token: the actor running it

    def _code_of(self, runtime_env: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
        """The job's code in `runtime_env` (checkpoints from before it was stripped at start)
        and its `runtime_env_key`, computed once per runtime_env object."""
        cached = self._codes.get(id(runtime_env))
        if cached is None or cached[0] is not runtime_env:
            _make_room(self._codes, _CODE_CACHE)
            code = code_runtime_env(runtime_env)
            cached = self._codes[id(runtime_env)] = (runtime_env, code, runtime_env_key(code))
        return cached[1], cached[2]

    async def run(self, record: SOPRecord, event: dict[str, Any]) -> HandlerResult:
        """Run `event`'s handler in the SOP's current procedure; failures come back as `error`.

        The calls of one event-loop turn go to each actor as one batch. An event type the
        procedure class ignores (it has no handler for it, and the event is optional or in the
        class's `ignore`) is answered here, without a call, once a call has shown it: both are
        class attributes, so the answer holds for every SOP in that class.
        """
        if (known := self._known_ignored(record, event)) is not None:
            return known
        target = self._actor_for(record)
        try:
            result = await target.calls.call(self._call(record, event, target.taught))
            assert result is not None
            result = await self._collected(target.actor, result)
        except ray.exceptions.RayActorError as error:
            return _unavailable(error)
        if _definition_needed(result):
            result = await self._taught_again(target, record, event)
        return self._received(record, event, result, target.taught)

    async def run_many(
        self,
        runs: list[tuple[SOPRecord, dict[str, Any]]],
        answered: Callable[[list[int], list[HandlerResult]], Awaitable[None]],
    ) -> None:
        """`run` for several (record, event) pairs of different SOPs, one call per actor.

        `answered(indexes, results)` is awaited as each actor's call answers (events known to
        be ignored first), with the results of those indexes of `runs`. A slow handler's result
        is left `{"pending": token}`: fetch it with `collect`. A call that fails answers its
        events with the error; one whose `answered` raises leaves its events unanswered (logged).
        """
        known: dict[int, HandlerResult] = {}
        groups: dict[int, tuple[_Target, list[int]]] = {}
        for index, (record, event) in enumerate(runs):
            if (ignored := self._known_ignored(record, event)) is not None:
                known[index] = ignored
            else:
                target = self._actor_for(record)
                groups.setdefault(id(target.actor), (target, []))[1].append(index)

        async def answer(target: _Target, indexes: list[int], results: list[HandlerResult]) -> None:
            for position, (index, result) in enumerate(zip(indexes, results, strict=True)):
                if "pending" in result:
                    self._pending[result["pending"]] = target
                else:
                    results[position] = self._received(*runs[index], result, target.taught)
            await answered(indexes, results)

        async def send(target: _Target, indexes: list[int]) -> None:
            results = await self._batch(target, [runs[index] for index in indexes])
            lacking = [index for index, result in zip(indexes, results, strict=True) if _definition_needed(result)]
            if lacking:  # the actor lost definitions left out: the rest are answered now, these sent again
                done = [pair for pair in zip(indexes, results, strict=True) if not _definition_needed(pair[1])]
                if done:
                    await answer(target, [index for index, _ in done], [result for _, result in done])
                for index in lacking:
                    target.taught.discard(definition_source(str(runs[index][0].procedure["type"])))
                indexes, results = lacking, await self._batch(target, [runs[index] for index in lacking])
            await answer(target, indexes, results)

        # Every call finishes before this returns, whatever another one raised.
        sends = [send(target, indexes) for target, indexes in groups.values()]
        answers = [answered(list(known), list(known.values()))] if known else []
        for outcome in await asyncio.gather(*answers, *sends, return_exceptions=True):
            if isinstance(outcome, BaseException):
                logger.error("calls=<%d> | answering handler results failed", len(runs), exc_info=outcome)

    async def _batch(self, target: _Target, runs: list[tuple[SOPRecord, dict[str, Any]]]) -> list[HandlerResult]:
        """One batch call to `target` (a slow handler's result left pending); a call that fails
        answers every run with the error."""
        calls = [self._call(record, event, target.taught) for record, event in runs]
        try:
            return await _run_batch(target.actor, self.traffic, calls)
        except Exception as error:  # this actor's events fail; the others' go on
            if not isinstance(error, ray.exceptions.RayActorError):
                logger.error("calls=<%d> | handler batch failed", len(calls), exc_info=error)
            return [_call_failed(error)] * len(calls)

    async def collect(self, record: SOPRecord, event: dict[str, Any], result: HandlerResult) -> HandlerResult:
        """The result of a `run_many` call left pending (a slow handler), fetched from its actor."""
        target = self._pending.pop(str(result.get("pending")), None)
        if target is None:
            return result
        result = await self._collected(target.actor, result)
        if _definition_needed(result):
            result = await self._taught_again(target, record, event)
        return self._received(record, event, result, target.taught)

    async def _taught_again(self, target: _Target, record: SOPRecord, event: dict[str, Any]) -> HandlerResult:
        """The call made again with its definition, which the actor lacked (it restarted, or
        dropped it); a failure comes back as an error result."""
        target.taught.discard(definition_source(str(record.procedure["type"])))
        try:
            result = await target.calls.call(self._call(record, event, target.taught))
            assert result is not None
            return await self._collected(target.actor, result)
        except Exception as error:
            return _call_failed(error)

    def _known_ignored(self, record: SOPRecord, event: dict[str, Any]) -> HandlerResult | None:
        """The answer to an event type the SOP's procedure class is known to ignore, or None."""
        ignored = (self._code_of(record.runtime_env)[1], str(record.procedure["type"]), str(event.get("type")))
        if ignored not in self._ignored:
            return None
        return {
            "outcome": Outcome.IGNORED.value, "procedure": record.procedure, "state": record.state,
            "prompt": None, "handler": None, "event_type": ignored[2].rpartition(":")[2].rpartition(".")[2],
        }

    def _received(
        self, record: SOPRecord, event: dict[str, Any], result: HandlerResult, taught: set[str]
    ) -> HandlerResult:
        """`result` made whole: its procedure comes back without the parts equal to the call's
        (options, prompt, a definition; see `run_call`), and gets the record's again. Remembers
        an event type the class ignores (without filters, which ignore events per SOP, an
        ignored event was ignored by its class), and that the actor (its `taught`) has the
        record's definition."""
        if "definition" in record.procedure and "error" not in result:
            if len(taught) >= _TAUGHT_CACHE:
                taught.clear()
            taught.add(definition_source(str(record.procedure["type"])))
        procedure = result.get("procedure")
        if procedure is not None:
            # Options and prompt are in every encoded procedure; a definition only in a class built from one.
            left_out = [part for part in ("options", "prompt") if part not in procedure]
            if is_definition_reference(str(procedure.get("type"))) and "definition" not in procedure:
                left_out.append("definition")
            if kept := {part: record.procedure[part] for part in left_out if part in record.procedure}:
                result["procedure"] = {**procedure, **kept}
        if result.get("outcome") == Outcome.IGNORED.value and not any(record.filters.values()):
            _make_room(self._ignored)
            self._ignored.add((self._code_of(record.runtime_env)[1], str(record.procedure["type"]), str(event.get("type"))))
        return result

    def _call(self, record: SOPRecord, event: dict[str, Any], taught: set[str]) -> HandlerCall:
        """The call of `event`'s handler; a definition the actor was sent (`taught`) left out."""
        procedure = record.procedure
        if "definition" in procedure and definition_source(procedure["type"]) in taught:
            procedure = {part: value for part, value in procedure.items() if part != "definition"}
        filters: FilterSpec = {
            "observed": list(record.filters.get("observed", [])),
            "agents": list(record.filters.get("agents", [])),
        }
        deadline = time.time() + handler_timeout(record.procedure)
        return HandlerCall(
            record.sop_id, procedure, record.state, event, filters, record.semantics.model_dump(),
            record.agent_substitutes, deadline,
        )

    @staticmethod
    async def _collected(actor: Any, result: HandlerResult) -> HandlerResult:
        """The result; for a slow handler's `pending` token, its result fetched apart (so the
        batch did not wait for it), or an error if the actor is lost meanwhile."""
        if "pending" not in result:
            return result
        try:
            collected: HandlerResult = json.loads(await actor.collect.remote(result["pending"]))
        except Exception as error:
            if not isinstance(error, ray.exceptions.RayActorError):
                logger.error("token=<%s> | collecting a handler result failed", result["pending"], exc_info=error)
            return _call_failed(error)
        return collected

    async def construct(self, record: SOPRecord, reference: str) -> dict[str, Any]:
        """A new instance of procedure class `reference`, encoded, built by an actor that runs
        this SOP's code (a recovery fallback).

        Raises:
            SopyError: the class cannot be loaded or built (e.g. it needs arguments).
        """
        actor = self._actor_for(record).actor
        try:
            encoded: dict[str, Any] = unwrap(await actor.construct.remote(reference, _definition_for(record, reference)))
        except ray.exceptions.RayActorError as error:
            raise RuntimeUnavailable(f"procedure actor unavailable: {error}") from error
        return encoded

    async def class_policy(self, record: SOPRecord) -> dict[str, Any] | None:
        """The recovery policy (JSON) the SOP's current procedure class declares, or None; asked
        of a procedure actor running the SOP's code once per class and code, on a failure only.

        Raises:
            SopyError: the class cannot be loaded.
        """
        actor = self._actor_for(record).actor
        key = (self._code_of(record.runtime_env)[1], record.procedure["type"])  # class, in this code
        if key not in self._policies:
            try:
                reference = record.procedure["type"]
                _make_room(self._policies)
                self._policies[key] = unwrap(
                    await actor.recovery_policy.remote(reference, _definition_for(record, reference))
                )
            except ray.exceptions.RayActorError as error:
                raise RuntimeUnavailable(f"procedure actor unavailable: {error}") from error
        return self._policies[key]

    async def may_refuse(self, record: SOPRecord, event_type: str) -> bool:
        """Whether the SOP's current procedure class may refuse an event of wire type
        `event_type` (see `core.graph.may_refuse`); asked of a procedure actor once per class,
        event type and code. True when that cannot be told: the class or type does not load
        (remembered, as an answer), or the actor is unavailable (asked again next time)."""
        key = (self._code_of(record.runtime_env)[1], str(record.procedure["type"]), event_type)
        if key not in self._refusing:
            actor = self._actor_for(record).actor
            try:
                reference = record.procedure["type"]
                answer = await actor.may_refuse.remote(reference, event_type, _definition_for(record, reference))
            except ray.exceptions.RayActorError:
                return True
            _make_room(self._refusing)
            self._refusing[key] = "error" in answer or bool(answer["value"])
        return self._refusing[key]

    async def retryable(self, record: SOPRecord, predicate: str, error: dict[str, Any]) -> bool:
        """What a `Retry.retry_on` predicate (`module:qualname`) says of `error` (wire form), run
        by a procedure actor with the SOP's code.

        Raises:
            SopyError: the predicate cannot be loaded, or it raised.
        """
        actor = self._actor_for(record).actor
        try:
            return bool(unwrap(await actor.retryable.remote(predicate, error)))
        except ray.exceptions.RayActorError as failure:
            raise RuntimeUnavailable(f"procedure actor unavailable: {failure}") from failure

    def _actor_for(self, record: SOPRecord) -> _Target:
        procedure = record.procedure
        # Options are per class (`sop_options`): validate them once per procedure type.
        settings = self._options.get(procedure["type"])
        if settings is None:
            _make_room(self._options)
            settings = self._options[procedure["type"]] = ProcedureOptions.model_validate(procedure.get("options", {}))
        self._round_robin += 1
        replica = self._round_robin % settings.replicas
        code, key = self._code_of(record.runtime_env)
        target = self._actors.get(self._names.get((procedure["type"], replica, key), ""))
        if target is None:
            # A generated step runs on its base class's actors (`runs_as`), which every workflow
            # built on that base shares; other classes on their own.
            name = procedure_actor_name(str(procedure.get("runs_as") or procedure["type"]), settings, replica, code)
            _make_room(self._names)
            self._names[(procedure["type"], replica, key)] = name
            target = self._actors.get(name)
        if target is None:
            options = ray_options(
                name=name,
                namespace=self._namespace,
                num_cpus=settings.num_cpus,
                resources=settings.resources,
                # Twice the handler slots: calls run on the receiving thread hold at most half
                # (`HandlerRuns.run_alone`), so batches, `collect` and the actor's other methods
                # are served while every slot holds a hung handler.
                max_concurrency=2 * settings.max_concurrency,
                runtime_env=code,
            )
            actor = create_actor(ProcedureActor, options, self._namespace, settings.max_concurrency, code)
            calls = Coalescer(functools.partial(_run_batch, actor, self.traffic))
            target = self._actors[name] = _Target(actor, calls, set())
        return target
