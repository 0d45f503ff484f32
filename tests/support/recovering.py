"""A workflow whose step fails on purpose, with recovery policies to climb (imported by workers).

`Summarise` handles `Work` and fails while the call counter in `state.counter` (a real file)
is at or below `state.fail_times`: with a `ConnectionError` (retryable) or, when
`state.fatal`, a `ValueError` (not retryable). Each policy below is set on its own subclass.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from sopy_actors import (
    SOP,
    End,
    Event,
    HumanInterventionRequested,
    Procedure,
    ScriptedModel,
    StrandsAgent,
    handler,
)
from sopy_actors.core.options import ProcedureOptions
from sopy_actors.recovery import Alternative, Backoff, Fallback, Manual, RecoveryPolicy, Retry


class Job(BaseModel):
    counter: str
    fail_times: int = 0
    fatal: bool = False
    approaches: list[str] = Field(default_factory=lambda: ["cached", "extractive"])
    current_approach: str | None = None
    log: list[str] = Field(default_factory=list)


class Work(Event[str]):
    """Summarise this text."""


class Approve(Event[str]):
    """A person's go-ahead, with a note."""


def calls(state: Job) -> int:
    """How many times the step ran (the counter file's value)."""
    path = Path(state.counter)
    return int(path.read_text()) if path.exists() else 0


def _step(state: Job, text: str) -> None:
    count = calls(state) + 1
    Path(state.counter).write_text(str(count))
    if count <= state.fail_times:
        if state.fatal:
            raise ValueError(f"bad input on call {count}")
        raise ConnectionError(f"summary service down on call {count}")
    state.log.append(f"summarised {text} via {state.current_approach or 'primary'}")


FAST = Backoff(initial=0.2, multiplier=2.0, cap=1.0, jitter=0.0)
# One procedure actor for all of them: the test session keeps every actor it starts.
SHARED = ProcedureOptions(placement="shared")


class CheapSummary(Procedure[Job]):
    """The fallback: a summary that cannot fail."""

    sop_options = SHARED

    @handler
    def on_work(self, state: Job, event: Work) -> End:
        state.log.append(f"cheap summary of {event.payload}")
        return End()


class Summarise(Procedure[Job]):
    """No policy of its own: the SOP's `recovery=` applies."""

    sop_options = SHARED

    @handler
    def on_work(self, state: Job, event: Work) -> End:
        _step(state, event.payload)
        return End()


class RetryThenFallback(Summarise):
    sop_recovery = RecoveryPolicy(
        rungs=[Retry(max_attempts=2, backoff=FAST), Fallback(to=CheapSummary), Manual(reason="summaries keep failing")]
    )


def first_call_only(error: Exception) -> bool:
    """A `retry_on` predicate: retry what failed on the first call, whatever its class."""
    return "on call 1" in str(error)


class PickyRetry(Summarise):
    sop_recovery = RecoveryPolicy(rungs=[Retry(max_attempts=2, backoff=FAST, retry_on=first_call_only)])


class SlowRetry(Summarise):
    sop_recovery = RecoveryPolicy(rungs=[Retry(max_attempts=2, backoff=Backoff(initial=4.0, jitter=0.0))])


class TryApproaches(Summarise):
    sop_recovery = RecoveryPolicy(rungs=[Alternative(approaches_field="approaches"), Manual(reason="no approach works")])


class AskAPerson(Summarise):
    sop_recovery = RecoveryPolicy(
        rungs=[Manual(reason="the summary service refuses this text", choices=["retry", "skip", "fallback", "abort"]),
               Fallback(to=CheapSummary)]
    )

    @handler
    def on_approve(self, state: Job, event: Approve) -> End:
        state.log.append(f"approved: {event.payload}")
        return End()


class Deadline(Procedure[Job]):
    """Waits for `Approve`; gives up after half a second."""

    sop_options = ProcedureOptions(placement="shared", timeout=0.5)

    @handler
    def on_approve(self, state: Job, event: Approve) -> End:
        state.log.append(f"approved: {event.payload}")
        return End()


class EscalatingDeadline(Deadline):
    sop_recovery = RecoveryPolicy(rungs=[Manual(reason="no approval within the deadline", choices=["skip", "abort"])])


# Nothing listens on port 9: every call of the primary fails with an AgentError.
PRIMARY = StrandsAgent(model="llamacpp:http://127.0.0.1:9", name="summariser-primary")
BACKUP = StrandsAgent(model=ScriptedModel(["a backup summary"]), name="summariser-backup")


class AskAnAgent(Procedure[Job]):
    """Summarises with the primary agent; the backup agent takes over when it fails."""

    sop_options = SHARED

    sop_recovery = RecoveryPolicy(rungs=[Fallback(to=BACKUP, on="agent_error"), Manual(reason="no agent answers")])

    @handler
    def on_work(self, state: Job, event: Work) -> End:
        state.log.append(PRIMARY(f"summarise {event.payload}").text)
        return End()


class Supervisor(BaseModel):
    counter: str
    children: list[str] = Field(default_factory=list)
    asked: list[str] = Field(default_factory=list)


class Delegate(Event[str]):
    """Start a child that summarises this text (and fails, then waits for a person)."""


class Supervising(Procedure[Supervisor]):
    """Starts failing children and records which ones wait for a person."""

    sop_options = SHARED

    @handler
    def on_delegate(self, state: Supervisor, event: Delegate) -> Procedure[Supervisor]:
        policy = RecoveryPolicy(rungs=[Manual(reason="a person must check the text")])
        child = make_sop(Summarise(), Path(state.counter), fail_times=1, fatal=True, recovery=policy).start()
        child.submit(Work(event.payload))
        state.children.append(child.sop_id)
        return self

    @handler
    def on_asked(self, state: Supervisor, event: HumanInterventionRequested) -> Procedure[Supervisor]:
        state.asked.append(f"{event.payload.sop_id}: {event.payload.reason}")
        return self


def make_sop(procedure: Procedure[Job], counter: Path, *, fail_times: int = 0, fatal: bool = False,
             recovery: RecoveryPolicy | None = None) -> SOP[Job]:
    """An SOP at `procedure`, failing `fail_times` times first (counted in the file `counter`)."""
    state = Job(counter=str(counter), fail_times=fail_times, fatal=fatal)
    return SOP(state, procedure, recovery=recovery)
