"""The pure transition function: handler results, copies, retry accounting."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from sopy_actors import End, Event, Outcome, Procedure, handler
from sopy_actors.agents.events import AgentCompleted, AgentCompletion
from sopy_actors.core.lifecycle import SubSOPCompleted, SubSOPError, SubSOPFailed, SubSOPResult
from sopy_actors.core.options import STRICT
from sopy_actors.core.transition import Advanced, Filters, Snapshot, advance, run_handler
from sopy_actors.errors import HandlerError, RecoveryExhausted, TransitionError
from sopy_actors.monitoring.health import HealthCheck


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


def test_strict_rejection_returns_the_original_state_and_the_updated_procedure() -> None:
    state = S(items=[7])
    transition = run_handler(Adding(), state, Add(payload=-1), semantics=STRICT)
    assert transition.outcome is Outcome.REJECTED
    assert transition.state is state and state.items == [7]
    assert transition.procedure.calls == 1
    assert transition.prompt == "-1 is negative; send a positive number."


def test_owned_inputs_are_changed_in_place_without_copies() -> None:
    procedure, state = Adding(), S()
    transition = run_handler(procedure, state, Add(payload=1), owned=True)
    assert transition.outcome is Outcome.STAYED
    assert transition.procedure is procedure and transition.state is state
    assert state.items == [1] and procedure.calls == 1


def test_owned_inputs_keep_the_rejecting_handlers_state_changes_as_sopy_does() -> None:
    state = S(items=[7])
    transition = run_handler(Adding(), state, Add(payload=-1), owned=True)
    assert transition.outcome is Outcome.REJECTED and transition.state.items == [7, -1]


def test_owned_inputs_under_strict_rejection_still_return_the_state_untouched() -> None:
    state = S(items=[7])
    transition = run_handler(Adding(), state, Add(payload=-1), semantics=STRICT, owned=True)
    assert transition.outcome is Outcome.REJECTED
    assert transition.state is state and state.items == [7]
    assert transition.procedure.calls == 1
    accepted = run_handler(Adding(), state, Add(payload=2), semantics=STRICT, owned=True)
    assert accepted.state.items == [7, 2] and state.items == [7]


def test_end_finishes_with_its_prompt() -> None:
    transition = run_handler(Adding(), S(), Add(payload=0))
    assert transition.outcome is Outcome.ENDED and isinstance(transition.procedure, End)
    assert transition.prompt == "Finish the procedure."


def test_sopy_rejection_keeps_the_state_changes_the_handler_made() -> None:
    state = S(items=[7])
    transition = run_handler(Adding(), state, Add(payload=-1))
    assert transition.outcome is Outcome.REJECTED
    assert transition.state.items == [7, -1] and state.items == [7]  # kept in the new state only


def test_sopy_turns_any_exception_into_a_rejection_with_its_recovery_text() -> None:
    transition = run_handler(Adding(), S(), Add(payload=99))
    assert transition.outcome is Outcome.REJECTED and transition.state.items == [99]
    assert transition.prompt == (
        "An error occurred while handling event Add(sender=None, target=None, payload=99): 'nope'. Please try again."
    )


def test_recover_prompt_can_be_overridden_per_procedure() -> None:
    class Polite(Adding):
        def recover_prompt(self, state: S, event: Event[Any], exception: BaseException | None) -> str:
            return f"Sorry: {type(exception).__name__}" if exception else "Sorry: not now"

    assert run_handler(Polite(), S(), Add(payload=99)).prompt == "Sorry: KeyError"


def test_strict_exceptions_become_handler_errors_with_context() -> None:
    with pytest.raises(HandlerError) as info:
        run_handler(Adding(), S(), Add(payload=99), semantics=STRICT, sop_id="sop-1")
    error = info.value
    assert (error.sop_id, error.procedure, error.event_type, error.cause_type) == (
        "sop-1", "Adding", "Add", "KeyError",
    )


def test_invalid_return_values_say_what_to_return_instead() -> None:
    with pytest.raises(TransitionError, match=r"returned None .*return another procedure"):
        run_handler(Adding(), S(), Add(payload=98))


def test_events_sent_after_end_are_rejected_with_sopys_text() -> None:
    transition = run_handler(End(), S(), Add(payload=1))
    assert transition.outcome is Outcome.REJECTED
    assert transition.prompt == (
        "Event Add(sender=None, target=None, payload=1) should not happen in procedure End. Please try again."
    )


def _advance(snapshot: Snapshot[Any, Any], transition: Any, retry_limits: int) -> Advanced[Any, Any]:
    return advance(
        snapshot, transition.outcome, transition.procedure, transition.state, transition.prompt,
        retry_limits=retry_limits, count="consecutive", sop_id="s",
    )


def test_advance_counts_consecutive_rejections_and_resets_on_success() -> None:
    snapshot = Snapshot(procedure=Adding(), state=S())
    rejected = run_handler(snapshot.procedure, snapshot.state, Add(payload=-1))
    once = _advance(snapshot, rejected, retry_limits=1)
    assert (once.snapshot.retries, once.snapshot.version, once.failure) == (1, 1, None)
    twice = _advance(once.snapshot, rejected, retry_limits=1)
    assert twice.snapshot.phase == "failed" and isinstance(twice.failure, RecoveryExhausted)
    assert twice.failure.attempts == 2 and "negative" in (twice.failure.last_prompt or "")
    accepted = run_handler(once.snapshot.procedure, once.snapshot.state, Add(payload=2))
    assert _advance(once.snapshot, accepted, retry_limits=1).snapshot.retries == 0


def test_advance_marks_the_snapshot_done_on_end() -> None:
    snapshot = Snapshot(procedure=Adding(), state=S())
    done = _advance(snapshot, run_handler(snapshot.procedure, snapshot.state, Add(payload=0)), retry_limits=0)
    assert done.snapshot.done and done.snapshot.last_prompt == "Finish the procedure."


# The commit rule on opaque procedure/state values, as the SOP host calls it (JSON forms):
# outcomes in order, how rejections count, retry limit -> retries after each, the final
# phase, whether it failed.
COMMIT_RULE = [
    (("rejected", "rejected"), "total", 2, (1, 2), "running", False),
    (("rejected", "rejected", "rejected"), "total", 2, (1, 2, 3), "failed", True),
    (("rejected", "ignored", "rejected"), "consecutive", 1, (1, 1, 2), "failed", True),
    (("rejected", "stayed", "rejected"), "consecutive", 1, (1, 0, 1), "running", False),
    (("rejected", "stayed", "rejected"), "total", 1, (1, 1, 2), "failed", True),
    (("rejected", "transitioned", "rejected"), "total", 2, (1, 1, 2), "running", False),
    (("rejected", "transitioned"), "consecutive", 0, (1, 0), "failed", True),
    (("ignored", "ended"), "total", 0, (0, 0), "done", False),
]


@pytest.mark.parametrize(("outcomes", "count", "limit", "retries", "phase", "fails"), COMMIT_RULE)
def test_the_commit_rule_counts_rejections_on_any_procedure_and_state_form(
    outcomes: tuple[str, ...], count: Any, limit: int, retries: tuple[int, ...], phase: str, fails: bool
) -> None:
    snapshot: Snapshot[dict[str, str], dict[str, int]] = Snapshot(procedure={"name": "P"}, state={"n": 0})
    seen, failure = [], None
    for number, outcome in enumerate(outcomes):
        if failure is not None:
            break
        advanced = advance(
            snapshot, Outcome(outcome), {"name": "P"}, {"n": number}, "why" if outcome == "rejected" else None,
            retry_limits=limit, count=count,
        )
        snapshot, failure = advanced.snapshot, advanced.failure
        seen.append(snapshot.retries)
    assert tuple(seen) == retries[: len(seen)]
    assert snapshot.phase == phase
    assert (failure is not None) is fails
    assert snapshot.version == len(seen)


GOVERNED = Filters(agents=("writer",))


@pytest.mark.parametrize(
    ("sender", "target", "accepted"),
    [("writer", None, True), (None, "writer", True), ("editor", "writer", True), ("writer", "editor", True),
     ("editor", None, False), (None, "editor", False), (None, None, False)],
)
def test_from_agent_passes_an_event_whose_sender_or_target_is_governed(
    sender: str | None, target: str | None, accepted: bool
) -> None:
    assert GOVERNED.accepts(Add(1, sender=sender, target=target)) is accepted


def test_without_from_agent_every_event_passes() -> None:
    assert Filters().accepts(Add(1)) and Filters().accepts(Add(1, sender="anyone"))


@pytest.mark.parametrize(
    "event",
    [
        SubSOPCompleted(payload=SubSOPResult(child_id="c", name="Child", state={})),
        SubSOPFailed(payload=SubSOPError(child_id="c", name="Child", error={"type": "SOPFailed", "message": "x"})),
        HealthCheck(payload={"memory_usage": 0.5}, sender="sopy-monitor"),
        AgentCompleted(payload=AgentCompletion(agent="researcher", call_id="1"), sender="researcher"),
    ],
    ids=lambda event: type(event).__name__,
)
def test_events_the_runtime_sends_pass_from_agent_whoever_sent_them(event: Event[Any]) -> None:
    assert type(event).sop_from_runtime
    assert GOVERNED.accepts(event)
    assert not GOVERNED.accepts(Add(1, sender=event.sender))
