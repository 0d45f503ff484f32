"""JSON encoding of procedures (with their attributes), states and values — never pickle.

Checkpoints and messages carry classes by name (`module:QualName`, see
`sopy_actors.core.references`). Decoding imports the module by name and accepts only
subclasses of the expected base (Procedure, BaseModel, Event), so a tampered checkpoint can
name installed classes but cannot run arbitrary code.
"""

from __future__ import annotations

import types
from typing import Any

from pydantic import BaseModel, ValidationError

from sopy_actors.core.events import Event, event_from_wire, event_to_wire, input_error
from sopy_actors.core.options import ProcedureOptions
from sopy_actors.core.procedure import Procedure, Prompt
from sopy_actors.core.references import reference_of, resolve_reference
from sopy_actors.errors import InputError, StateError

__all__ = [
    "decode_procedure",
    "decode_state",
    "decode_value",
    "encode_procedure",
    "encode_state",
    "encode_value",
]

_MARK = "__sop__"


def encode_value(value: Any, where: str = "value", *, owner: object | None = None) -> Any:
    """JSON-compatible form of plain data, pydantic models, prompts, events and procedures.

    Inside a procedure's attributes (`owner` is the procedure), a method bound to that same
    procedure is stored by name, as SOPy's `self.failure_predictors = [self._check_x, ...]`.

    Raises:
        StateError: the value (or something inside it) has no JSON form; `where` names it.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [encode_value(item, f"{where}[{i}]", owner=owner) for i, item in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value) or _MARK in value:
            raise StateError(f"{where}: dict keys must be str (and not {_MARK!r}) to checkpoint")
        return {key: encode_value(item, f"{where}.{key}", owner=owner) for key, item in value.items()}
    if owner is not None and isinstance(value, types.MethodType) and value.__self__ is owner:
        return {_MARK: "method", "name": value.__func__.__name__}
    if isinstance(value, Event):
        return {_MARK: "event", "wire": event_to_wire(value)}
    if isinstance(value, BaseModel):
        return {_MARK: "model", "type": reference_of(type(value)), "data": value.model_dump(mode="json")}
    if isinstance(value, Prompt):
        return {_MARK: "prompt", "text": value.text}
    if isinstance(value, Procedure):
        return {_MARK: "procedure", "value": encode_procedure(value)}
    raise StateError(
        f"{where} is a {type(value).__name__}, which cannot be checkpointed as JSON; keep plain "
        "data, pydantic models, events or procedures in procedure attributes and state"
    )


def decode_value(data: Any, *, owner: object | None = None) -> Any:
    """Inverse of `encode_value` (`owner`: the procedure whose methods are named inside)."""
    if isinstance(data, list):
        return [decode_value(item, owner=owner) for item in data]
    if not isinstance(data, dict):
        return data
    kind = data.get(_MARK)
    if kind is None:
        return {key: decode_value(item, owner=owner) for key, item in data.items()}
    if kind == "method" and owner is not None:
        return getattr(owner, data["name"])
    if kind == "event":
        return event_from_wire(data["wire"])
    if kind == "model":
        return _validate(resolve_reference(data["type"], BaseModel), data["data"])
    if kind == "prompt":
        return Prompt(data["text"])
    if kind == "procedure":
        return decode_procedure(data["value"])
    raise InputError(f"Unknown encoded value kind {kind!r}")


def _validate(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise input_error(model.__name__, error) from None


def encode_procedure(procedure: Procedure[Any]) -> dict[str, Any]:
    """A procedure as `{"type", "name", "options", "attrs"}`; attrs are its instance attributes."""
    cls = type(procedure)
    options = getattr(cls, "sop_options", None) or ProcedureOptions()
    return {
        "type": reference_of(cls),
        "name": cls.__name__,
        "options": options.model_dump(mode="json"),
        "attrs": encode_value(dict(vars(procedure)), f"{cls.__name__} attributes", owner=procedure),
    }


def decode_procedure(data: dict[str, Any]) -> Procedure[Any]:
    """Rebuild a procedure without calling its constructor, then restore its attributes."""
    cls = resolve_reference(data["type"], Procedure)
    procedure = cls.__new__(cls)
    vars(procedure).update(decode_value(data["attrs"], owner=procedure))
    return procedure


def encode_state(state: BaseModel) -> dict[str, Any]:
    """A state model as `{"type", "data"}`."""
    return {"type": reference_of(type(state)), "data": state.model_dump(mode="json")}


def decode_state(data: dict[str, Any]) -> BaseModel:
    """Rebuild and validate a state model."""
    return _validate(resolve_reference(data["type"], BaseModel), data["data"])
