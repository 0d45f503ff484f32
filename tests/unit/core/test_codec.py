"""Checkpoint encoding: procedures, states and values as JSON, and how deep they may nest."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from sopy_actors import Event, Procedure, handler
from sopy_actors.core.codec import decode_procedure, decode_state, decode_value, encode_procedure, encode_state, encode_value
from sopy_actors.core.events import MAX_DEPTH
from sopy_actors.errors import InputError


class Notes(BaseModel):
    items: list[Any] = []
    tree: Any = None


class Noted(Event[Any]):
    pass


class Writing(Procedure[Notes]):
    @handler
    def on_noted(self, state: Notes, event: Noted) -> Procedure[Notes]:
        return self


def nested(levels: int, kind: str = "list") -> Any:
    """`levels` lists (or dicts) inside each other, built without recursion."""
    value: Any = 0
    for _ in range(levels):
        value = [value] if kind == "list" else {"a": value}
    return value


def writing(**attributes: Any) -> Writing:
    procedure = Writing()
    vars(procedure).update(attributes)
    return procedure


def test_procedures_states_and_values_round_trip() -> None:
    inner = writing(step=2)
    procedure = writing(history=[1, {"a": (2, 3)}], draft=Notes(items=[1]), event=Noted(payload=[4]), inner=inner)
    decoded = decode_procedure(encode_procedure(procedure))
    assert vars(decoded)["history"] == [1, {"a": [2, 3]}]
    assert vars(decoded)["draft"] == Notes(items=[1])
    assert vars(decoded)["event"] == procedure.event  # type: ignore[attr-defined]
    assert vars(vars(decoded)["inner"]) == {"step": 2}
    assert decode_state(encode_state(Notes(tree={"a": [1]}))) == Notes(tree={"a": [1]})


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_a_state_field_nested_ten_thousand_levels_is_an_input_error_naming_it(kind: str) -> None:
    with pytest.raises(InputError, match=rf"^Invalid state Notes: field 'tree': nested more than {MAX_DEPTH}") as info:
        encode_state(Notes(tree=nested(10_000, kind)))
    assert info.value.fields == ("tree",)


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_a_deeply_nested_state_in_a_checkpoint_is_an_input_error_naming_the_field(kind: str) -> None:
    data = encode_state(Notes())
    data["data"]["items"] = [nested(10_000, kind)]
    with pytest.raises(InputError, match=r"^Invalid state Notes: field 'items'") as info:
        decode_state(data)
    assert info.value.fields == ("items",)


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_a_procedure_attribute_nested_ten_thousand_levels_is_an_input_error_naming_it(kind: str) -> None:
    with pytest.raises(InputError, match=r"^Invalid procedure Writing: field 'history'") as info:
        encode_procedure(writing(history=nested(10_000, kind)))
    assert info.value.fields == ("history",)


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_a_deeply_nested_attribute_in_a_checkpoint_is_an_input_error_naming_it(kind: str) -> None:
    data = encode_procedure(writing(history=[]))
    data["attrs"]["history"] = nested(10_000, kind)
    with pytest.raises(InputError, match=r"^Invalid procedure Writing: field 'history'") as info:
        decode_procedure(data)
    assert info.value.fields == ("history",)


def test_attributes_at_the_nesting_limit_round_trip_and_one_level_more_is_refused() -> None:
    data = encode_procedure(writing(history=nested(MAX_DEPTH), model=Notes(tree=nested(MAX_DEPTH - 1))))
    assert vars(decode_procedure(data))["history"] == nested(MAX_DEPTH)
    with pytest.raises(InputError, match="field 'history'"):
        encode_procedure(writing(history=nested(MAX_DEPTH + 1)))
    with pytest.raises(InputError, match="field 'model'"):
        encode_procedure(writing(model=Notes(tree=nested(MAX_DEPTH))))


def test_procedures_inside_procedures_count_toward_the_limit() -> None:
    chain = writing()
    for _ in range(MAX_DEPTH + 1):
        chain = writing(inner=chain)
    with pytest.raises(InputError, match=r"^Invalid procedure Writing: field 'inner'"):
        encode_procedure(chain)


def test_a_deeply_nested_model_inside_a_value_is_an_input_error() -> None:
    data = encode_value({"notes": Notes()})
    data["notes"]["data"]["tree"] = nested(10_000, "dict")
    with pytest.raises(InputError, match=r"^Invalid value: field 'value'"):
        decode_value(data)
