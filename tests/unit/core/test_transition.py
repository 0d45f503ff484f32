"""The pure transition function: handler results, copies, retry accounting."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from sopy_actors import End, Event, HandlerError, Outcome, Procedure, RecoveryExhausted, TransitionError, handler
from sopy_actors.core.transition import Snapshot, apply, run_handler


class S(BaseModel):
    items: list[int] = Field(default_factory=list)


class Add(Event[int]):
    pass


class Adding(Procedure[S]):
    def __init__(self) -> None:
        self.calls = 0

    @handler
    def on_add(self, state: S, event: Add) -> Procedure[S] | str:
        self.calls += 1
        state.items.append(event.payload)
        if event.payload < 0:
            return f"{event.payload} is negative; send a positive number."
        if event.payload == 0:
            return End()
        if event.payload == 99:
            raise KeyError("nope")
        if event.payload == 98:
            return None  # type: ignore[return-value]
        return self


def test_inputs_are_never_mutated() -> None:
    procedure, state = Adding(), S()
    transition = run_handler(procedure, state, Add(payload=1))
    assert transition.outcome is Outcome.STAYED
    assert state.items == [] and procedure.calls == 0
    assert transition.state.items == [1] and transition.procedure.calls == 1


def test_rejection_returns_the_original_state_and_the_updated_procedure() -> None:
    state = S(items=[7])
    transition = run_handler(Adding(), state, Add(payload=-1))
    assert transition.outcome is Outcome.REJECTED
    assert transition.state is state and state.items == [7]
    assert transition.procedure.calls == 1
    assert transition.prompt == "-1 is negative; send a positive number."


def test_end_finishes_with_its_prompt() -> None:
    transition = run_handler(Adding(), S(), Add(payload=0))
    assert transition.outcome is Outcome.ENDED and isinstance(transition.procedure, End)
    assert transition.prompt == "Finish the procedure."


def test_other_exceptions_become_handler_errors_with_context() -> None:
    with pytest.raises(HandlerError) as info:
        run_handler(Adding(), S(), Add(payload=99), sop_id="sop-1")
    error = info.value
    assert (error.sop_id, error.procedure, error.event_type, error.cause_type) == (
        "sop-1", "Adding", "Add", "KeyError",
    )


def test_invalid_return_values_say_what_to_return_instead() -> None:
    with pytest.raises(TransitionError, match=r"returned None .*return another procedure"):
        run_handler(Adding(), S(), Add(payload=98))


def test_events_sent_after_end_are_rejected() -> None:
    transition = run_handler(End(), S(), Add(payload=1))
    assert transition.outcome is Outcome.REJECTED
    assert transition.prompt == "The procedure has already finished."


def test_apply_counts_rejections_and_resets_on_success() -> None:
    snapshot = Snapshot(procedure=Adding(), state=S())
    rejected = run_handler(snapshot.procedure, snapshot.state, Add(payload=-1))
    once = apply(snapshot, rejected, retry_limits=1)
    assert (once.retries, once.version) == (1, 1)
    with pytest.raises(RecoveryExhausted) as info:
        apply(once, rejected, retry_limits=1, sop_id="s")
    assert info.value.attempts == 2 and "negative" in (info.value.last_prompt or "")
    accepted = run_handler(once.procedure, once.state, Add(payload=2))
    assert apply(once, accepted, retry_limits=1).retries == 0


def test_apply_marks_the_snapshot_done_on_end() -> None:
    snapshot = Snapshot(procedure=Adding(), state=S())
    done = apply(snapshot, run_handler(snapshot.procedure, snapshot.state, Add(payload=0)), retry_limits=0)
    assert done.done and done.last_prompt == "Finish the procedure."
