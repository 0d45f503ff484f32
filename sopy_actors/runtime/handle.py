"""SOPHandle: what a driver, a handler or an agent holds to talk to one running SOP.

Plain data (an id, a host name, a namespace; a frozen model), so it can be passed to any
actor and kept in state. Blocking methods wait with `rayutil.wait`; `send_async` is for async
code such as agent actors.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from collections.abc import Awaitable
from typing import Any

import ray
from pydantic import BaseModel, ConfigDict

from sopy_actors.core.codec import decode_state
from sopy_actors.core.events import Event, event_to_wire, event_type_name
from sopy_actors.core.sop import SOPStatus
from sopy_actors.errors import InputError, RuntimeUnavailable, UnknownSOP, error_from_wire
from sopy_actors.runtime.messages import Receipt, Reply, SendItem, unwrap
from sopy_actors.runtime.options import STORE_ACTOR, host_name
from sopy_actors.runtime.rayutil import checked_timeout, wait
from sopy_actors.runtime.records import LogEntry, SOPRecord, Timer
from sopy_actors.runtime.recovering import Resolution
from sopy_actors.runtime.sending import PendingReply, SendBatcher, Sequencer, forget_host, host_actor
from sopy_actors.runtime.versions import VersionInfo, VersionRetention

__all__ = ["SOPHandle", "SendFuture", "check_sop_id", "fork_record"]

_SOP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_ANSWER_MARGIN = 5.0  # seconds a caller waits past a timeout the host enforces, for its answer to arrive


def check_sop_id(sop_id: object) -> str:
    """`sop_id` if it is a valid SOP id.

    Raises:
        InputError: not 1-128 characters of letters, digits and ._:- (starting with a letter or digit).
    """
    if not isinstance(sop_id, str) or not _SOP_ID.match(sop_id):
        raise InputError(f"sop_id {sop_id!r} must be 1-128 characters of letters, digits and ._:-", fields=("sop_id",))
    return sop_id


def fork_record(origin: SOPRecord, version: int, content: dict[str, Any], *, sop_id: str, host: str) -> SOPRecord:
    """The first checkpoint of a fork of `origin` at `version` (`content`: that version's
    procedure and state): the origin's definition and settings, a fresh history, no parent."""
    return origin.model_copy(
        update={
            "sop_id": sop_id,
            "host": host,
            "start_token": uuid.uuid4().hex,
            "parent_id": None,
            "phase": "running",
            "procedure": content["procedure"],
            "state": content["state"],
            "version": 0,
            "retries": 0,
            "senders": {},
            "last_prompt": None,
            "error": None,
            "parent_notified": False,
            "entered_version": 0,
            "recovery_history": [],
            "waiting": None,
            "agent_substitutes": {},
            "forked_from": {"sop_id": origin.sop_id, "version": version},
        }
    )

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
        return _receipt(await self._delivered(*self._numbered(event)))

    async def send_probing(self, event: Event[Any], probe: type[Event[Any]]) -> tuple[Receipt, bool]:
        """`send_async`, and whether the procedure the SOP is in afterwards never refuses an
        event of type `probe`, read from its handler's code (`core.graph.may_refuse`; False
        when that cannot be told). An agent's guard asks it of a tool's use event, for the
        tool's result event."""
        reply = await self._delivered(*self._numbered(event), probe=event_type_name(probe))
        return _receipt(reply), bool(reply.get("settles"))

    def send_soon(self, event: Event[Any]) -> asyncio.Future[Receipt]:
        """Send `event` in the background (async code); the future's result is its receipt.

        The event is numbered now: it is applied after the events this process sent the SOP
        before, and before those it sends after, whenever each arrives.
        """

        async def receipt(delivered: Awaitable[Reply]) -> Receipt:
            return _receipt(await delivered)

        return asyncio.ensure_future(receipt(self._delivered(*self._numbered(event))))

    def _numbered(self, event: Event[Any]) -> tuple[Any, SendItem]:
        wire, actor = self._wire(event), self._actor()
        return actor, Sequencer.shared().item(self.sop_id, wire)

    async def _delivered(self, actor: Any, item: SendItem, *, probe: str | None = None) -> Reply:
        try:
            reply: Reply = await actor.send.remote(*item, probe=probe)
        finally:
            Sequencer.shared().settle([item])
        return reply

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
        # The host stops waiting at `timeout` (and forgets this call); the margin lets its answer arrive.
        timeout = checked_timeout(timeout)
        margin = None if timeout is None else timeout + _ANSWER_MARGIN
        return decode_state(unwrap(self._call("wait_result", self.sop_id, timeout, timeout=margin)))

    def status(self) -> SOPStatus:
        """Procedure, version, retries, phase (waiting/running/waiting_for_human/done/failed/
        cancelled), children; what a person is asked (`waiting`) and the recovery steps taken."""
        status: SOPStatus = unwrap(self._call("status", self.sop_id))
        return status

    def state(self, version: int | None = None) -> Any:
        """The last committed state (or the state at `version`, from the Store), as the
        workflow's state class (its module must be importable).

        Raises:
            InputError: `version` does not exist or was pruned.
        """
        if version is not None:
            return self._state_at(version)
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
        entries: list[LogEntry] = wait(self._store().history.remote(self.sop_id), what="the Store")
        return entries

    def _store(self) -> Any:
        return ray.get_actor(STORE_ACTOR, namespace=self.namespace)

    # -- versions (time travel) --------------------------------------------------------------

    def versions(self) -> list[VersionInfo]:
        """The SOP's stored versions, oldest first: version, event, procedure, time, description.

        Every commit is a version (0 is the start); the SOP's version retention may have
        dropped old ones (see `set_retention`). Reads the Store, not the host.
        """
        found: list[VersionInfo] = wait(self._store().versions.remote(self.sop_id), what="the Store")
        if not found:
            self._known()
        return found

    def _state_at(self, version: int) -> Any:
        """The state at `version`, as the workflow's state class (see `state(version=...)`)."""
        return decode_state(self._content(version)["state"])

    def _content(self, version: int) -> dict[str, Any]:
        """Version `version`'s stored `{"procedure", "state"}` (JSON form).

        Raises:
            InputError: not a version number, or the version does not exist or was pruned.
            UnknownSOP: no such SOP.
        """
        if not isinstance(version, int) or isinstance(version, bool):
            raise InputError(f"a version is a whole number, not {version!r}", fields=("version",))
        content: dict[str, Any] | None = wait(self._store().version.remote(self.sop_id, version), what="the Store")
        if content is None:
            self._known()
            kept = [info.version for info in self.versions()]
            what = f"the versions kept are {kept[0]}..{kept[-1]}" if kept else "it has no stored versions"
            raise InputError(
                f"sop=<{self.sop_id}> | version {version} does not exist or was pruned; {what}", fields=("version",)
            )
        return content

    def _known(self) -> None:
        """Raise UnknownSOP if the store holds no SOP with this id."""
        if wait(self._store().load.remote(self.sop_id, 0), what="the Store") is None:
            raise UnknownSOP(self.sop_id)

    def rollback(self, version: int, *, reason: str) -> int:
        """Make a new version equal to `version` (its procedure and state); runs in the SOP's
        queue on its host, so it never interleaves with an event.

        History is never rewritten: the rollback is a new version and an entry in `history()`
        (event type `Rollback`, outcome `rolled_back`, with the reason).

        Returns:
            The new version's number.

        Raises:
            InputError: the version does not exist or was pruned, no reason is given, or the
                SOP is not running (fork an ended SOP instead); nothing changed.
            UnknownSOP: no such SOP.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise InputError("rollback() needs a reason (it is kept in the SOP's history)", fields=("reason",))
        if not isinstance(version, int) or isinstance(version, bool):
            raise InputError(f"a version is a whole number, not {version!r}", fields=("version",))
        # One id for this call and its retries: a retried call gets the version the first made.
        new_version: int = unwrap(self._call("rollback", self.sop_id, version, reason, uuid.uuid4().hex))
        return new_version

    def fork(self, version: int, *, sop_id: str | None = None) -> SOPHandle:
        """Start a new SOP from `version`'s procedure and state: its own id and history (from
        version 0), this SOP's definition and settings, `forked_from` in its status.

        The fork runs on a pool host (never a dedicated one) and has no parent; it is not
        subscribed to HealthChecks (those are the SOP class's `monitored` setting).

        Raises:
            UnknownSOP: no such SOP.
            InputError: the version does not exist or was pruned, it is the SOP's End, or
                `sop_id` is malformed or taken; nothing was started.
        """
        stored = wait(self._store().load.remote(self.sop_id, 0), what="the Store")
        if stored is None:
            raise UnknownSOP(self.sop_id)
        new_id = check_sop_id(sop_id or uuid.uuid4().hex)
        content = self._content(version)
        if content["procedure"].get("name") == "End":
            raise InputError(
                f"sop=<{self.sop_id}> | version {version} is the SOP's End; fork an earlier version", fields=("version",)
            )
        pool = int(wait(self._store().config.remote("hosts", "2"), what="the Store"))
        host = host_name(new_id, pool=pool, dedicated=False)
        record = fork_record(stored.record, version, content, sop_id=new_id, host=host)
        refused = wait(host_actor(self.namespace, host).start.remote(record), what=f"SOP host {host}")
        if refused is not None:
            raise error_from_wire(refused)
        return SOPHandle(new_id, host=host, namespace=self.namespace)

    def set_retention(self, *, last: int | None = None, newer_than: float | None = None) -> None:
        """Which old versions the store keeps for this SOP (default: all); see `VersionRetention`.

        Committed in the SOP's queue; old versions are dropped from the SOP's next snapshot on
        (every `KEYFRAME_EVERY` versions), in whole keyframe chains. Forks inherit it.

        Args:
            last: keep the newest `last` versions.
            newer_than: keep the versions committed within the last `newer_than` seconds.

        Raises:
            InputError: both given, or a value out of range.
        """
        try:
            rule = VersionRetention(last=last, newer_than=newer_than)
        except ValueError as error:
            raise InputError(f"bad version retention: {error}", fields=("last", "newer_than")) from None
        unwrap(self._call("set_retention", self.sop_id, rule.model_dump()))

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
