"""The pure transition functions every engine calls.

`step` runs one event's handler and returns a `Transition`; `advance` is the one commit rule:
from a snapshot and what an event did, the next snapshot and its consequence (rejections
counted, retry limit, End). No I/O, no clocks, no Ray. The in-process engine calls both; on
the actor runtime a ProcedureActor calls `step` and the SOP host calls `advance` on the JSON
forms of procedure and state (it never imports workflow code).
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sopy_actors.core.events import Event, event_type_name
from sopy_actors.core.options import Semantics
from sopy_actors.core.procedure import End, Procedure
from sopy_actors.errors import HandlerError, RecoveryExhausted, StateError, TransitionError

__all__ = [
    "SOPY",
    "Advanced",
    "Filters",
    "Outcome",
    "Phase",
    "Snapshot",
    "Transition",
    "advance",
    "finished_prompt",
    "run_handler",
    "step",
]

S = TypeVar("S")
P = TypeVar("P")

SOPY = Semantics()

Phase = Literal["running", "done", "failed"]


class Outcome(enum.StrEnum):
    """What an event did to an SOP."""

    TRANSITIONED = "transitioned"
    STAYED = "stayed"
    REJECTED = "rejected"
    ENDED = "ended"
    IGNORED = "ignored"
    DISCARDED = "discarded"
    """The SOP was cancelled while the handler ran: its result was dropped (runtime only)."""
    RECOVERING = "recovering"
    """The event failed and a rung of the SOP's recovery policy was taken, or a person resolved
    the SOP (runtime only)."""
    FAILED = "failed"
    """The event failed the SOP: its recovery ladder gave up, or a procedure's timeout ran out
    without a recovery policy (runtime only)."""


@dataclass(frozen=True)
class Transition(Generic[S]):
    """The result of one handler run.

    Attributes:
        outcome: what happened.
        procedure: the procedure the SOP is in afterwards (`End` when ended).
        state: the state afterwards; the input state, untouched, when rejected or ignored.
        prompt: the recovery prompt of a rejection, or the End's prompt.
        handler: name of the handler that ran, if any.
        raised: the exception the handler raised, when its rejection came from one (a
            recovery policy may answer it instead of the rejection).
    """

    outcome: Outcome
    procedure: Procedure[S]
    state: S
    prompt: str | None = None
    handler: str | None = None
    raised: Exception | None = None


@dataclass(frozen=True)
class Snapshot(Generic[P, S]):
    """Everything an SOP instance is between events; what a checkpoint stores.

    In process `P` is the procedure and `S` the state; the SOP host holds their JSON forms.

    Attributes:
        procedure: the current procedure, with its attributes.
        state: the current state.
        version: how many events have been committed.
        retries: rejections counted against the retry limit so far.
        phase: running, done (reached End) or failed (went past the retry limit).
        last_prompt: the last recovery prompt (or End prompt).
    """

    procedure: P
    state: S
    version: int = 0
    retries: int = 0
    phase: Phase = "running"
    last_prompt: str | None = None

    @property
    def done(self) -> bool:
        """True once the SOP reached End."""
        return self.phase == "done"


@dataclass(frozen=True)
class Advanced(Generic[P, S]):
    """The consequence of committing one event.

    Attributes:
        snapshot: the snapshot to commit.
        outcome: what the event did.
        prompt: the event's recovery prompt (rejected) or End prompt (ended).
        failure: set when this rejection went past the retry limit; the SOP is failed.
    """

    snapshot: Snapshot[P, S]
    outcome: Outcome
    prompt: str | None
    failure: RecoveryExhausted | None = None


def advance(
    snapshot: Snapshot[P, S],
    outcome: Outcome,
    procedure: P,
    state: S,
    prompt: str | None,
    *,
    retry_limits: int,
    count: Literal["total", "consecutive"] = "total",
    sop_id: str = "",
) -> Advanced[P, S]:
    """The one commit rule: the snapshot after an event with `outcome`; never raises.

    A rejection adds one retry. With `count="total"` (SOPy) nothing else changes the count;
    with "consecutive" a transition, stay or End resets it (an ignored event does not). The
    rejection that takes the count past `retry_limits` fails the SOP (`failure` is set).
    """
    if outcome is Outcome.REJECTED:
        retries = snapshot.retries + 1
    elif outcome is Outcome.IGNORED or count == "total":
        retries = snapshot.retries
    else:
        retries = 0
    failure = RecoveryExhausted(sop_id, retries, prompt) if retries > retry_limits else None
    phase: Phase = "failed" if failure is not None else "done" if outcome is Outcome.ENDED else "running"
    after = Snapshot(
        procedure=procedure,
        state=state,
        version=snapshot.version + 1,
        retries=retries,
        phase=phase,
        last_prompt=prompt if prompt is not None else snapshot.last_prompt,
    )
    return Advanced(after, outcome, prompt, failure)


def _copy_state(state: S) -> S:
    """A deep copy of `state` for the handler: handlers change dicts and objects in place.

    Raises:
        StateError: the state (as a handler left it) cannot be deep-copied; the message names its type.
    """
    try:
        return copy.deepcopy(state)
    except Exception as error:
        raise StateError(
            f"state {type(state).__name__} cannot be deep-copied ({type(error).__name__}: {error}); each "
            "event's handler works on a copy of the state, so keep copyable data in it"
        ) from error


def finished_prompt(event_text: str) -> str:
    """The recovery prompt of an event sent after End (refused; nothing is committed)."""
    return f"Event {event_text} should not happen in procedure End. Please try again."


def run_handler(
    procedure: Procedure[S],
    state: S,
    event: Event[Any],
    *,
    semantics: Semantics = SOPY,
    sop_id: str = "",
    owned: bool = False,
) -> Transition[S]:
    """Run the handler of `event` in `procedure` on copies of both and the state.

    The inputs are never mutated: the transition carries the new procedure (with its attribute
    changes) and state. A rejection (a returned str, or with `handler_errors="reject"` any
    exception, with its procedure's `recover_prompt`; with "fail" an AssertionError, with its
    message) keeps the handler's state changes, as SOPy does, unless `rollback_rejected`.

    With `owned=True` the caller hands `procedure` and `state` over (it just decoded them and
    never reads them again): the handler changes them in place, uncopied. The state is still
    copied under `rollback_rejected`, whose rejections return it untouched.

    Raises:
        HandlerError: the handler raised, with `handler_errors="fail"` (not AssertionError).
        TransitionError: the handler returned something other than a procedure, `self`,
            `End(...)` or a str.
    """
    if isinstance(procedure, End):
        return Transition(Outcome.REJECTED, procedure, state, finished_prompt(str(event)))
    name = procedure.sop_handler_for(type(event))
    event_name = type(event).__name__
    if name is None:
        if event.sop_optional or isinstance(event, tuple(procedure.ignore)):
            return Transition(Outcome.IGNORED, procedure, state)
        return Transition(Outcome.REJECTED, procedure, state, procedure.recover_prompt(state, event, None))
    current = procedure if owned else copy.deepcopy(procedure)
    working = state if owned and not semantics.rollback_rejected else _copy_state(state)
    kept = state if semantics.rollback_rejected else working
    try:
        result = getattr(current, name)(working, event)
    except Exception as error:
        if semantics.handler_errors == "reject":
            prompt = current.recover_prompt(kept, event, error)
            return Transition(Outcome.REJECTED, current, kept, prompt, name, raised=error)
        if isinstance(error, AssertionError):  # strict: the assertion's own message is the prompt
            message = str(error) or f"Assertion failed in {procedure.sop_name}.{name}"
            return Transition(Outcome.REJECTED, current, kept, message, name, raised=error)
        raise HandlerError(sop_id=sop_id, procedure=procedure.sop_name, event_type=event_name, cause=error) from error
    if isinstance(result, str):
        return Transition(Outcome.REJECTED, current, kept, result, name)
    if isinstance(result, End):
        return Transition(Outcome.ENDED, result, working, str(result.prompt), name)
    if result is current:
        return Transition(Outcome.STAYED, current, working, None, name)
    if isinstance(result, Procedure):
        return Transition(Outcome.TRANSITIONED, result, working, None, name)
    raise TransitionError(
        f"sop=<{sop_id}>, procedure=<{procedure.sop_name}>, event=<{event_name}> | handler "
        f"{name} returned {result!r} ({type(result).__name__}); return another procedure "
        "(e.g. Next()), self to stay, End() to finish, or a str to reject the event"
    )


@dataclass(frozen=True)
class Filters:
    """Which events reach an SOP's handlers (`SOP.observes`, `SOP.from_agent`).

    Attributes:
        observed: wire names of the accepted event types (empty: all); subclasses count.
        agents: the governed agents (empty: all events pass). As in SOPy, an event passes if its
            sender or its target is one of them, so one with neither is dropped; events the
            runtime itself sends (`Event.sop_from_runtime`: SubSOPCompleted, HealthCheck ...)
            always pass.
    """

    observed: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()

    def accepts(self, event: Event[Any]) -> bool:
        """Whether `event` passes both filters."""
        if self.observed and not any(
            event_type_name(k) in self.observed
            for k in type(event).__mro__
            if isinstance(k, type) and issubclass(k, Event)
        ):
            return False
        return not self.agents or event.sop_from_runtime or event.sender in self.agents or event.target in self.agents


def step(
    procedure: Procedure[S],
    state: S,
    event: Event[Any],
    *,
    filters: Filters,
    semantics: Semantics = SOPY,
    sop_id: str = "",
    owned: bool = False,
) -> Transition[S]:
    """Filter the event, then run its handler: what every engine does with one event.

    `owned=True`: the caller hands `procedure` and `state` over, uncopied (see `run_handler`).
    """
    if not filters.accepts(event):
        return Transition(Outcome.IGNORED, procedure, state)
    return run_handler(procedure, state, event, semantics=semantics, sop_id=sop_id, owned=owned)
