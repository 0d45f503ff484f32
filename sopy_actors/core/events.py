"""Typed events: `Event[T]`, validation that names the field, and the wire format.

Every field of an event (and of a state, see `sopy_actors.core.codec`) may nest lists, dicts
and models at most `MAX_DEPTH` levels deep: deeper data would fail later, in JSON encoding or
on Python's recursion limit, far from where it was made. A field whose declared type cannot
nest that deep (`bounded_fields`: `str`, `list[int]`, a flat model ...) is not walked: its
validation refuses deeper data.

Runs anywhere (driver, SOP host, procedure actor, agent actor); no Ray import.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime
import decimal
import enum
import functools
import itertools
import os
import pathlib
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError, PydanticSerializationError

from sopy_actors.core.references import load_module, local_reference, portable_reference
from sopy_actors.errors import InputError

__all__ = [
    "MAX_DEPTH",
    "Event",
    "bounded_fields",
    "event_from_wire",
    "event_text",
    "event_to_wire",
    "event_type_name",
    "event_type_named",
    "input_error",
    "nesting_bound",
    "nesting_error",
    "too_deep",
]

T = TypeVar("T")

MAX_DEPTH = 100
_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep (lists, dicts, models) or contains itself; flatten it"
_CONTAINERS = (BaseModel, dict, list, tuple, set, frozenset)
_SCALARS = frozenset({str, int, float, bool, type(None)})  # skipped before isinstance: 3x faster

_REGISTRY: dict[str, type[Event[Any]]] = {}

# Event ids: 80 random bits per process, then a counter (a uuid4 per event costs ~10x more).
_id_prefix = uuid.uuid4().hex[:20]
_id_counter = itertools.count()


def _new_event_id() -> str:
    """A globally unique id, 32 hex digits like a uuid4's: this process's prefix and its count."""
    return f"{_id_prefix}{next(_id_counter):012x}"


def _new_id_prefix() -> None:
    """A forked child draws its own prefix: it must not repeat its parent's ids."""
    global _id_prefix, _id_counter
    _id_prefix, _id_counter = uuid.uuid4().hex[:20], itertools.count()


os.register_at_fork(after_in_child=_new_id_prefix)


def input_error(subject: str, error: ValidationError) -> InputError:
    """Turn a pydantic ValidationError into an InputError naming every offending field."""
    fields = tuple(".".join(str(part) for part in item["loc"]) or "<root>" for item in error.errors())
    details = "; ".join(
        f"field '{field}': {item['msg']}" for field, item in zip(fields, error.errors(), strict=True)
    )
    return InputError(f"Invalid {subject}: {details}", fields=fields)


def too_deep(value: Any) -> bool:
    """True when lists, tuples, sets, dicts and models nest in `value` more than MAX_DEPTH levels.

    Walks without recursion, so any depth is measured; a value that contains itself counts as
    too deep. Each container is walked again only when reached at a greater depth.
    """
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, _CONTAINERS) else []
    reached: dict[int, int] = {}  # id of a container -> the greatest depth it was walked at
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if reached.get(id(item), 0) >= depth:
            continue
        reached[id(item)] = depth
        children = (child for _, child in item) if isinstance(item, BaseModel) else (
            item.values() if isinstance(item, dict) else item
        )
        stack.extend(
            (child, depth + 1) for child in children if type(child) not in _SCALARS and isinstance(child, _CONTAINERS)
        )
    return False


_UNBOUNDED = MAX_DEPTH + 1
# Types whose values too_deep never walks into (it walks only _CONTAINERS).
_LEAVES = (
    str, int, float, bytes, complex, decimal.Decimal, datetime.date, datetime.time, datetime.timedelta,
    uuid.UUID, pathlib.PurePath, enum.Enum,
)
_SEQUENCES = frozenset({list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Set})
_MAPPINGS = frozenset({dict, collections.abc.Mapping})
_BOUNDED: dict[type[Any], frozenset[str]] = {}
_BOUNDS: dict[type[Any], int] = {}


def bounded_fields(kind: type[Any]) -> frozenset[str]:
    """The fields of a model or dataclass whose declared types cannot nest past MAX_DEPTH.

    Computed once per class: `too_deep` need not walk such a field while its value has its
    declared type, and validation refuses deeper data for it. Fields of unknown depth (`Any`,
    bare `list`, recursive models, arbitrary classes) and a model's extra fields are not in it.
    """
    bounded = _BOUNDED.get(kind)
    if bounded is None:
        if issubclass(kind, BaseModel):
            hints = {name: field.annotation for name, field in kind.model_fields.items()}
        elif dataclasses.is_dataclass(kind):
            try:
                hints = typing.get_type_hints(kind)
            except Exception:  # annotations that do not resolve: every field is walked
                hints = {}
        else:
            hints = {}
        bounded = _BOUNDED[kind] = frozenset(name for name, hint in hints.items() if _depth(hint, ()) <= MAX_DEPTH)
    return bounded


def nesting_bound(kind: type[Any]) -> int:
    """How deep a valid instance of `kind` can nest, itself included, as `too_deep` counts;
    more than MAX_DEPTH when unknown or unbounded. Computed once per class."""
    bound = _BOUNDS.get(kind)
    if bound is None:
        bound = _BOUNDS[kind] = _depth(kind, ())
    return bound


def _depth(annotation: Any, models: tuple[type[Any], ...]) -> int:
    """How deep a valid value of `annotation` can nest, as too_deep counts (_UNBOUNDED: unknown)."""
    if annotation is None or annotation is type(None):
        return 0
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _depth(arguments[0], models)
    if origin is typing.Union or origin is types.UnionType:
        return max(_depth(argument, models) for argument in arguments)
    if origin is typing.Literal:
        return 0
    if origin in _SEQUENCES or origin in _MAPPINGS:
        items = arguments[1:] if origin in _MAPPINGS else [item for item in arguments if item is not Ellipsis]
        return min(_UNBOUNDED, 1 + max(_depth(item, models) for item in items)) if items else _UNBOUNDED
    if origin is not None or not isinstance(annotation, type):
        return _UNBOUNDED  # Any, TypeVars, other generics
    if issubclass(annotation, BaseModel):
        if annotation in models or annotation.model_config.get("extra") == "allow":
            return _UNBOUNDED
        inner = (_depth(field.annotation, (*models, annotation)) for field in annotation.model_fields.values())
        return min(_UNBOUNDED, 1 + max(inner, default=0))
    if not issubclass(annotation, _CONTAINERS) and (issubclass(annotation, _LEAVES) or dataclasses.is_dataclass(annotation)):
        return 0
    return _UNBOUNDED


def nesting_error(subject: str, field: str) -> InputError:
    """The InputError for a field of `subject` that `too_deep` refuses, worded as `input_error`'s."""
    return InputError(f"Invalid {subject}: field '{field}': {_TOO_DEEP}", fields=(field,))


def _validating_constructor(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a subclass's own constructor so its payload errors are InputErrors too."""

    @functools.wraps(init)
    def constructor(self: Event[Any], /, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except ValidationError as error:
            raise input_error(type(self).__name__, error) from None

    constructor.__pydantic_base_init__ = True  # type: ignore[attr-defined]
    return constructor


class _Unset:
    """The default of an `Event` constructor argument that was not given."""

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()
_SOPY_ARGUMENTS = ("payload", "description", "sender", "target", "toolUseId")  # SOPy's constructor order


class Event(BaseModel, Generic[T]):
    """A typed, immutable fact sent to an SOP.

    Subclass with a payload type, `class DraftReady(Event[Draft])`, and send
    `DraftReady(Draft(...))` or `DraftReady(payload=Draft(...))`: as in SOPy, the payload,
    description, sender, target and toolUseId may be given in that order. Subclasses may add
    fields and constructors that build the payload. Invalid input raises `InputError` naming
    the field.

    Any payload type works in process (`class Failed(Event[Exception])`); to cross processes
    (`sopy_actors.core.events.event_to_wire`) an event's fields must have a JSON form.

    Attributes:
        payload: the validated payload.
        description: free text for people and LLMs.
        sender: who sent it (an agent name, "user", a parent SOP id ...).
        target: whom it is for, when not the SOP itself.
        toolUseId: the LLM tool call this event comes from, spelled as SOPy spells it.
        id: unique id; the runtime applies an event with a given id once.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    # kw_only=False shows type checkers SOPy's positional order; pydantic ignores it (see __init__).
    payload: T = Field(kw_only=False)
    description: str | None = Field(default=None, kw_only=False)
    sender: str | None = Field(default=None, kw_only=False)
    target: str | None = Field(default=None, kw_only=False)
    toolUseId: str | None = Field(default=None, kw_only=False)
    id: str = Field(default_factory=_new_event_id, min_length=1)

    sop_event_type: ClassVar[str] = ""
    sop_optional: ClassVar[bool] = False  # True: procedures without a handler ignore it
    sop_from_runtime: ClassVar[bool] = False  # True: sent by the runtime itself; passes `from_agent`

    def __init__(
        self,
        /,
        payload: Any = _UNSET,
        description: Any = _UNSET,
        sender: Any = _UNSET,
        target: Any = _UNSET,
        toolUseId: Any = _UNSET,
        **data: Any,
    ) -> None:
        # Only what was given: a subclass may declare other defaults for these fields.
        if payload is not _UNSET:
            data["payload"] = payload
        if not (description is sender is target is toolUseId is _UNSET):  # often only the payload is given
            given = zip(_SOPY_ARGUMENTS[1:], (description, sender, target, toolUseId), strict=True)
            data.update((name, value) for name, value in given if value is not _UNSET)
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise input_error(type(self).__name__, error) from None

    # Pydantic then validates wire data and unpickles without calling __init__.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @field_validator("*", mode="before")
    @classmethod
    def sop_check_depth(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse a field nested deeper than MAX_DEPTH, before pydantic validates it (a field
        whose type bounds its depth is left to its validation)."""
        if info.field_name not in bounded_fields(cls) and too_deep(value):
            raise PydanticCustomError("too_deep", _TOO_DEEP)
        return value

    def __str__(self) -> str:
        return event_text(type(self).__name__, self.sender, self.target, self.payload)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _validating_constructor(cls.__dict__["__init__"])  # type: ignore[method-assign]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.sop_event_type = f"{cls.__module__}:{cls.__qualname__}"
        _REGISTRY[cls.sop_event_type] = cls


def event_text(name: str, sender: Any, target: Any, payload: Any) -> str:
    """An event as SOPy prints it (in recovery prompts): `Name(sender=..., target=..., payload=...)`."""
    return f"{name}(sender={sender}, target={target}, payload={payload})"


def event_type_name(event_type: type[Event[Any]]) -> str:
    """The stable wire name of an event class: `module:QualName`.

    An event class of a script run as `python FILE.py` is named by the module the script is
    shipped under (`sopy_actors.core.references.portable_reference`), as every process knows it.
    """
    name = event_type.sop_event_type or f"{event_type.__module__}:{event_type.__qualname__}"
    return portable_reference(name)


def _registered(name: str) -> type[Event[Any]] | None:
    """The event class of a wire name; its module is loaded first if `load_module` allows it.

    Raises:
        InputError: the module is not loaded and may not be imported here (none of it runs).
    """
    name = local_reference(name)  # in the driver, its shipped script is __main__: never re-import it
    module, _, qualname = name.partition(":")
    if name not in _REGISTRY and module and qualname and module != "__main__":
        load_module(module)
    return _REGISTRY.get(name)


def event_to_wire(event: Event[Any]) -> dict[str, Any]:
    """Plain data for an event: `{"type": name, "data": json-compatible fields}`.

    Raises:
        InputError: a field holds a value with no JSON form (an exception, an open file ...);
            the error names the event type and the field. Such events work in process only.
    """
    try:
        data = event.model_dump(mode="json")
    except PydanticSerializationError as error:
        field = next((name for name in type(event).model_fields if not _serialisable(event, name)), None)
        what = "a field"
        if field is not None:
            what = f"field '{field}' holds a value of type {type(getattr(event, field)).__name__}, which"
        raise InputError(
            f"Invalid {type(event).__name__}: {what} cannot cross processes as JSON ({error}); send JSON "
            "data, pydantic models or dataclasses between processes, or run the SOP in process with "
            "sopy_actors.testing.LocalSOP",
            fields=() if field is None else (field,),
        ) from None
    return {"type": event_type_name(type(event)), "data": data}


def _serialisable(event: Event[Any], field: str) -> bool:
    """Whether one field of `event` has a JSON form."""
    try:
        event.model_dump(mode="json", include={field})
    except PydanticSerializationError:
        return False
    return True


def event_type_named(name: Any) -> type[Event[Any]]:
    """The event class of a wire name (`event_to_wire`'s "type"), loaded as `event_from_wire` loads it.

    Raises:
        InputError: the type is unknown here, or its module may not be imported.
    """
    try:
        event_type = _registered(name) if isinstance(name, str) else None
    except InputError as error:
        raise InputError(f"Unknown event type {name!r}: {error}", fields=("type",)) from None
    if event_type is None:
        raise InputError(
            f"Unknown event type {name!r}: no Event subclass of that name is imported in this "
            "process (is the module that defines it on the cluster's runtime_env?)",
            fields=("type",),
        )
    return event_type


def event_from_wire(message: Any) -> Event[Any]:
    """Validate plain data from `event_to_wire` back into its event class.

    Only event classes already defined in this process, or in modules `load_module` allows,
    are used: the module of an unknown type is not imported otherwise.

    Raises:
        InputError: the message is malformed, its type is unknown here (or its module may not
            be imported), or its data is invalid (a field nested deeper than MAX_DEPTH, too).
    """
    if not isinstance(message, dict) or set(message) != {"type", "data"}:
        raise InputError("Invalid event message: expected a dict with keys 'type' and 'data'")
    name, data = message["type"], message["data"]
    event_type = event_type_named(name)
    try:
        return event_type.model_validate(data)
    except ValidationError as error:
        raise input_error(event_type.__name__, error) from None
