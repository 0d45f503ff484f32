"""The pure transition function every engine calls: one event in, one `Transition` out.

No I/O, no clocks, no Ray. The in-process engine calls it directly; on the actor runtime a
ProcedureActor calls it and the SOP host commits what it returns.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from sopy_actors.core.events import Event, event_type_name
from sopy_actors.core.procedure import End, Procedure
from sopy_actors.errors import HandlerError, RecoveryExhausted, TransitionError

__all__ = ["Outcome", "Snapshot", "Filters", "Transition", "apply", "run_handler", "step"]

S = TypeVar("S")

FINISHED_PROMPT = "The procedure has already finished."


class Outcome(enum.StrEnum):
    """What an event did to an SOP."""

    TRANSITIONED = "transitioned"
    STAYED = "stayed"
    REJECTED = "rejected"
    ENDED = "ended"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Transition(Generic[S]):
    """The result of one handler run.

    Attributes:
        outcome: what happened.
        procedure: the procedure the SOP is in afterwards (`End` when ended).
        state: the state afterwards; the input state, untouched, when rejected or ignored.
        prompt: the recovery prompt of a rejection, or the End's prompt.
        handler: name of the handler that ran, if any.
    """

    outcome: Outcome
    procedure: Procedure[S]
    state: S
    prompt: str | None = None
    handler: str | None = None


@dataclass(frozen=True)
class Snapshot(Generic[S]):
    """Everything an SOP instance is between events; what a checkpoint stores.

    Attributes:
        procedure: the current procedure, with its attributes.
        state: the current state.
        version: how many events have been committed.
        retries: consecutive rejections so far.
        done: True once the SOP reached End.
        last_prompt: the last recovery prompt (or End prompt).
    """

    procedure: Procedure[S]
    state: S
    version: int = 0
    retries: int = 0
    done: bool = False
    last_prompt: str | None = None


def _copy_state(state: S) -> S:
    if isinstance(state, BaseModel):
        return state.model_copy(deep=True)
    return copy.deepcopy(state)


def _rejection(procedure: Procedure[S], state: S, prompt: str, name: str | None) -> Transition[S]:
    return Transition(Outcome.REJECTED, procedure, state, prompt, name)


def run_handler(
    procedure: Procedure[S], state: S, event: Event[Any], *, sop_id: str = ""
) -> Transition[S]:
    """Run the handler of `event` in `procedure` on copies of both and the state.

    The inputs are never mutated. A rejection returns the input state (so any mutation the
    handler made is discarded) and the procedure copy with its attribute changes.

    Raises:
        HandlerError: the handler raised anything but AssertionError.
        TransitionError: the handler returned something other than a procedure, `self`,
            `End(...)` or a str.
    """
    if isinstance(procedure, End):
        return _rejection(procedure, state, FINISHED_PROMPT, None)
    name = procedure.sop_handler_for(type(event))
    event_name = type(event).__name__
    if name is None:
        if event.sop_optional or isinstance(event, tuple(procedure.ignore)):
            return Transition(Outcome.IGNORED, procedure, state)
        return _rejection(
            procedure,
            state,
            f"Event {event_name} should not happen in procedure {procedure.sop_name}. "
            f"Current instruction: {procedure.prompt}",
            None,
        )
    current = copy.deepcopy(procedure)
    working = _copy_state(state)
    try:
        result = getattr(current, name)(working, event)
    except AssertionError as error:
        message = str(error) or f"Assertion failed in {procedure.sop_name}.{name}"
        return _rejection(current, state, message, name)
    except Exception as error:
        raise HandlerError(
            sop_id=sop_id, procedure=procedure.sop_name, event_type=event_name, cause=error
        ) from error
    if isinstance(result, str):
        return _rejection(current, state, result, name)
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


def apply(
    snapshot: Snapshot[S], transition: Transition[S], *, retry_limits: int, sop_id: str = ""
) -> Snapshot[S]:
    """The snapshot after committing `transition`; counts consecutive rejections.

    A rejection adds one retry, an ignored event leaves the count alone, anything else resets it.

    Raises:
        RecoveryExhausted: this rejection is the (retry_limits + 1)-th in a row.
    """
    if transition.outcome is Outcome.REJECTED:
        retries = snapshot.retries + 1
    elif transition.outcome is Outcome.IGNORED:
        retries = snapshot.retries
    else:
        retries = 0
    if retries > retry_limits:
        raise RecoveryExhausted(sop_id, retries, transition.prompt)
    return Snapshot(
        procedure=transition.procedure,
        state=transition.state,
        version=snapshot.version + 1,
        retries=retries,
        done=transition.outcome is Outcome.ENDED,
        last_prompt=transition.prompt if transition.prompt is not None else snapshot.last_prompt,
    )


@dataclass(frozen=True)
class Filters:
    """Which events reach an SOP's handlers (`SOP.observes`, `SOP.from_agent`).

    Attributes:
        observed: wire names of the accepted event types (empty: all); subclasses count.
        agents: senders whose events are accepted (empty: all); events with no sender pass.
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
        return not (self.agents and event.sender is not None and event.sender not in self.agents)


def step(
    procedure: Procedure[S], state: S, event: Event[Any], *, filters: Filters, sop_id: str = ""
) -> Transition[S]:
    """Filter the event, then run its handler: what every engine does with one event."""
    if not filters.accepts(event):
        return Transition(Outcome.IGNORED, procedure, state)
    return run_handler(procedure, state, event, sop_id=sop_id)
