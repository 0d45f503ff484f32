"""SOPHandle: what a driver, a handler or an agent holds to talk to one running SOP.

Small and picklable (an id, a host name, a namespace), so it can be passed to any actor.
Blocking methods use `ray.get`; `send_async` is for async code such as agent actors.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from typing import Any, Literal

import ray
from pydantic import BaseModel, ConfigDict

from sopy_actors.core.codec import decode_state
from sopy_actors.core.events import Event, event_to_wire
from sopy_actors.core.transition import Outcome
from sopy_actors.errors import InputError, RuntimeUnavailable
from sopy_actors.runtime.options import STORE_ACTOR
from sopy_actors.runtime.store import LogEntry

__all__ = ["Receipt", "SOPHandle", "SOPStatus", "SendFuture"]

# Events from one process to one SOP carry increasing sequence numbers, so the host applies
# them in the order they were sent even though Ray delivers async-actor calls out of order.
_SENDER = f"proc-{uuid.uuid4().hex}"
_sequences: dict[str, itertools.count[int]] = {}
_sequences_lock = threading.Lock()


def _next_seq(sop_id: str) -> int:
    with _sequences_lock:
        counter = _sequences.setdefault(sop_id, itertools.count())
        return next(counter)


class Receipt(BaseModel):
    """What a committed event did.

    Attributes:
        outcome: transitioned, stayed, rejected, ended or ignored.
        procedure: the procedure the SOP is in now.
        version: the SOP's version after this event.
        prompt: the recovery prompt (rejected) or the End prompt (ended).
    """

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    procedure: str
    version: int
    prompt: str | None = None

    @property
    def rejected(self) -> bool:
        """True when the SOP refused the event; `prompt` says what to do instead."""
        return self.outcome is Outcome.REJECTED


class SOPStatus(BaseModel):
    """Where an SOP is."""

    model_config = ConfigDict(frozen=True)

    sop_id: str
    name: str
    procedure: str
    version: int
    retries: int
    phase: Literal["waiting", "running", "done", "failed", "cancelled"]
    queued: int
    parent_id: str | None
    children: list[str]
    host: str
    last_prompt: str | None


def _unwrap(reply: dict[str, Any]) -> dict[str, Any]:
    if "error" in reply:
        raise reply["error"]
    return reply


def _get(ref: Any, timeout: float | None) -> Any:
    try:
        return ray.get(ref, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        raise TimeoutError(f"no answer within {timeout} s") from None
    except ray.exceptions.RayActorError as error:
        raise RuntimeUnavailable(f"SOP host unavailable: {error}") from error


def _receipt(reply: dict[str, Any]) -> Receipt:
    return Receipt.model_validate(_unwrap(reply))


class SendFuture:
    """The pending result of `SOPHandle.submit`."""

    def __init__(self, ref: Any) -> None:
        self._ref = ref

    def done(self) -> bool:
        """True once the event is committed (or failed)."""
        ready, _ = ray.wait([self._ref], timeout=0)
        return bool(ready)

    def result(self, timeout: float | None = None) -> Receipt:
        """Wait for the commit and return its receipt (or raise the event's error)."""
        return _receipt(_get(self._ref, timeout))


class SOPHandle:
    """A running (or finished) SOP on the actor runtime.

    Args:
        sop_id: the SOP's id.
        host: the name of the SOPHost actor that runs it.
        namespace: the Ray namespace of the deployment.
    """

    def __init__(self, sop_id: str, host: str, namespace: str) -> None:
        self.sop_id = sop_id
        self.host = host
        self.namespace = namespace

    def __reduce__(self) -> tuple[Any, ...]:
        return (SOPHandle, (self.sop_id, self.host, self.namespace))

    def __repr__(self) -> str:
        return f"SOPHandle({self.sop_id!r})"

    def _actor(self) -> Any:
        try:
            return ray.get_actor(self.host, namespace=self.namespace)
        except ValueError as error:
            raise RuntimeUnavailable(f"SOP host {self.host} is not running: {error}") from error

    def _wire(self, event: Event[Any]) -> dict[str, Any]:
        if not isinstance(event, Event):
            raise InputError(f"send() takes an Event, got {type(event).__name__}")
        return event_to_wire(event)

    def submit(self, event: Event[Any]) -> SendFuture:
        """Send `event` without waiting; events from this process keep their order."""
        wire = self._wire(event)
        return SendFuture(self._actor().send.remote(self.sop_id, wire, _SENDER, _next_seq(self.sop_id)))

    def send(self, event: Event[Any], *, timeout: float | None = None) -> Receipt:
        """Send `event` and return once it is committed.

        Raises:
            InputError: not an Event, an unknown event type, or an unknown SOP.
            HandlerError, TransitionError: the handler failed; nothing was committed.
            RecoveryExhausted: this rejection went past the retry limit; the SOP failed.
            SOPFailed: the SOP had already failed or was cancelled.
        """
        return self.submit(event).result(timeout)

    async def send_async(self, event: Event[Any]) -> Receipt:
        """`send` for async code (agent actors, async hosts): awaits instead of blocking."""
        wire = self._wire(event)
        reply = await self._actor().send.remote(self.sop_id, wire, _SENDER, _next_seq(self.sop_id))
        return _receipt(reply)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for End and return the final state.

        Raises:
            RecoveryExhausted, SOPFailed, SOPCancelled: the SOP did not end well.
            TimeoutError: it did not end within `timeout` seconds.
        """
        reply = _unwrap(_get(self._actor().wait_result.remote(self.sop_id), timeout))
        return decode_state(reply["state"])

    def status(self) -> SOPStatus:
        """Procedure, version, retries, phase (waiting/running/done/failed/cancelled), children."""
        return SOPStatus.model_validate(_unwrap(_get(self._actor().status.remote(self.sop_id), None)))

    def state(self) -> Any:
        """The last committed state, as the workflow's state class (its module must be importable)."""
        return decode_state(self._state_wire())

    def state_data(self) -> dict[str, Any]:
        """The last committed state as JSON data: works where the workflow's module is not importable."""
        data: dict[str, Any] = self._state_wire()["data"]
        return data

    def _state_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = _unwrap(_get(self._actor().state.remote(self.sop_id), None))["state"]
        return wire

    def history(self) -> list[LogEntry]:
        """Every committed event, oldest first."""
        store = ray.get_actor(STORE_ACTOR, namespace=self.namespace)
        entries: list[LogEntry] = _get(store.history.remote(self.sop_id), None)
        return entries

    def cancel(self) -> None:
        """Cancel the SOP and its children; waiting `result()` calls raise SOPCancelled."""
        _get(self._actor().cancel.remote(self.sop_id), None)

    # The members `with SOP(...)` and recovery code read (see sopy_actors.core.sop.Run).

    @property
    def done(self) -> bool:
        """True once the SOP reached End."""
        return self.status().phase == "done"

    @property
    def procedure_name(self) -> str:
        """The current procedure's name."""
        return self.status().procedure

    @property
    def last_prompt(self) -> str | None:
        """The last recovery prompt or End prompt."""
        return self.status().last_prompt
