"""JSON encoding of procedures (with their attributes), states and values — never pickle.

Checkpoints and messages carry classes by name (`module:QualName`, see
`sopy_actors.core.references`). Decoding loads a class's module only when `load_module` allows
it (already loaded, the job's code, or trusted) and accepts only subclasses of the expected
base (Procedure, BaseModel, Event; a state may also be a dataclass), so a tampered checkpoint
cannot run other modules' code.

A procedure class built from data (a generated workflow step, see
`sopy_actors.core.references.Definition`) is encoded with its definition next to its type, and
rebuilt from that data by the decoder its reference names: it never needs to be importable.

A state crosses processes as a dict of JSON data, a dataclass or a pydantic model; any other
state works in process only and is refused here with a StateError naming its type.

Lists, dicts and procedures in a procedure's attributes nest at most `MAX_DEPTH` levels, and so
do the fields of states, models and events (`sopy_actors.core.events.too_deep`); deeper data
raises InputError naming the field, when encoded and when decoded alike, instead of failing
later in JSON encoding or on Python's recursion limit. Fields whose declared types cannot nest
that deep (`sopy_actors.core.events.bounded_fields`) are walked only when a value is not of
its declared type (the JSON encoding, which runs anyway, says so) or their data does not
validate: so a flat state costs no walk.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from pydantic import BaseModel, PydanticUserError, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from sopy_actors.core.events import (
    MAX_DEPTH,
    Event,
    bounded_fields,
    event_from_wire,
    event_to_wire,
    input_error,
    nesting_bound,
    nesting_error,
    too_deep,
)
from sopy_actors.core.options import ProcedureOptions
from sopy_actors.core.procedure import Procedure, Prompt
from sopy_actors.core.references import (
    definition_of,
    is_definition_reference,
    reference_of,
    resolve_definition,
    resolve_reference,
)
from sopy_actors.errors import InputError, StateError

__all__ = [
    "decode_procedure",
    "decode_state",
    "decode_value",
    "encode_procedure",
    "encode_state",
    "encode_value",
    "procedure_class",
]

_MARK = "__sop__"
_DICT_STATE = "builtins:dict"  # the "type" of a dict state
_DATACLASS_ADAPTERS: dict[type[Any], tuple[TypeAdapter[Any], dict[str, TypeAdapter[Any]]]] = {}


class _Field(NamedTuple):
    """The field a value sits in, as errors name it: ("procedure Drafting", "history")."""

    subject: str
    name: str


def encode_value(value: Any, where: str = "value", *, owner: object | None = None) -> Any:
    """JSON-compatible form of plain data, pydantic models, prompts, events and procedures.

    Inside a procedure's attributes (`owner` is the procedure), a method bound to that same
    procedure is stored by name, as SOPy's `self.failure_predictors = [self._check_x, ...]`.

    Raises:
        StateError: the value (or something inside it) has no JSON form; `where` names it.
        InputError: it nests deeper than MAX_DEPTH; `where` names it.
    """
    return _encode(value, where, owner, _Field(where, where), 0)


def _encode(value: Any, where: str, owner: object | None, field: _Field, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if owner is not None and isinstance(value, types.MethodType) and value.__self__ is owner:
        return {_MARK: "method", "name": value.__func__.__name__}
    if isinstance(value, Prompt):
        return {_MARK: "prompt", "text": value.text}
    if isinstance(value, Event):  # its fields were checked when it was made
        return {_MARK: "event", "wire": event_to_wire(value)}
    if isinstance(value, BaseModel):
        data = _bounded_dump(value)
        if data is None:
            if too_deep(value):
                raise nesting_error(*field)
            data = value.model_dump(mode="json")
        return {_MARK: "model", "type": reference_of(type(value)), "data": data}
    if depth == MAX_DEPTH and isinstance(value, list | tuple | dict | set | frozenset | Procedure):
        raise nesting_error(*field)
    if isinstance(value, list | tuple):
        return [_encode(item, f"{where}[{i}]", owner, field, depth + 1) for i, item in enumerate(value)]
    if isinstance(value, set | frozenset):  # SOPy procedures keep sets in attributes
        items = sorted(value, key=repr)  # a stable order: the same set always encodes the same
        return {_MARK: "set", "items": [_encode(item, f"{where}{{}}", owner, field, depth + 1) for item in items]}
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value) or _MARK in value:
            raise StateError(f"{where}: dict keys must be str (and not {_MARK!r}) to checkpoint")
        return {key: _encode(item, f"{where}.{key}", owner, field, depth + 1) for key, item in value.items()}
    if isinstance(value, Procedure):
        return {_MARK: "procedure", "value": _encode_procedure(value, depth + 1)}
    raise StateError(
        f"{where} is a {type(value).__name__}, which cannot be checkpointed as JSON; keep plain "
        "data, pydantic models, events or procedures in procedure attributes and state"
    )


def _bounded_dump(model: BaseModel) -> Any:
    """The model's JSON data if its declared types keep it within MAX_DEPTH and its values have
    those types (no serializer warning), so it needs no walk; else None."""
    if nesting_bound(type(model)) > MAX_DEPTH:
        return None
    try:
        return model.model_dump(mode="json", warnings="error")
    except ValueError:  # a serializer warning, or pydantic's own depth limit
        return None


def decode_value(data: Any, *, owner: object | None = None) -> Any:
    """Inverse of `encode_value` (`owner`: the procedure whose methods are named inside).

    Raises:
        InputError: a class it names may not be loaded or is not what is expected, data is
            invalid, or it nests deeper than MAX_DEPTH.
    """
    return _decode(data, owner, _Field("value", "value"), 0)


def _decode(data: Any, owner: object | None, field: _Field, depth: int) -> Any:
    if isinstance(data, dict) and data.get(_MARK) is not None:
        return _decode_marked(data, owner, field, depth)
    if isinstance(data, list | dict) and depth == MAX_DEPTH:
        raise nesting_error(*field)
    if isinstance(data, list):
        return [_decode(item, owner, field, depth + 1) for item in data]
    if isinstance(data, dict):
        return {key: _decode(item, owner, field, depth + 1) for key, item in data.items()}
    return data


def _decode_marked(data: dict[str, Any], owner: object | None, field: _Field, depth: int) -> Any:
    kind = data[_MARK]
    if kind == "method" and owner is not None:
        return getattr(owner, data["name"])
    if kind == "set":
        return set(_decode(data["items"], owner, field, depth + 1))
    if kind == "prompt":
        return Prompt(data["text"])
    if kind == "event":
        return event_from_wire(data["wire"])
    if kind == "model":
        if too_deep(data["data"]):
            raise nesting_error(*field)
        return _validate(resolve_reference(data["type"], BaseModel), data["data"])
    if kind == "procedure":
        if depth == MAX_DEPTH:
            raise nesting_error(*field)
        return _decode_procedure(data["value"], depth + 1)
    raise InputError(f"Unknown encoded value kind {kind!r}")


def _validate(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise input_error(model.__name__, error) from None


def encode_procedure(procedure: Procedure[Any]) -> dict[str, Any]:
    """A procedure as `{"type", "name", "prompt", "options", "attrs"}`; attrs are its instance
    attributes, `prompt` its instruction text (so a host can show it without the class). A class
    built from data adds `"definition"`, the data it is rebuilt from, and its type is `module@key`;
    its `"runs_as"` names the imported class whose actors run it, when its definition names one.

    Raises:
        StateError: an attribute has no JSON form.
        InputError: an attribute nests deeper than MAX_DEPTH; the error names it.
    """
    return _encode_procedure(procedure, 0)


def _encode_procedure(procedure: Procedure[Any], depth: int) -> dict[str, Any]:
    cls = type(procedure)
    options = getattr(cls, "sop_options", None) or ProcedureOptions()
    subject = f"procedure {cls.__name__}"
    definition = definition_of(cls)
    return {
        "type": reference_of(cls) if definition is None else definition.reference,
        "name": cls.__name__,
        "prompt": str(procedure.prompt),
        "options": options.model_dump(mode="json"),
        "attrs": {
            name: _encode(value, f"{cls.__name__} attributes.{name}", procedure, _Field(subject, name), depth)
            for name, value in vars(procedure).items()
        },
        **({} if definition is None else {"definition": definition.data}),
        **({} if definition is None or definition.runs_as is None else {"runs_as": definition.runs_as}),
    }


def decode_procedure(data: dict[str, Any]) -> Procedure[Any]:
    """Rebuild a procedure without calling its constructor, then restore its attributes. A
    class built from data may come without its `"definition"` where this process has built it.

    Raises:
        DefinitionNeeded: its definition was left out, and this process does not have it.
        InputError: its class may not be loaded or is not a Procedure, or an attribute is
            invalid or nests deeper than MAX_DEPTH.
    """
    return _decode_procedure(data, 0)


def procedure_class(reference: str, definition: Any = None) -> type[Procedure[Any]]:
    """The procedure class `reference` names: imported (`module:qualname`), or built from a
    definition (`module@key`: from `definition`, or the one this process kept).

    Raises:
        DefinitionNeeded: a class built from data, without `definition`, that this process does not keep.
        InputError: the class may not be loaded or is not a Procedure.
    """
    if definition is not None or is_definition_reference(str(reference)):
        return resolve_definition(reference, definition, Procedure)
    return resolve_reference(reference, Procedure)


def _decode_procedure(data: dict[str, Any], depth: int) -> Procedure[Any]:
    cls = procedure_class(data["type"], data.get("definition"))
    procedure = cls.__new__(cls)
    subject = f"procedure {cls.__name__}"
    attributes = {name: _decode(value, procedure, _Field(subject, name), depth) for name, value in data["attrs"].items()}
    vars(procedure).update(attributes)
    return procedure


def encode_state(state: Any) -> dict[str, Any]:
    """A state as `{"type", "data"}`, `data` its JSON data: for a pydantic model or a dataclass
    its fields, for a dict the dict itself (tuples in it become lists, as in JSON).

    Other states (any deep-copyable object) work in process only (`sopy_actors.testing.LocalSOP`).

    Raises:
        StateError: the state is of another type, or holds a value with no JSON form; the
            message names the type.
        InputError: a field nests deeper than MAX_DEPTH; the error names it.
    """
    kind = type(state)
    subject = f"state {kind.__name__}"
    if kind is dict:
        _check_fields(subject, state.items())
        return {"type": _DICT_STATE, "data": _json_data(state, subject)}
    if isinstance(state, BaseModel):

        def model_fields() -> Iterable[tuple[str, Any]]:
            return state

        def dump_model(**options: Any) -> Any:
            return state.model_dump(mode="json", **options)

        return {"type": reference_of(kind), "data": _fields_json(subject, kind, model_fields, dump_model)}
    if dataclasses.is_dataclass(state) and not isinstance(state, type):

        def dataclass_fields() -> Iterable[tuple[str, Any]]:
            return ((field.name, getattr(state, field.name)) for field in dataclasses.fields(state))

        def dump_dataclass(**options: Any) -> Any:
            return _dataclass_adapter(subject, kind).dump_python(state, mode="json", **options)

        return {"type": reference_of(kind), "data": _fields_json(subject, kind, dataclass_fields, dump_dataclass)}
    raise StateError(
        f"{subject} cannot cross processes: only a dict of JSON data, a dataclass or a pydantic model can be "
        "checkpointed as JSON; make the state one of those, or run the SOP in process with "
        "sopy_actors.testing.LocalSOP"
    )


def decode_state(data: dict[str, Any]) -> Any:
    """Rebuild a state from `encode_state`'s form: a dict, or a validated dataclass or model.

    Raises:
        InputError: its class may not be loaded or is not a dataclass or model, or its data is
            invalid (a field nests deeper than MAX_DEPTH, too).
    """
    reference, fields = data["type"], data["data"]
    if reference == _DICT_STATE:
        if not isinstance(fields, dict):
            raise InputError(f"Invalid state dict: expected a JSON object, got {type(fields).__name__}")
        _check_fields("state dict", fields.items())
        return copy.deepcopy(fields)
    kind = resolve_reference(reference)
    if not (isinstance(kind, type) and (issubclass(kind, BaseModel) or dataclasses.is_dataclass(kind))):
        raise InputError(f"{reference} is not a BaseModel subclass or a dataclass")
    subject = f"state {kind.__name__}"
    if isinstance(fields, dict):
        _check_fields(subject, fields.items(), skip=bounded_fields(kind))
    try:
        if issubclass(kind, BaseModel):
            return _validate(kind, fields)
        return _restore_dataclass(kind, fields)
    except InputError:
        if isinstance(fields, dict):  # data a bounded field refused may be too deep: say so, as for any field
            _check_fields(subject, fields.items())
        raise


def _json_data(value: Any, where: str) -> Any:
    """`value` as JSON data (a tuple becomes a list); StateError naming where a non-JSON value sits."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_data(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        key = next((key for key in value if not isinstance(key, str)), None)
        if key is not None:
            raise StateError(f"{where} has the key {key!r}: keys of a dict state must be str to be checkpointed as JSON")
        return {key: _json_data(item, f"{where}[{key!r}]") for key, item in value.items()}
    raise StateError(
        f"{where} is a {type(value).__name__}, which cannot be checkpointed as JSON: keep JSON data in a dict "
        "state (str, int, float, bool, None, lists and dicts with str keys), make the state a dataclass "
        "or pydantic model, or run the SOP in process with sopy_actors.testing.LocalSOP"
    )


def _fields_json(
    subject: str,
    kind: type[Any],
    fields: Callable[[], Iterable[tuple[str, Any]]],
    dump: Callable[..., Any],
) -> Any:
    """The JSON data of a model or dataclass state, each of its `fields` held to MAX_DEPTH.

    Fields whose declared types bound their depth are walked only when the dump finds a value
    not of its declared type (`warnings="error"`); then every field is, as for any state.
    """
    bounded = bounded_fields(kind)
    _check_fields(subject, fields(), skip=bounded)
    if bounded:
        try:
            return dump(warnings="error")
        except (ValueError, StateError):  # a value of another type (or past pydantic's depth limit): walk all, dump as ever
            _check_fields(subject, fields())
    return _dump(subject, dump)


def _dump(subject: str, dump: Callable[[], Any]) -> Any:
    """The JSON data `dump` returns; StateError naming `subject` if a value has no JSON form."""
    try:
        return dump()
    except PydanticSerializationError as error:
        raise StateError(
            f"{subject} cannot be checkpointed as JSON: {error}; keep JSON data, dataclasses and pydantic "
            "models in it, or run the SOP in process with sopy_actors.testing.LocalSOP"
        ) from None


def _adapters(kind: type[Any]) -> tuple[TypeAdapter[Any], dict[str, TypeAdapter[Any]]]:
    """Validators of a dataclass: of the whole (its `__init__` fields), and of each `init=False` field."""
    adapters = _DATACLASS_ADAPTERS.get(kind)
    if adapters is None:  # built once per class: building a validator takes milliseconds
        hints = typing.get_type_hints(kind)
        later = {field.name: TypeAdapter(hints[field.name]) for field in dataclasses.fields(kind) if not field.init}
        adapters = _DATACLASS_ADAPTERS[kind] = (TypeAdapter(kind), later)
    return adapters


def _dataclass_adapter(subject: str, kind: type[Any]) -> TypeAdapter[Any]:
    """The validator of a dataclass state; StateError if its fields' types give no JSON schema."""
    try:
        return _adapters(kind)[0]
    except (PydanticUserError, NameError) as error:
        raise StateError(
            f"{subject} cannot be checkpointed as JSON: its fields' types give no JSON schema "
            f"({str(error).splitlines()[0]}); give its fields JSON types, dataclasses or pydantic models, "
            "or run the SOP in process with sopy_actors.testing.LocalSOP"
        ) from None


def _restore_dataclass(kind: type[Any], fields: Any) -> Any:
    """A dataclass state from its fields: constructed, then its `init=False` fields set."""
    whole, later = _adapters(kind)
    subject = f"state {kind.__name__}"
    try:
        state = whole.validate_python(fields)
    except ValidationError as error:
        raise input_error(subject, error) from None
    for name in later.keys() & fields.keys():
        try:
            value = later[name].validate_python(fields[name])
        except ValidationError as error:
            raise InputError(f"Invalid {subject}: field '{name}': {error.errors()[0]['msg']}", fields=(name,)) from None
        object.__setattr__(state, name, value)  # as dataclasses' own __init__ does, for frozen ones too
    return state


def _check_fields(subject: str, fields: Iterable[tuple[str, Any]], *, skip: frozenset[str] = frozenset()) -> None:
    """Raise for the first `(name, value)` pair not in `skip` whose value nests deeper than MAX_DEPTH."""
    for name, value in fields:
        if name not in skip and too_deep(value):
            raise nesting_error(subject, name)
