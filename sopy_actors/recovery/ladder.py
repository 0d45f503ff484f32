"""The recovery ladder's decision: what to do about one failure, given the policy and the history.

`decide(policy, cause, history=..., state=...)` is pure: it reads the policy, the cause (its
kind and the error in the wire format of `sopy_actors.errors`), the recovery history so far
and the SOP's state as JSON data, and returns a `Decision`: the next `Step` and the history
entry recording it. It takes the first rung, in ladder order, that

- applies to the cause's kind (`on=`),
- has attempts left in this incident (entries since the last recovery that succeeded or a
  person resolved), and
- fits the cause: `Retry` only a retryable error (or one its predicate accepts),
  `Alternative` only while the state's list has an approach left.

One exception: a `CircuitOpen` error (a breaker refused the call) is retryable, but waiting
rarely beats switching, so a `Retry` rung yields to a later `Fallback` or `Alternative` that can
be taken, and otherwise waits at least until the breaker lets a probe through.

When no rung fits, the step is `GiveUp`, whose reason says why each rung was passed over. The
only randomness, the backoff jitter, comes from `rng`; the only code loaded, a retry predicate,
through `resolve`: both are parameters, so the same inputs give the same decision.

No I/O and no Ray: an engine applies the step (see the package docstring).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sopy_actors.core.events import input_error
from sopy_actors.core.references import resolve_reference
from sopy_actors.errors import CircuitOpen, InputError, SopyError, error_from_wire, error_to_wire, is_retryable
from sopy_actors.recovery.policy import Alternative, CauseKind, Fallback, Manual, RecoveryPolicy, Retry

__all__ = [
    "AwaitHuman",
    "Cause",
    "Decision",
    "EntryOutcome",
    "GiveUp",
    "RecoveryEntry",
    "RecoveryHistory",
    "RetryLater",
    "Step",
    "Strategy",
    "UseAlternative",
    "UseFallback",
    "decide",
]

Strategy = Literal["retry", "fallback", "alternative", "manual", "none"]
"""The rung kind an entry records ("none": the ladder gave up); the metric's `strategy` label."""

EntryOutcome = Literal["pending", "succeeded", "failed", "resolved", "gave_up"]
"""How a step ended: pending until the next failure (failed), a success (succeeded) or a
person's resolution (resolved); a GiveUp entry is final at once (gave_up)."""

_ENDS_INCIDENT: frozenset[EntryOutcome] = frozenset({"succeeded", "resolved"})


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Cause(_Data):
    """What failed: the kind of failure and the error, as JSON data.

    Attributes:
        kind: handler_raised, rejection_limit, agent_error, sub_sop_failed or timeout.
        error: the error as `sopy_actors.errors.error_to_wire` encodes it
            (`{"type", "message", "attributes"}`); a `SubSOPFailed` payload's `error` is one.

    Raises:
        InputError: an unknown kind, or an error that is not in the wire format.
    """

    kind: CauseKind
    error: dict[str, Any]

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise input_error("recovery cause", error) from None

    @field_validator("error")
    @classmethod
    def _check_error(cls, error: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(error.get("type"), str) or not isinstance(error.get("message", ""), str):
            raise ValueError("must be an error in the wire format: error_to_wire(exception)")
        return error

    @classmethod
    def of(cls, kind: CauseKind, error: BaseException) -> Cause:
        """The cause of kind `kind` for an exception (encoded with `error_to_wire`)."""
        return cls(kind=kind, error=error_to_wire(error))

    def exception(self) -> SopyError:
        """The error as an exception again (its class when it is in the SopyError tree)."""
        return error_from_wire(self.error)

    @property
    def error_type(self) -> str:
        """The error's class name."""
        return str(self.error["type"])


class RecoveryEntry(_Data):
    """One rung taken (or the ladder giving up): a line of the SOP's recovery history.

    Attributes:
        rung: the rung's position in the policy (None when the ladder gave up).
        strategy: the rung's kind ("none" when the ladder gave up).
        attempt: the attempt on this rung in this incident, from 1 (0 when the ladder gave up).
        cause: the failure it answered.
        outcome: how it ended (see `EntryOutcome`).
        note: a person's note when they resolved it.
        by: who resolved it.
    """

    rung: int | None
    strategy: Strategy
    attempt: int
    cause: Cause
    outcome: EntryOutcome = "pending"
    note: str | None = None
    by: str | None = None


class RecoveryHistory(_Data):
    """The recovery entries of one SOP, oldest first; immutable (methods return a new history).

    An incident is the entries since the last one that succeeded or was resolved by a person;
    rung budgets (`max_attempts`) count within the current incident only.
    """

    entries: tuple[RecoveryEntry, ...] = ()

    def incident(self) -> tuple[RecoveryEntry, ...]:
        """The entries of the current incident."""
        for index in range(len(self.entries) - 1, -1, -1):
            if self.entries[index].outcome in _ENDS_INCIDENT:
                return self.entries[index + 1 :]
        return self.entries

    def attempts(self) -> dict[int, int]:
        """Attempts per rung position in the current incident."""
        counts: dict[int, int] = {}
        for entry in self.incident():
            if entry.rung is not None:
                counts[entry.rung] = counts.get(entry.rung, 0) + 1
        return counts

    @property
    def pending(self) -> RecoveryEntry | None:
        """The last entry if its step has not ended yet."""
        last = self.entries[-1] if self.entries else None
        return last if last is not None and last.outcome == "pending" else None

    def recorded(self, entry: RecoveryEntry) -> RecoveryHistory:
        """This history with `entry` appended; a pending step before it failed (a new cause came)."""
        entries = list(self.entries)
        if self.pending is not None:
            entries[-1] = entries[-1].model_copy(update={"outcome": "failed"})
        return RecoveryHistory(entries=(*entries, entry))

    def succeeded(self) -> RecoveryHistory:
        """The pending step worked: it ends the incident. Unchanged when nothing is pending."""
        if self.pending is None:
            return self
        return RecoveryHistory(entries=(*self.entries[:-1], self.entries[-1].model_copy(update={"outcome": "succeeded"})))

    def resolved(self, *, note: str | None = None, by: str | None = None) -> RecoveryHistory:
        """A person resolved the pending Manual step (ends the incident; `note` and `by` are kept).

        Raises:
            InputError: no Manual step is pending: nothing waits for a person.
        """
        pending = self.pending
        if pending is None or pending.strategy != "manual":
            raise InputError("nothing waits for a person: the last recovery step is not a pending Manual step")
        update = {"outcome": "resolved", "note": note, "by": by}
        return RecoveryHistory(entries=(*self.entries[:-1], pending.model_copy(update=update)))


class RetryLater(_Data):
    """Try the failed step again after `delay` seconds (a durable timer on the actor runtime)."""

    kind: Literal["retry"] = "retry"
    delay: float
    attempt: int


class UseFallback(_Data):
    """Hand the work to the fallback: move to procedure `to`, or send it to agent `to` (whose
    spec is `agent`)."""

    kind: Literal["fallback"] = "fallback"
    to: str
    target: Literal["procedure", "agent"]
    agent: dict[str, Any] | None = None


class UseAlternative(_Data):
    """Switch to `approach`, entry `index` of the state's list `approaches_field`, written to
    the state's `current_field`."""

    kind: Literal["alternative"] = "alternative"
    approaches_field: str
    index: int
    approach: Any
    current_field: str = "current_approach"


class AwaitHuman(_Data):
    """Pause until a person picks one of `choices`; `reason` tells them why."""

    kind: Literal["manual"] = "manual"
    reason: str
    choices: tuple[str, ...]


class GiveUp(_Data):
    """No rung is left for this failure: the SOP fails with the cause; `reason` says why."""

    kind: Literal["give_up"] = "give_up"
    reason: str


Step = Annotated[RetryLater | UseFallback | UseAlternative | AwaitHuman | GiveUp, Field(discriminator="kind")]
"""What the engine does next; JSON data (its `kind` names it)."""


class Decision(_Data):
    """The ladder's answer: the next step, and the entry to append to the history for it."""

    step: Step
    entry: RecoveryEntry


def decide(
    policy: RecoveryPolicy,
    cause: Cause,
    *,
    history: RecoveryHistory | None = None,
    state: Mapping[str, Any] | None = None,
    rng: Callable[[], float] = random.random,
    resolve: Callable[[str], Any] = resolve_reference,
) -> Decision:
    """The next recovery step for `cause` (pure; see the module docstring for the rule).

    Runs wherever the engine keeps the SOP's record (the SOP host, or in process).

    Args:
        policy: the ladder.
        cause: what failed.
        history: the SOP's recovery history so far (default: none).
        state: the SOP's state as JSON data; `Alternative` reads its list field from it.
        rng: the jitter's random source, returning floats in [0, 1).
        resolve: loads a `Retry.retry_on` predicate from its `module:qualname`.

    Returns:
        The step and its history entry (outcome "pending", or "gave_up" for `GiveUp`).

    Raises:
        InputError: a retry predicate cannot be loaded, or `rng` returns a value outside [0, 1).
        Exception: whatever a retry predicate raises (it is user code; the rest is pure).
    """
    attempts = (history or RecoveryHistory()).attempts()
    error = cause.exception()
    circuit_open = isinstance(error, CircuitOpen)
    deferred: tuple[int, Retry, int] | None = None  # a Retry set aside for a fallback (open circuit)
    passed: list[str] = []
    for index, rung in policy.rungs_for(cause.kind):
        used = attempts.get(index, 0)
        where = f"rungs[{index}] {type(rung).__name__}"
        if isinstance(rung, Manual) and deferred is not None:
            break  # a person is not paged for a breaker that will let a probe through soon
        if isinstance(rung, Alternative):
            approaches, why = _approaches(rung, state, used)
            if why:
                passed.append(f"{where}: {why}")
                continue
            approach = approaches[used]
            return _decision(
                UseAlternative(
                    approaches_field=rung.approaches_field, index=used, approach=approach, current_field=rung.current_field
                ),
                index, "alternative", used + 1, cause,
            )
        limit = rung.max_attempts
        if used >= limit:
            passed.append(f"{where}: {used} of {limit} attempts used")
            continue
        if isinstance(rung, Retry):
            if not _retryable(rung, error, resolve):
                passed.append(f"{where}: {cause.error_type} is not retryable")
            elif circuit_open:
                deferred = deferred or (index, rung, used)
            else:
                delay = rung.backoff.delay(used + 1, rng=rng)
                return _decision(RetryLater(delay=delay, attempt=used + 1), index, "retry", used + 1, cause)
            continue
        if isinstance(rung, Fallback):
            fallback = UseFallback(to=rung.to, target=rung.target, agent=rung.agent)
            return _decision(fallback, index, "fallback", used + 1, cause)
        return _decision(AwaitHuman(reason=rung.reason, choices=rung.choices), index, "manual", used + 1, cause)
    if deferred is not None:
        index, retry, used = deferred
        assert isinstance(error, CircuitOpen)
        delay = max(retry.backoff.delay(used + 1, rng=rng), error.retry_after)
        return _decision(RetryLater(delay=delay, attempt=used + 1), index, "retry", used + 1, cause)
    return _give_up(cause, passed)


def _retryable(rung: Retry, error: SopyError, resolve: Callable[[str], Any]) -> bool:
    if rung.retry_on is None:
        return is_retryable(error)
    predicate = resolve(rung.retry_on)
    if not callable(predicate):
        raise InputError(f"retry_on {rung.retry_on} is not a function", fields=("retry_on",))
    return bool(predicate(error))


def _approaches(rung: Alternative, state: Mapping[str, Any] | None, used: int) -> tuple[list[Any], str]:
    """The state's approaches, or why this rung cannot give another one."""
    name = rung.approaches_field
    approaches = None if state is None else state.get(name)
    if not isinstance(approaches, list):
        return [], f"the state has no list field {name!r}"
    if state is not None and rung.current_field not in state:
        return [], f"the state has no field {rung.current_field!r} to hold the approach"
    limit = len(approaches) if rung.max_attempts is None else min(len(approaches), rung.max_attempts)
    if used >= limit:
        return [], f"{used} of {limit} approaches in {name!r} tried"
    return approaches, ""


def _decision(
    step: RetryLater | UseFallback | UseAlternative | AwaitHuman, rung: int, strategy: Strategy, attempt: int, cause: Cause
) -> Decision:
    return Decision(step=step, entry=RecoveryEntry(rung=rung, strategy=strategy, attempt=attempt, cause=cause))


def _give_up(cause: Cause, passed: list[str]) -> Decision:
    failure = f"{cause.kind} ({cause.error_type}: {cause.error.get('message', '')})"
    reason = (
        f"no recovery left for {failure}: " + "; ".join(passed)
        if passed
        else f"no rung of the recovery policy applies to {failure}"
    )
    entry = RecoveryEntry(rung=None, strategy="none", attempt=0, cause=cause, outcome="gave_up")
    return Decision(step=GiveUp(reason=reason), entry=entry)
