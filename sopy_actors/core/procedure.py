"""Procedures (the states of an SOP), `@handler`, `End`, prompts and `cond`.

Pure Python; handler tables are built and checked when a class is created.
"""

from __future__ import annotations

import inspect
import textwrap
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from sopy_actors.core.events import Event
from sopy_actors.core.options import ProcedureOptions
from sopy_actors.errors import DefinitionError

if TYPE_CHECKING:
    from sopy_actors.recovery.policy import RecoveryPolicy

__all__ = ["End", "Procedure", "Prompt", "cond", "handler", "make_prompt"]

S = TypeVar("S")
V = TypeVar("V")

_HANDLER_MARK = "__sop_handler__"


@dataclass(frozen=True)
class Prompt:
    """Instruction text for the LLM while the SOP is in a procedure."""

    text: str = ""

    def __str__(self) -> str:
        return self.text

    @property
    def prompt(self) -> str:
        """The text (SOPy's name for it)."""
        return self.text


def make_prompt(text: str) -> Prompt:
    """Build a Prompt from text, dedented and stripped, so triple-quoted strings read well."""
    return Prompt(textwrap.dedent(text).strip())


def cond(value: V, description: str) -> V:
    """Return `value` unchanged; `description` names the condition in the procedure graph.

    Example: `if cond(state.retries > 3, "the copy failed three times"): return Abort()`.
    """
    return value


def handler(function: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a method `(self, state, event: SomeEvent) -> next` as the handler of its event type.

    The event parameter's annotation selects which events it handles; a union handles several.
    """
    setattr(function, _HANDLER_MARK, True)
    return function


def _event_types_of(annotation: Any) -> tuple[type[Event[Any]], ...] | None:
    """The Event classes an annotation names, or None if it names anything else."""
    members = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation,)
    )
    if all(isinstance(m, type) and issubclass(m, Event) for m in members):
        return tuple(members)
    return None


def _resolve(function: Callable[..., Any], annotation: Any, owner: type) -> Any:
    if not isinstance(annotation, str):
        return annotation
    namespace = {**getattr(function, "__globals__", {}), owner.__name__: owner}
    return eval(annotation, namespace)


def _collect_handlers(
    cls: type[Procedure[Any]],
) -> tuple[dict[type[Event[Any]], str], list[str]]:
    """Build the dispatch table of a procedure class and list every problem found."""
    table: dict[type[Event[Any]], str] = {}
    problems: list[str] = []
    seen: set[str] = set()
    for klass in cls.__mro__:
        for name, member in vars(klass).items():
            if name in seen or not callable(member) or not getattr(member, _HANDLER_MARK, False):
                continue
            seen.add(name)
            problems.extend(_register(cls, name, member, table))
    return table, problems


def _register(
    cls: type, name: str, function: Callable[..., Any], table: dict[type[Event[Any]], str]
) -> list[str]:
    if inspect.iscoroutinefunction(function):
        return [f"handler {name} is async; handlers run synchronously (use agent.submit(...))"]
    parameters = list(inspect.signature(function).parameters.values())
    if len(parameters) != 3:
        return [f"handler {name} must take (self, state, event), not {len(parameters)} parameters"]
    event_parameter = parameters[2]
    if event_parameter.annotation is inspect.Parameter.empty:
        return [f"handler {name} has no annotation on '{event_parameter.name}' (the event type)"]
    try:
        annotation = _resolve(function, event_parameter.annotation, cls)
    except Exception as error:
        return [f"handler {name}: annotation {event_parameter.annotation!r} cannot be resolved ({error})"]
    event_types = _event_types_of(annotation)
    if event_types is None:
        return [f"handler {name}: annotation {annotation!r} is not an Event subclass or a union of them"]
    problems = []
    for event_type in event_types:
        if event_type in table:
            problems.append(
                f"two handlers for {event_type.__name__}: {table[event_type]} and {name}"
            )
        else:
            table[event_type] = name
    return problems


class Procedure(Generic[S]):
    """A state of an SOP: a prompt for the LLM and `@handler` methods for events.

    Instances may carry their own attributes (a retry counter, an agent handle); the runtime
    copies them along with the SOP and keeps them across events (also across rejections).

    Attributes:
        prompt: what the LLM should do here; a class attribute, or per instance via
            `Procedure(prompt=make_prompt(...))` (one class, several nodes in the graph).
        ignore: event types this procedure accepts silently without a handler.
        sop_options: how the class runs on the actor runtime (`ProcedureOptions`).
        sop_recovery: the recovery ladder for this class's failures
            (`sopy_actors.recovery.RecoveryPolicy`); the SOP's `recovery=` when None.
    """

    prompt: Prompt = Prompt()
    ignore: ClassVar[tuple[type[Event[Any]], ...]] = ()
    sop_handlers: ClassVar[dict[type[Event[Any]], str]] = {}
    sop_options: ClassVar[ProcedureOptions | None] = None
    sop_recovery: ClassVar[RecoveryPolicy | None] = None

    def __init__(self, *, prompt: Prompt | str | None = None) -> None:
        if prompt is not None:
            self.prompt = prompt if isinstance(prompt, Prompt) else make_prompt(prompt)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table, problems = _collect_handlers(cls)
        if not isinstance(cls.__dict__.get("prompt", Prompt()), Prompt):
            problems.append("prompt must be a Prompt: write prompt = make_prompt('...')")
        recovery = cls.__dict__.get("sop_recovery")
        if recovery is not None and type(recovery).__name__ != "RecoveryPolicy":  # core cannot import it
            problems.append(f"sop_recovery must be a RecoveryPolicy, got {type(recovery).__name__}")
        if problems:
            raise DefinitionError(f"procedure {cls.__name__}", problems)
        cls.sop_handlers = table

    @classmethod
    def sop_handler_for(cls, event_type: type[Event[Any]]) -> str | None:
        """Name of the method that handles `event_type` (or a base class of it), if any."""
        for klass in event_type.__mro__:
            if klass in cls.sop_handlers:
                return cls.sop_handlers[klass]
        return None

    def recover_prompt(self, state: S, event: Event[Any], exception: BaseException | None) -> str:
        """The recovery prompt when this procedure rejects `event` by itself: it has no handler
        for it (`exception` is None), or its handler raised `exception`. SOPy's texts; override
        to word them for your model.
        """
        if exception is None:
            return f"Event {event} should not happen in procedure {self.sop_name}. Please try again."
        return f"An error occurred while handling event {event}: {exception}. Please try again."

    @property
    def sop_name(self) -> str:
        """The procedure's name in prompts, graphs, logs and metrics: its class name."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{self.sop_name}()"


class End(Procedure[Any]):
    """The terminal procedure: returning `End()` finishes the SOP (`End(prompt=...)` says how)."""

    prompt = Prompt("Finish the procedure.")
