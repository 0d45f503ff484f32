"""SOPy's `sopy.core.sop`: `SOP`, `Conjunction`, `SOPViolation`, `SOPRetryExceptionHook`.

`SOP` takes SOPy's arguments and runs SOPy's way:

    sop = SOP(ChatState(), Greeting()).observes(UserMessage).with_recovery(handle_error, 3)
    with sop:                                  # subscribes the SOP to the EventBus
        EventBus.push_event(UserMessage("my name is Alice"))   # or sop(event)
        assert isinstance(sop.current_proc, Chatting)

- The block runs in this process when no runtime is initialised, and on the actor runtime
  after `sopy_actors.init()`: the same code either way.
- Inside the block `state`, `current_proc` and `num_retry` read the run; after a clean exit
  they read the initial state and procedure again, as in SOPy.
- A rejected event raises `SOPRetryExceptionHook` (its `str` is the recovery prompt) to
  whoever sent it; every rejection counts against `retry_limits` (SOPy's semantics). The
  rejection past the limit raises `RecoveryExhausted` where SOPy ends the process.
- Leaving the block before End calls the error handler with SOPy's `Prompt` ("SOP left
  unfinished: ...") while the budget lasts, then raises `SOPViolation`.
- Agents called inside the block send their tool events to this SOP (on the actor runtime).
- Events a handler pushes on the EventBus are for other SOPs (a sub-SOP the handler runs in its
  own `with` block): they pass by the SOP whose handler pushes them, as on the actor runtime,
  where that SOP is not subscribed in the process its handler runs in.

Runs in the calling thread; on the actor runtime each event is a round trip to the SOP's host.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar

from sopy_actors.core.context import within
from sopy_actors.core.events import Event
from sopy_actors.core.options import Semantics
from sopy_actors.core.procedure import Procedure, Prompt
from sopy_actors.core.sop import SOP as _CoreSOP
from sopy_actors.core.sop import finish_with_recovery
from sopy_actors.core.transition import SOPY, Outcome
from sopy_actors.errors import RecoveryExhausted, SOPViolation, SopyError
from sopy_actors.sopy.core._runs import run_procedure, run_retries, run_state, start_run
from sopy_actors.sopy.core.event import EventBus, deliver, raise_first

__all__ = ["SOP", "Conjunction", "SOPRetryExceptionHook", "SOPViolation"]

logger = logging.getLogger(__name__)

S = TypeVar("S")

ErrorHandler = Callable[[Any], Any]
_OUTSIDE = "`observe` should not be called outside of SOP context. Use `with` to enter the context."


def _no_recovery(*_: Any) -> None:
    """SOPy's default error handler: does nothing, so an unfinished block just uses up its retries."""


class SOPRetryExceptionHook(SopyError):
    """An SOP rejected an event: raised to whoever sent it (`EventBus.push_event`, `sop(event)`).

    `str(hook)` is the recovery prompt: tell it to whoever caused the event and let them try
    again. It stays in the process that sent the event (it carries the error handler).

    Attributes:
        prompt: the recovery prompt.
        handler: the SOP's error handler (`execute()` calls it with the prompt).
        current_procedure: the procedure the SOP is in (a rejection does not move it).
    """

    retryable = True

    def __init__(self, prompt: Prompt, handler: ErrorHandler | None, current_procedure: Procedure[Any] | None) -> None:
        self.prompt = prompt
        self.handler = handler
        self.current_procedure = current_procedure
        super().__init__(str(prompt))

    def execute(self) -> Any:
        """Call the error handler with the prompt (SOPy leaves this to the caller)."""
        return None if self.handler is None else self.handler(self.prompt)


class SOP(_CoreSOP[S], Generic[S]):
    """A standard operating procedure with SOPy's constructor and `with` block.

    Args:
        state: the initial state (copied; each `with` block starts from a copy of it).
        init_proc: the entry procedure instance (copied likewise).
        error_handler: called with SOPy's `Prompt` when a block is left before End; it should
            drive the SOP on (e.g. `lambda prompt: agent(f"Error occurred: {prompt}")`). The
            default does nothing.
        ignore_unrecongnized_events: kept for SOPy programs; as in SOPy it changes nothing
            (an event no handler takes is rejected).
        retry_limits: rejections and unfinished-exit recoveries tolerated in one block.
        semantics: SOPy's by default; `sopy_actors.core.options.STRICT` (or another
            `Semantics`) rolls rejected handlers back, counts only consecutive rejections and
            fails on handler exceptions other than assertions.

    Raises:
        DefinitionError: the arguments do not make an SOP; every problem is listed.
    """

    def __init__(
        self,
        state: S,
        init_proc: Procedure[S],
        error_handler: ErrorHandler = _no_recovery,
        ignore_unrecongnized_events: bool = True,
        retry_limits: int = 3,
        *,
        semantics: Semantics = SOPY,
    ) -> None:
        self._run: Any = None  # set first: the core's constructor assigns `state`
        super().__init__(state, init_proc, retry_limits=retry_limits, error_handler=error_handler, semantics=semantics)
        self.state, self.init_proc = copy.deepcopy(state), copy.deepcopy(init_proc)  # as SOPy: the caller's stay apart
        self.ignore_unrecongnized_events = ignore_unrecongnized_events
        self._id = uuid.uuid4().hex
        self._recoveries = 0  # error-handler calls and try_recover() calls in this block
        self._last_num_retry = 0
        self._stack: contextlib.ExitStack | None = None
        self._sending = threading.Lock()  # in process, a run takes one event at a time
        self._sending_thread: int | None = None

    @property
    def name(self) -> str:
        """The SOP's name in metrics and logs: its class name, or its entry procedure's."""
        return type(self).__name__ if type(self) is not SOP else self.init_proc.sop_name

    # -- what the run is now -----------------------------------------------------------------

    @property
    def state(self) -> S:
        """Inside the block, the run's state now (a copy: change the run through events); outside,
        the initial state (setting it sets the state the next block starts from)."""
        return self._initial_state if self._run is None else run_state(self._run)

    @state.setter
    def state(self, value: S) -> None:
        self._initial_state = value

    @property
    def current_proc(self) -> Procedure[S]:
        """Inside the block, the run's current procedure with its attributes (on the actor runtime a
        copy rebuilt from the last checkpoint); outside, the entry procedure."""
        return self.init_proc if self._run is None else run_procedure(self._run)

    @property
    def num_retry(self) -> int:
        """Rejections plus recovery attempts so far in this block (in the last one, outside)."""
        return self._last_num_retry if self._run is None else run_retries(self._run) + self._recoveries

    @property
    def obs_events(self) -> set[type[Event[Any]]]:
        """The event types `observes` accepts (empty: all)."""
        return set(self.observed)

    @property
    def obs_agents(self) -> set[str]:
        """The agents `from_agent` accepts events from (empty: all)."""
        return set(self.agents)

    # -- definition ----------------------------------------------------------------------------

    def observes(self, *events: type[Event[Any]]) -> Self:
        """Also accept these event types (calls add up, as in SOPy); others are dropped silently."""
        return super().observes(*self.observed, *(e for e in events if e not in self.observed))

    def from_agent(self, *agents: Any) -> Self:
        """Also accept events of these agents (calls add up, as in SOPy)."""
        known = self.agents
        super().from_agent(*agents)
        return super().from_agent(*known, *(a for a in self.agents if a not in known))

    def __and__(self, other: SOP[Any] | Conjunction) -> Conjunction:
        if not isinstance(other, SOP | Conjunction):
            return NotImplemented
        return Conjunction(self) & other

    # -- running -------------------------------------------------------------------------------

    def __call__(self, event: Event[Any]) -> None:
        """Send `event` to the run of the current `with` block (what `EventBus.push_event` does).

        Events the filters drop are ignored without reaching the run.

        Raises:
            RuntimeError: not inside `with sop:` (SOPy's message).
            SOPRetryExceptionHook: the SOP rejected the event; `str(hook)` is the prompt.
            RecoveryExhausted: this rejection went past `retry_limits`; the run has failed.
        """
        if not self.filters.accepts(event):
            return
        if self._run is None:
            raise RuntimeError(_OUTSIDE)
        if self._sending_thread == threading.get_ident():
            raise RuntimeError(
                f"sop=<{self._run.sop_id}> | a handler of this SOP cannot send it {type(event).__name__} while it "
                "runs; send events to other SOPs (a sub-SOP), or return the next procedure"
            )
        logger.debug("sop=<%s>, event=<%s> | handling", self._run.sop_id, event)
        with self._sending:
            self._sending_thread = threading.get_ident()
            try:
                result = self._run.send(event)
            finally:
                self._sending_thread = None
        if result.outcome is Outcome.REJECTED:
            raise SOPRetryExceptionHook(Prompt(result.prompt or ""), self.error_handler, self.current_proc)

    def _hear(self, event: Event[Any]) -> None:
        """The EventBus listener: `self(event)`, except for events this SOP's own handler pushes."""
        if self._sending_thread != threading.get_ident():
            self(event)

    def try_recover(self, prompt: Prompt) -> None:
        """Count one recovery attempt and raise it as `SOPRetryExceptionHook` (SOPy's rule).

        Raises:
            RecoveryExhausted: the block's budget (`retry_limits`) is already used up.
            SOPRetryExceptionHook: otherwise, always.
        """
        if self.num_retry >= self.retry_limits:
            raise RecoveryExhausted(self._run.sop_id if self._run is not None else self._id, self.num_retry, str(prompt))
        self._recoveries += 1
        raise SOPRetryExceptionHook(prompt, self.error_handler, self.current_proc)

    def __enter__(self) -> Self:
        with contextlib.ExitStack() as stack:
            EventBus.subscribe(self._id, self._hear)  # SOPy's ValueError when this SOP is in a block already
            stack.callback(EventBus.unsubscribe, self._id)
            self._run = start_run(self)
            stack.enter_context(within(self._run))
            stack.callback(self._forget_run)
            self._recoveries = 0
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        stack, self._stack = self._stack, None
        assert stack is not None, "__exit__ without __enter__"
        with stack:
            if exc_type is not None:
                logger.warning(
                    "sop=<%s> | the with block raised %s; the SOP is left unfinished", self._run.sop_id, exc_type.__name__
                )
                return
            finish_with_recovery(self._run, self._counted(self.error_handler), self.retry_limits, semantics=self.semantics)

    def _forget_run(self) -> None:
        """Leave the run: from now on `state`, `current_proc` and `num_retry` read the definition."""
        if self._run is not None:
            self._last_num_retry = self.num_retry
            self._run = None

    def _counted(self, handler: ErrorHandler | None) -> ErrorHandler | None:
        """The error handler, counting its calls into `num_retry`."""
        if handler is None:
            return None

        def recover(prompt: Prompt) -> Any:
            try:
                return handler(prompt)
            finally:
                self._recoveries += 1

        return recover


class Conjunction:
    """SOPs run side by side: `sop_a & sop_b`. Each sees every event; all must reach End.

    In a `with` block every member is entered (each subscribes to the EventBus and keeps its own
    filters and retry count); calling the conjunction gives an event to each member. Leaving the
    block leaves every member (each runs its own unfinished-exit recovery), then raises the
    first member's `SOPViolation`, if any.

    Args:
        *sops: the members, in order.
    """

    def __init__(self, *sops: SOP[Any]) -> None:
        self.sops: list[SOP[Any]] = list(sops)

    def __and__(self, other: SOP[Any] | Conjunction) -> Conjunction:
        if isinstance(other, Conjunction):
            self.sops.extend(other.sops)
        elif isinstance(other, SOP):
            self.sops.append(other)
        else:
            return NotImplemented
        return self

    def __call__(self, event: Event[Any]) -> None:
        """Give `event` to every member, then raise the first member's exception, if any."""
        deliver(self.sops, event)

    def __enter__(self) -> Self:
        with contextlib.ExitStack() as entered:  # a member that cannot enter leaves the others
            for sop in self.sops:
                entered.enter_context(sop)
            entered.pop_all()  # all are in: __exit__ leaves them, in order
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        errors: list[Exception] = []
        for sop in self.sops:
            try:
                sop.__exit__(exc_type, exc, tb)
            except Exception as error:
                errors.append(error)
        raise_first(errors)
