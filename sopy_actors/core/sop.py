"""The SOP definition: initial state, entry procedure, event filters and recovery settings.

An `SOP` is plain data. Engines run it: `sopy_actors.testing.LocalSOP` in process, the actor
runtime on Ray (`SOP.start()` once `sopy_actors.init()` has run).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from sopy_actors.core.context import handling_sop_id, innermost_run, within
from sopy_actors.core.events import Event, event_type_name
from sopy_actors.core.options import Semantics
from sopy_actors.core.procedure import Procedure, make_prompt
from sopy_actors.core.transition import SOPY as SOPY_SEMANTICS
from sopy_actors.core.transition import Filters, Snapshot
from sopy_actors.errors import DefinitionError, RuntimeUnavailable, SOPViolation

if TYPE_CHECKING:
    from sopy_actors.recovery.policy import RecoveryPolicy

__all__ = ["SOP", "ErrorHandler", "Run", "SOPStatus", "current_sop", "finish_with_recovery", "run_block", "set_engine"]

S = TypeVar("S")
R = TypeVar("R", bound="Run")


class SOPStatus(BaseModel):
    """Where an SOP is (the same on every engine).

    Attributes:
        phase: waiting (for an event), running (handling one), waiting_for_human (a `Manual`
            recovery step paused it until `resolve`), done, failed or cancelled.
        host: the SOP host actor that runs it ("local" in process).
        waiting: while waiting_for_human: the reason, the choices offered, the cause, the event
            that failed (wire form, or None) and since when (Unix time).
        recovery: the recovery steps taken so far (`RecoveryEntry` data), oldest first.
    """

    model_config = ConfigDict(frozen=True)

    sop_id: str
    name: str
    procedure: str
    version: int
    retries: int
    phase: Literal["waiting", "running", "waiting_for_human", "done", "failed", "cancelled"]
    queued: int
    parent_id: str | None
    children: list[str]
    host: str
    last_prompt: str | None
    prompt: str = ""
    """The current procedure's instruction text."""
    waiting: dict[str, Any] | None = None
    recovery: list[dict[str, Any]] = Field(default_factory=list)
    forked_from: dict[str, Any] | None = None
    """`{"sop_id", "version"}` of the SOP version this one was forked from (`SOPHandle.fork`)."""


class Run(Protocol):
    """What every engine's running SOP offers to recovery code and `with` blocks."""

    sop_id: str

    def status(self) -> SOPStatus: ...


ErrorHandler = Callable[[Any], None]
"""Called with the run when a `with` block exits before End; it should drive the SOP on."""


class _Engine(Protocol):
    def start(self, sop: SOP[Any], *, sop_id: str | None, placement: Literal["spread", "dedicated"]) -> Any: ...

    def attach(self, sop_id: str) -> Any: ...


_engine: _Engine | None = None


def set_engine(engine: _Engine | None) -> None:
    """Install the engine `SOP.start()` uses (the actor runtime does this in `init()`)."""
    global _engine
    _engine = engine


def current_sop() -> Any:
    """The SOP this code works for, or None.

    In a handler (on the actor runtime), the handle of the SOP being handled, e.g. for
    `agent.submit(prompt, deliver_to=current_sop())`; elsewhere, the run of the innermost
    `with sop:` block (an `SOPHandle`, or a `LocalSOP` in process).
    """
    sop_id = handling_sop_id()
    if sop_id is not None and _engine is not None:
        return _engine.attach(sop_id)
    return innermost_run()


def finish_with_recovery(
    run: Run, error_handler: ErrorHandler | None, retry_limits: int, *, semantics: Semantics
) -> None:
    """SOPy's exit rule: an SOP not at End gets the error handler up to the limit, then raises.

    The handler is called with SOPy's `Prompt` ("SOP left unfinished: current procedure is X
    with prompt P."); it should drive the SOP on (e.g. `lambda prompt: agent(f"Error: {prompt}")`).
    With `count="total"` (SOPy) these calls share the retry budget with the run's rejections.

    Raises:
        SOPViolation: the SOP is still not at End when the budget is spent.
    """
    status = run.status()
    attempts = status.retries if semantics.count == "total" else 0
    while status.phase != "done":
        text = f"SOP left unfinished: current procedure is {status.procedure} with prompt {status.prompt}."
        if error_handler is None or attempts >= retry_limits or status.phase in ("failed", "cancelled"):
            raise SOPViolation(text, sop_id=run.sop_id, attempts=attempts)
        attempts += 1
        error_handler(make_prompt(text))
        status = run.status()


@contextlib.contextmanager
def run_block(run: R, sop: SOP[Any]) -> Iterator[R]:
    """The `with` block of a run: `run` is the current SOP inside it; on a clean exit the SOP
    must be at End, or `sop`'s error handler drives it there (`finish_with_recovery`)."""
    with within(run):
        yield run
        finish_with_recovery(run, sop.error_handler, sop.retry_limits, semantics=sop.semantics)


class SOP(Generic[S]):
    """A standard operating procedure: what to run, not a running instance.

    Args:
        state: the initial state, any deep-copyable object (each run works on its own deep
            copy). To run on the actor runtime it must cross processes as JSON: a dict of JSON
            data, a dataclass or a pydantic model (`sopy_actors.core.codec.encode_state`).
        init_proc: the entry procedure instance, e.g. `Drafting()`.
        retry_limits: rejections tolerated before `RecoveryExhausted` (counted as `semantics`
            says); the exit of a `with` block before End uses the same budget.
        error_handler: called with SOPy's `Prompt` when a `with` block exits before End.
        semantics: how rejections and failing handlers count; SOPy's by default
            (`sopy_actors.core.options.STRICT` is the stricter alternative).
        recovery: the SOP's recovery ladder (`sopy_actors.recovery.RecoveryPolicy`), for the
            procedures that declare none of their own (`sop_recovery`); applied by the actor
            runtime (in process, `LocalSOP` keeps SOPy's rejection semantics only).

    Raises:
        DefinitionError: the arguments do not make an SOP; every problem is listed.
    """

    def __init__(
        self,
        state: S,
        init_proc: Procedure[S],
        *,
        retry_limits: int = 3,
        error_handler: ErrorHandler | None = None,
        semantics: Semantics = SOPY_SEMANTICS,
        recovery: RecoveryPolicy | None = None,
    ) -> None:
        problems = []
        if isinstance(state, type):
            problems.append(f"state must be an instance, not a class: write {state.__name__}(...)")
        else:
            try:
                copy.deepcopy(state)
            except Exception as error:  # each run works on its own copy
                problems.append(f"state {type(state).__name__} must be deep-copyable: {type(error).__name__}: {error}")
        if isinstance(init_proc, type):
            problems.append(f"init_proc must be a procedure instance: write {init_proc.__name__}()")
        elif not isinstance(init_proc, Procedure):
            problems.append(f"init_proc must be a Procedure, got {type(init_proc).__name__}")
        if isinstance(retry_limits, bool) or not isinstance(retry_limits, int) or retry_limits < 0:
            problems.append(f"retry_limits must be an int >= 0, got {retry_limits!r}")
        if error_handler is not None and not callable(error_handler):
            problems.append("error_handler must be callable")
        if not isinstance(semantics, Semantics):
            problems.append(f"semantics must be a Semantics, got {type(semantics).__name__}")
        if recovery is not None and type(recovery).__name__ != "RecoveryPolicy":  # core cannot import it
            problems.append(f"recovery must be a RecoveryPolicy, got {type(recovery).__name__}")
        if problems:
            raise DefinitionError(f"SOP {type(self).__name__}", problems)
        self.state = state
        self.init_proc = init_proc
        self.retry_limits = retry_limits
        self.error_handler = error_handler
        self.semantics = semantics
        self.recovery = recovery
        self.observed: tuple[type[Event[Any]], ...] = ()
        self.agents: tuple[str, ...] = ()
        self.health_every: float | None = None
        self.memory_budget: int | None = None
        self._block: contextlib.AbstractContextManager[Any] | None = None

    @property
    def name(self) -> str:
        """The SOP's name in metrics and logs: its class name, or its entry procedure's."""
        return type(self).__name__ if type(self) is not SOP else self.init_proc.sop_name

    def observes(self, *events: type[Event[Any]]) -> Self:
        """Accept only these event types; others are ignored without reaching a handler."""
        bad = [e for e in events if not (isinstance(e, type) and issubclass(e, Event))]
        if bad:
            raise DefinitionError(f"SOP {self.name}", [f"observes() takes Event classes, got {b!r}" for b in bad])
        self.observed = tuple(events)
        return self

    def from_agent(self, *agents: Any) -> Self:
        """Govern these agents: only events sent by or to one of them reach this SOP (see `Filters`)."""
        self.agents = tuple(a if isinstance(a, str) else str(getattr(a, "name", a)) for a in agents)
        return self

    def monitored(self, every: float = 5.0, *, memory_budget: int | None = None) -> Self:
        """Have the Monitor send this SOP a `HealthCheck` event every `every` seconds until it ends.

        Args:
            every: seconds between HealthChecks.
            memory_budget: bytes of node memory the SOP counts as available; the payload's
                `memory_usage` is measured against it (default: each node's total memory).

        Raises:
            DefinitionError: `every` or `memory_budget` is not a positive number.
        """
        problems = []
        if isinstance(every, bool) or not isinstance(every, int | float) or every <= 0:
            problems.append(f"monitored(every=...) must be a number of seconds > 0, got {every!r}")
        if memory_budget is not None and (
            isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget <= 0
        ):
            problems.append(f"monitored(memory_budget=...) must be a number of bytes > 0, got {memory_budget!r}")
        if problems:
            raise DefinitionError(f"SOP {self.name}", problems)
        self.health_every, self.memory_budget = float(every), memory_budget
        return self

    def with_recovery(self, error_handler: ErrorHandler, retry_limits: int = 3) -> Self:
        """Set the error handler and retry limit (see the class docstring); keeps the filters."""
        checked = SOP(
            self.state, self.init_proc, retry_limits=retry_limits, error_handler=error_handler, semantics=self.semantics
        )
        self.retry_limits, self.error_handler = checked.retry_limits, checked.error_handler
        return self

    @property
    def filters(self) -> Filters:
        """The event filters set by `observes` and `from_agent`."""
        return Filters(tuple(event_type_name(e) for e in self.observed), self.agents)

    def initial_snapshot(self) -> Snapshot[Procedure[S], S]:
        """A fresh snapshot: a copy of the initial state, in the entry procedure, version 0."""
        return Snapshot(procedure=self.init_proc, state=copy.deepcopy(self.state))

    def start(self, *, sop_id: str | None = None, placement: Literal["spread", "dedicated"] = "spread") -> Any:
        """Start a run on the installed engine and return its handle.

        Raises:
            RuntimeUnavailable: no engine is installed; call `sopy_actors.init()` first, or run
                in process with `sopy_actors.testing.LocalSOP`.
        """
        if _engine is None:
            raise RuntimeUnavailable(
                "No runtime: call sopy_actors.init() before SOP.start(), or run the SOP in "
                "process with sopy_actors.testing.LocalSOP(sop)"
            )
        return _engine.start(self, sop_id=sop_id, placement=placement)

    def __enter__(self) -> Any:
        self._block = run_block(self.start(), self)
        return self._block.__enter__()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        block, self._block = self._block, None
        assert block is not None
        return block.__exit__(exc_type, exc, tb)
