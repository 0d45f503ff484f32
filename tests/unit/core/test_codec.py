"""Checkpoint encoding: procedures, states and values as JSON, and how deep they may nest."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import threading
from typing import Any

import pytest
from pydantic import BaseModel

from sopy_actors import Event, Procedure, handler
from sopy_actors.core.codec import decode_procedure, decode_state, decode_value, encode_procedure, encode_state, encode_value
from sopy_actors.core.events import MAX_DEPTH
from sopy_actors.errors import InputError, StateError
from tests.support import sopy_states as s


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


class Flat(BaseModel):
    """A state whose declared types cannot nest too deep: encoding walks none of it."""

    count: int = 0
    items: list[int] = []


@dataclasses.dataclass
class FlatRecord:
    items: list[int] = dataclasses.field(default_factory=list)


@pytest.mark.parametrize("state", [Flat(), FlatRecord()], ids=["model", "dataclass"])
def test_deep_data_a_handler_put_in_a_flat_state_is_still_an_input_error_naming_the_field(state: Any) -> None:
    assert decode_state(encode_state(state)) == state
    state.items = [1, nested(10_000)]  # no validation on assignment: not what the field declares
    with pytest.raises(InputError, match=rf"^Invalid state {type(state).__name__}: field 'items': nested more than") as info:
        encode_state(state)
    assert info.value.fields == ("items",)


@pytest.mark.parametrize("kind", [Flat, FlatRecord], ids=["model", "dataclass"])
def test_deep_data_in_a_flat_states_checkpoint_is_an_input_error_naming_the_field(kind: type) -> None:
    data = encode_state(kind())
    data["data"]["items"] = [nested(10_000)]
    with pytest.raises(InputError, match=rf"^Invalid state {kind.__name__}: field 'items': nested more than") as info:
        decode_state(data)
    assert info.value.fields == ("items",)


def test_a_flat_model_attribute_holding_deep_data_is_an_input_error_naming_the_attribute() -> None:
    model = Flat()
    model.items = nested(MAX_DEPTH)
    with pytest.raises(InputError, match=r"^Invalid procedure Writing: field 'model'"):
        encode_procedure(writing(model=model))
    assert vars(decode_procedure(encode_procedure(writing(model=Flat(items=[1])))))["model"] == Flat(items=[1])


def test_a_deeply_nested_model_inside_a_value_is_an_input_error() -> None:
    data = encode_value({"notes": Notes()})
    data["notes"]["data"]["tree"] = nested(10_000, "dict")
    with pytest.raises(InputError, match=r"^Invalid value: field 'value'"):
        decode_value(data)


@dataclasses.dataclass
class Loose:
    anything: Any = None


@dataclasses.dataclass
class Guarded:
    lock: threading.Lock


def test_a_dict_state_is_its_own_json_data_and_decodes_to_a_new_dict() -> None:
    state = {"messages": ["hi"], "meta": {"turns": 1, "pair": ("a", "b"), "ok": True, "none": None}}
    encoded = encode_state(state)
    assert encoded == {
        "type": "builtins:dict",
        "data": {"messages": ["hi"], "meta": {"turns": 1, "pair": ["a", "b"], "ok": True, "none": None}},
    }
    decoded = decode_state(encoded)
    assert type(decoded) is dict and decoded == encoded["data"]
    decoded["messages"].append("changed")
    assert encoded["data"]["messages"] == ["hi"]


def test_a_dataclass_state_round_trips_with_nested_dataclasses_tuples_and_init_false_fields() -> None:
    state = s.Tally(words=["a", "bb"], span=s.Span("a", "bb"), lengths=(1, 2))
    state.rounds = 2
    encoded = encode_state(state)
    assert encoded == {
        "type": "tests.support.sopy_states:Tally",
        "data": {"words": ["a", "bb"], "span": {"first": "a", "last": "bb"}, "lengths": [1, 2], "rounds": 2},
    }
    decoded = decode_state(encoded)
    assert decoded == state and decoded.rounds == 2
    assert isinstance(decoded.span, s.Span) and decoded.lengths == (1, 2)


@pytest.mark.parametrize(
    ("state", "name"),
    [(s.TaskState(), "TaskState"), (collections.defaultdict(list), "defaultdict"), (["a"], "list")],
)
def test_a_state_of_another_type_cannot_cross_processes_and_the_error_names_the_type(state: Any, name: str) -> None:
    with pytest.raises(StateError, match=rf"^state {name} cannot cross processes: only a dict of JSON data, a dataclass"):
        encode_state(state)


def test_a_value_with_no_json_form_in_a_dict_state_is_named_with_its_place_and_type() -> None:
    with pytest.raises(StateError, match=r"^state dict\['log'\]\[1\] is a datetime, which cannot be checkpointed as JSON"):
        encode_state({"log": ["start", datetime.datetime(2024, 1, 1)]})
    with pytest.raises(StateError, match=r"^state dict\['counts'\] has the key 1: keys of a dict state must be str"):
        encode_state({"counts": {1: "one"}})


def test_a_dataclass_state_with_a_value_or_field_type_with_no_json_form_is_a_state_error_naming_it() -> None:
    with pytest.raises(StateError, match=r"^state Loose cannot be checkpointed as JSON: .*object"):
        encode_state(Loose(anything=object()))
    with pytest.raises(StateError, match=r"^state Guarded cannot be checkpointed as JSON: its fields' types give no JSON"):
        encode_state(Guarded(threading.Lock()))


def test_a_model_state_with_a_value_with_no_json_form_is_a_state_error_naming_it() -> None:
    with pytest.raises(StateError, match=r"^state Notes cannot be checkpointed as JSON"):
        encode_state(Notes(tree=object()))


def test_a_dataclass_checkpoint_with_invalid_data_is_an_input_error_naming_the_field() -> None:
    encoded = encode_state(s.Tally())
    encoded["data"]["lengths"] = ["long"]
    with pytest.raises(InputError, match=r"^Invalid state Tally: field 'lengths.0'") as info:
        decode_state(encoded)
    assert info.value.fields == ("lengths.0",)
    encoded = encode_state(s.Tally())
    encoded["data"]["rounds"] = "many"
    with pytest.raises(InputError, match=r"^Invalid state Tally: field 'rounds'"):
        decode_state(encoded)


@pytest.mark.parametrize("reference", ["tests.support.sopy_states:TaskState", "tests.support.sopy_states:chat_sop"])
def test_a_checkpoint_naming_neither_a_dataclass_nor_a_model_is_refused(reference: str) -> None:
    with pytest.raises(InputError, match=rf"{reference} is not a BaseModel subclass or a dataclass"):
        decode_state({"type": reference, "data": {}})


def test_a_dict_state_nested_too_deep_is_an_input_error_naming_the_key() -> None:
    with pytest.raises(InputError, match=r"^Invalid state dict: field 'tree': nested more than"):
        encode_state({"tree": nested(10_000)})


def test_set_attributes_of_a_procedure_round_trip_as_sets() -> None:
    from sopy_actors.core.codec import decode_procedure, encode_procedure
    from tests.support import docflow

    procedure = docflow.Drafting()
    procedure.copied = {"/b", "/a"}  # type: ignore[attr-defined]  # SOPy keeps sets in attributes
    encoded = encode_procedure(procedure)
    assert encoded["attrs"]["copied"]["items"] == ["/a", "/b"]  # a stable order
    assert decode_procedure(encoded).copied == {"/a", "/b"}  # type: ignore[attr-defined]
