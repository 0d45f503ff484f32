"""SOPy's `sopy.core.event`: `Event`, the process-wide `EventBus`, `subscribe`, `show`.

`EventBus` is SOPy's synchronous bus: `push_event(event)` appends the event to the trace, then
calls every subscriber in subscription order, in the calling thread. A `with sop:` block
subscribes its SOP, so pushing an event is how code outside an agent drives the SOP; a
rejection reaches the pusher as `SOPRetryExceptionHook` (its `str` is the recovery prompt).

Unlike SOPy, one subscriber's exception does not keep the event from the subscribers after it:
every subscriber gets the event, then the first exception is raised (the others are added to
it as notes), so the SOPs of a `Conjunction` all see every event.

The bus, its subscribers and its trace belong to one process: on the actor runtime, events an
agent's tools send go straight to the SOP's host and do not pass through this bus.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar

from sopy_actors.core.events import Event, event_text
from sopy_actors.errors import InputError

__all__ = ["Event", "EventBus", "EventTranslator", "deliver", "raise_first", "show", "subscribe"]

Listener = Callable[[Event[Any]], Any]
F = TypeVar("F", bound=Callable[..., Any])


def show(event: Event[Any]) -> str:
    """An event as SOPy prints it: `Name(sender=..., target=..., payload=...)`."""
    return event_text(type(event).__name__, event.sender, event.target, event.payload)


def deliver(listeners: Iterable[Listener], event: Event[Any]) -> None:
    """Call every listener with `event`, then raise the first exception any of them raised.

    Each further exception is added to the first as a note, so none goes unseen.
    """
    errors: list[Exception] = []
    for listener in listeners:
        try:
            listener(event)
        except Exception as error:
            errors.append(error)
    raise_first(errors)


def raise_first(errors: list[Exception]) -> None:
    """Raise the first of `errors` (if any), with each later one added to it as a note."""
    if errors:
        first = errors[0]
        for other in errors[1:]:
            first.add_note(f"and then {type(other).__name__}: {other}")
        raise first


class EventBus:
    """The process-wide event bus (static, as in SOPy).

    Attributes:
        subscribers: listeners by uid, in subscription order.
        func_to_uid: the uid of each function registered with `@subscribe`.
        trace: every event pushed in this process, oldest first (never cleared).
    """

    subscribers: ClassVar[dict[str, Listener]] = {}
    func_to_uid: ClassVar[dict[Listener, str]] = {}
    trace: ClassVar[list[Event[Any]]] = []
    _lock: ClassVar[threading.RLock] = threading.RLock()

    @staticmethod
    def subscribe(uid: str, listener: Listener) -> None:
        """Call `listener` with every event pushed from now on.

        Raises:
            ValueError: a listener with this uid is already subscribed.
        """
        with EventBus._lock:
            if uid in EventBus.subscribers:
                raise ValueError(f"Listener with UID '{uid}' already exists.")
            EventBus.subscribers[uid] = listener

    @staticmethod
    def unsubscribe(uid: str) -> None:
        """Stop calling the listener subscribed under `uid`.

        Raises:
            ValueError: no listener is subscribed under this uid.
        """
        with EventBus._lock:
            if uid not in EventBus.subscribers:
                raise ValueError(f"Listener with UID '{uid}' does not exist.")
            del EventBus.subscribers[uid]

    @staticmethod
    def push_event(event: Event[Any]) -> None:
        """Record `event` in the trace and give it to every subscriber (synchronously).

        Raises:
            SOPRetryExceptionHook: a subscribed SOP rejected the event (see the module docstring).
            RecoveryExhausted: the rejection went past that SOP's retry limit.
            Exception: whatever else a subscriber raised.
        """
        with EventBus._lock:
            EventBus.trace.append(event)
            listeners = list(EventBus.subscribers.items())
        deliver((listener for uid, listener in listeners if uid in EventBus.subscribers), event)

    @staticmethod
    def get_trace() -> list[Event[Any]]:
        """The trace itself (a live list): every event pushed in this process."""
        return EventBus.trace


def subscribe(function: F) -> F:
    """Subscribe `function` to the bus under its name: `@subscribe def audit(event): ...`.

    Raises:
        ValueError: a listener of that name is already subscribed.
    """
    EventBus.subscribe(function.__name__, function)
    EventBus.func_to_uid[function] = function.__name__
    return function


class EventTranslator:
    """Translators from outside objects to events, chosen by the object's type.

    `@EventTranslator.register()` registers a function of one annotated parameter for that
    parameter's type; `EventTranslator.translate(obj)` calls the function registered for
    `type(obj)`. (SOPy declares this class but its registry is never created.)
    """

    translator_map: ClassVar[dict[type, Callable[[Any], Event[Any]]]] = {}

    @classmethod
    def register(cls) -> Callable[[F], F]:
        """A decorator registering a translator for the type its one parameter is annotated with.

        Raises:
            InputError: the function does not have exactly one annotation, or it is not a class.
        """

        def register(function: F) -> F:
            annotations = [p.annotation for p in inspect.signature(function, eval_str=True).parameters.values()]
            kinds = [a for a in annotations if a is not inspect.Parameter.empty]
            if len(kinds) != 1 or not isinstance(kinds[0], type):
                raise InputError("Translator function must have exactly one type annotation.")
            cls.translator_map[kinds[0]] = function
            return function

        return register

    @classmethod
    def translate(cls, obj: Any) -> Event[Any]:
        """The event the translator registered for `type(obj)` makes of `obj`.

        Raises:
            InputError: no translator is registered for that type.
        """
        translator = cls.translator_map.get(type(obj))
        if translator is None:
            raise InputError(f"No translator is registered for {type(obj).__name__}: use @EventTranslator.register()")
        return translator(obj)
