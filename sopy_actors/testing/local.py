"""An in-process engine for tests and notebooks: the same transition function, no Ray."""

from __future__ import annotations

import contextlib
import copy
import uuid
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sopy_actors.core.events import Event
from sopy_actors.core.procedure import Procedure
from sopy_actors.core.sop import SOP, SOPStatus, run_block
from sopy_actors.core.transition import Outcome, Snapshot, Transition, advance, finished_prompt, step
from sopy_actors.errors import InputError, SOPFailed

__all__ = ["HistoryEntry", "LocalSOP"]

S = TypeVar("S")


@dataclass(frozen=True)
class HistoryEntry:
    """One committed event: where the SOP was, what came, what happened."""

    version: int
    event_id: str
    event_type: str
    from_procedure: str
    to_procedure: str
    outcome: Outcome
    prompt: str | None


class LocalSOP(Generic[S]):
    """Run an SOP in this process, one event at a time.

    `send(event)` applies an event and returns its `Transition`; `state`, `procedure`,
    `version` and `history` show where the run is. An event id already applied is not applied
    again (its first transition is returned), as on the actor runtime.

    The state may be any deep-copyable object (a dict, a dataclass, a pydantic model, a plain
    object): nothing here crosses a process, so it need not have a JSON form.
    """

    def __init__(self, sop: SOP[S], *, sop_id: str | None = None) -> None:
        self.sop = sop
        self.sop_id = sop_id or uuid.uuid4().hex
        self._snapshot: Snapshot[Procedure[S], S] = sop.initial_snapshot()
        self._history: list[HistoryEntry] = []
        self._applied: dict[str, Transition[S]] = {}
        self._failure: BaseException | None = None
        self._block: contextlib.AbstractContextManager[LocalSOP[S]] | None = None

    def send(self, event: Event[Any]) -> Transition[S]:
        """Apply `event` and return what it did.

        Raises:
            InputError: `event` is not an Event.
            SOPFailed: the SOP already failed.
            RecoveryExhausted: too many consecutive rejections; the SOP is failed from now on.
            HandlerError, TransitionError: the handler failed; nothing was committed.
            StateError: the state cannot be deep-copied for the handler; nothing was committed.
        """
        if not isinstance(event, Event):
            raise InputError(f"send() takes an Event, got {type(event).__name__}")
        if self._failure is not None:
            raise SOPFailed(self.sop_id, f"cannot accept {type(event).__name__}: {self._failure}")
        if event.id in self._applied:
            return self._applied[event.id]
        if self.done:  # as on the actor runtime: refused, not committed
            return Transition(Outcome.REJECTED, self._snapshot.procedure, self.state, finished_prompt(str(event)))
        before = self._snapshot
        semantics = self.sop.semantics
        transition = step(
            before.procedure, before.state, event, filters=self.sop.filters, semantics=semantics, sop_id=self.sop_id
        )
        advanced = advance(
            before,
            transition.outcome,
            transition.procedure,
            transition.state,
            transition.prompt,
            retry_limits=self.sop.retry_limits,
            count=semantics.count,
            sop_id=self.sop_id,
        )
        if advanced.failure is not None:
            self._failure = advanced.failure
            raise advanced.failure
        self._snapshot = advanced.snapshot
        self._applied[event.id] = transition
        self._history.append(
            HistoryEntry(
                version=self._snapshot.version,
                event_id=event.id,
                event_type=type(event).__name__,
                from_procedure=before.procedure.sop_name,
                to_procedure=transition.procedure.sop_name,
                outcome=transition.outcome,
                prompt=transition.prompt,
            )
        )
        return transition

    @property
    def state(self) -> S:
        """The committed state (a deep copy of the state's own type: changing it does not change the run)."""
        return copy.deepcopy(self._snapshot.state)

    @property
    def procedure(self) -> Any:
        """The current procedure instance."""
        return self._snapshot.procedure

    @property
    def procedure_name(self) -> str:
        """The current procedure's name."""
        return self._snapshot.procedure.sop_name

    @property
    def version(self) -> int:
        """How many events have been committed."""
        return self._snapshot.version

    @property
    def retries(self) -> int:
        """Consecutive rejections so far."""
        return self._snapshot.retries

    @property
    def done(self) -> bool:
        """True once the SOP reached End."""
        return self._snapshot.done

    @property
    def last_prompt(self) -> str | None:
        """The last recovery prompt or End prompt."""
        return self._snapshot.last_prompt

    def status(self) -> SOPStatus:
        """Where the run is, as on the actor runtime (host "local", nothing queued)."""
        phase = "failed" if self._failure is not None else "done" if self.done else "waiting"
        return SOPStatus(
            sop_id=self.sop_id,
            name=self.sop.name,
            procedure=self.procedure_name,
            version=self.version,
            retries=self.retries,
            phase=phase,
            queued=0,
            parent_id=None,
            children=[],
            host="local",
            last_prompt=self.last_prompt,
            prompt=str(self.procedure.prompt),
        )

    def history(self) -> list[HistoryEntry]:
        """Every committed event, oldest first."""
        return list(self._history)

    def result(self) -> S:
        """The final state (a deep copy, as `state`).

        Raises:
            SOPFailed: the SOP has not reached End (or the error that failed it).
        """
        if self._failure is not None:
            raise self._failure
        if not self.done:
            raise SOPFailed(self.sop_id, f"not finished: still in {self.procedure_name}")
        return self.state

    def __enter__(self) -> LocalSOP[S]:
        self._block = run_block(self, self.sop)
        return self._block.__enter__()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        block, self._block = self._block, None
        assert block is not None
        return block.__exit__(exc_type, exc, tb)
