"""SOPHandle: what a driver, a handler or an agent holds to talk to one running SOP.

Plain data (an id, a host name, a namespace; a frozen model), so it can be passed to any
actor and kept in state. Blocking methods wait with `rayutil.wait`; `send_async` is for async
code such as agent actors.
"""

from __future__ import annotations

import math
import time
from typing import Any

import ray
from pydantic import BaseModel, ConfigDict

from sopy_actors.core.codec import decode_state
from sopy_actors.core.events import Event, event_to_wire
from sopy_actors.core.sop import SOPStatus
from sopy_actors.errors import InputError, RuntimeUnavailable
from sopy_actors.runtime.messages import Receipt, Reply, unwrap
from sopy_actors.runtime.options import STORE_ACTOR
from sopy_actors.runtime.rayutil import wait
from sopy_actors.runtime.recovering import Resolution
from sopy_actors.runtime.sending import PendingReply, SendBatcher, Sequencer, forget_host, host_actor
from sopy_actors.runtime.store import LogEntry, Timer

__all__ = ["SOPHandle", "SendFuture"]

def _receipt(reply: Reply) -> Receipt:
    return Receipt.model_validate(unwrap(reply))


class SendFuture:
    """The pending result of `SOPHandle.submit`."""

    def __init__(self, pending: PendingReply) -> None:
        self._pending = pending

    def done(self) -> bool:
        """True once the event is committed (or failed)."""
        return self._pending.done()

    def result(self, timeout: float | None = None) -> Receipt:
        """Wait for the commit and return its receipt (or raise the event's error)."""
        return _receipt(self._pending.reply(timeout))


class SOPHandle(BaseModel):
    """A running (or finished) SOP on the actor runtime.

    Args:
        sop_id: the SOP's id.
        host: the name of the SOPHost actor that runs it.
        namespace: the Ray namespace of the deployment.
    """

    model_config = ConfigDict(frozen=True)

    sop_id: str
    host: str
    namespace: str

    def __init__(self, sop_id: str, *, host: str, namespace: str) -> None:
        super().__init__(sop_id=sop_id, host=host, namespace=namespace)

    def __repr__(self) -> str:
        return f"SOPHandle({self.sop_id!r})"

    def _actor(self) -> Any:
        return host_actor(self.namespace, self.host)

    def _call(self, method: str, *args: Any, timeout: float | None = None) -> Any:
        """Call a host method and wait; a cached handle of a host that died for good (and was
        created again since) is dropped and the call made once more through a fresh lookup."""
        what = f"sop=<{self.sop_id}> | SOP host {self.host}"
        try:
            return wait(getattr(self._actor(), method).remote(*args), timeout, what=what)
        except RuntimeUnavailable as error:
            if isinstance(error, TimeoutError):
                raise
            forget_host(self.namespace, self.host)
            return wait(getattr(self._actor(), method).remote(*args), timeout, what=what)

    def _wire(self, event: Event[Any]) -> dict[str, Any]:
        if not isinstance(event, Event):
            raise InputError(f"send() takes an Event, got {type(event).__name__}", fields=("event",))
        return event_to_wire(event)

    def submit(self, event: Event[Any]) -> SendFuture:
        """Send `event` without waiting; events from this process keep their order.

        Events submitted to one host within a few milliseconds travel in one Ray call. A
        number is given to the event only once its host is found, and a send that fails is
        settled at once, so it never makes the host wait for it.
        """
        wire, actor = self._wire(event), self._actor()
        item = Sequencer.shared().item(self.sop_id, wire)
        return SendFuture(SendBatcher.shared().add((self.namespace, self.host), actor, item))

    def send(self, event: Event[Any], *, timeout: float | None = None) -> Receipt:
        """Send `event` and return once it is committed.

        Raises:
            InputError: not an Event, an unknown event type, or an unknown SOP.
            HandlerError, TransitionError: the handler failed; nothing was committed.
            RecoveryExhausted: this rejection went past the retry limit; the SOP failed.
            SOPFailed: the SOP had already failed or was cancelled.
            TimedOut: no receipt within `timeout` seconds.
        """
        return self.submit(event).result(timeout)

    async def send_async(self, event: Event[Any]) -> Receipt:
        """`send` for async code (agent actors, async hosts): awaits instead of blocking."""
        wire, actor = self._wire(event), self._actor()
        item = Sequencer.shared().item(self.sop_id, wire)
        try:
            reply: Reply = await actor.send.remote(*item)
        finally:
            Sequencer.shared().settle([item])
        return _receipt(reply)

    def schedule(
        self, event: Event[Any], *, at: float | None = None, after: float | None = None, timer_id: str | None = None
    ) -> str:
        """Have `event` sent to this SOP at Unix time `at`, or `after` seconds from now, once.

        The timer is durable (in the Store) when this returns: it fires after host restarts and
        on a new cluster with the same store; one that fell due meanwhile fires at once. Works
        from handlers too (`current_sop().schedule(Reminder(...), after=3600)`).

        Args:
            event: the event to deliver (its id is kept: it is applied once).
            at: when, as Unix time.
            after: when, as seconds from now.
            timer_id: the timer's id; default from the SOP and the event's id, so scheduling
                the same event again adds no second timer.

        Returns:
            The timer's id.

        Raises:
            InputError: not an Event, or not exactly one of `at` and `after` (a finite number).
        """
        if (at is None) == (after is None):
            raise InputError("schedule() takes exactly one of at= and after=", fields=("at", "after"))
        when = at if at is not None else time.time() + float(after or 0.0)
        if not isinstance(when, int | float) or not math.isfinite(when):
            raise InputError(f"schedule() needs a finite time, got {when!r}", fields=("at", "after"))
        wire = self._wire(event)
        timer = Timer(
            timer_id=timer_id or f"{self.sop_id}:{event.id}", sop_id=self.sop_id, host=self.host, due=float(when), event=wire
        )
        self._call("schedule", timer)
        return timer.timer_id

    def result(self, timeout: float | None = None) -> Any:
        """Wait for End and return the final state.

        Raises:
            RecoveryExhausted, SOPFailed, SOPCancelled: the SOP did not end well (the same
                class and fields whether or not its host restarted meanwhile).
            TimedOut: it did not end within `timeout` seconds (also a TimeoutError).
        """
        return decode_state(unwrap(self._call("wait_result", self.sop_id, timeout=timeout)))

    def status(self) -> SOPStatus:
        """Procedure, version, retries, phase (waiting/running/waiting_for_human/done/failed/
        cancelled), children; what a person is asked (`waiting`) and the recovery steps taken."""
        status: SOPStatus = unwrap(self._call("status", self.sop_id))
        return status

    def state(self) -> Any:
        """The last committed state, as the workflow's state class (its module must be importable)."""
        return decode_state(self._state_wire())

    def state_data(self) -> dict[str, Any]:
        """The last committed state as JSON data: works where the workflow's module is not importable."""
        data: dict[str, Any] = self._state_wire()["data"]
        return data

    def _state_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = unwrap(self._call("state", self.sop_id))
        return wire

    def history(self) -> list[LogEntry]:
        """Every committed event, oldest first."""
        store = ray.get_actor(STORE_ACTOR, namespace=self.namespace)
        entries: list[LogEntry] = wait(store.history.remote(self.sop_id), what="the Store")
        return entries

    def resolve(
        self, action: str | Event[Any] | dict[str, Any], *, note: str | None = None, by: str | None = None
    ) -> SOPStatus:
        """Answer an SOP that waits for a person (phase `waiting_for_human`) and resume it.

        Args:
            action: one of the choices its `Manual` step offered: "retry" (deliver the failed
                event again), "skip" (drop it), "fallback" (move to the policy's fallback
                procedure), "abort" (fail the SOP); or an event (an `Event`, or its wire form
                `{"type": "module:Class", "data": {...}}`) that the current procedure handles,
                delivered in place of the failed one.
            note: why; kept with `by` in the SOP's recovery history (the audit trail).
            by: who resolved it.

        Returns:
            The SOP's status afterwards.

        Raises:
            InputError: the SOP is not waiting for a person, the action is not one it offers,
                or the event does not fit its procedure; nothing changed.
        """
        if isinstance(action, Event):
            fields: dict[str, Any] = {"event": event_to_wire(action)}
        elif isinstance(action, dict):
            fields = {"event": action}
        else:
            fields = {"action": action}
        resolution = Resolution(**fields, note=note, by=by)
        status: SOPStatus = unwrap(self._call("resolve", self.sop_id, resolution.model_dump(exclude_none=True)))
        return status

    def cancel(self) -> None:
        """Cancel the SOP and its children; waiting `result()` calls raise SOPCancelled."""
        self._call("cancel", self.sop_id)
