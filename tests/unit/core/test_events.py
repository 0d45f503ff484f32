"""Events: validation that names the field, wire format, pickling, custom constructors."""

from __future__ import annotations

import multiprocessing
import pickle
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from sopy_actors import Event
from sopy_actors.core.events import MAX_DEPTH, bounded_fields, event_from_wire, event_to_wire
from sopy_actors.errors import InputError


class Copy(BaseModel):
    source: str
    dest: str
    size: int = 0


class CopyRequested(Event[Copy]):
    def __init__(self, *, toolUseId: str | None = None, source: str, dest: str) -> None:
        super().__init__(payload=Copy(source=source, dest=dest), toolUseId=toolUseId)


class Counted(Event[int]):
    pass


class Moved(Event[Copy]):
    pass


class Noted(Event[Any]):
    note: Any = None


def nested(levels: int, kind: str) -> Any:
    """`levels` lists (or dicts) inside each other, built without recursion."""
    value: Any = 0
    for _ in range(levels):
        value = [value] if kind == "list" else {"a": value}
    return value


def test_event_carries_payload_and_sopy_metadata() -> None:
    event = Counted(payload=3, description="three", sender="agent", target="sop", toolUseId="t1")
    assert (event.payload, event.description, event.sender, event.target, event.toolUseId) == (
        3, "three", "agent", "sop", "t1",
    )
    assert len(event.id) == 32 and event.id != Counted(payload=3).id


def test_events_are_immutable() -> None:
    event = Counted(payload=1)
    with pytest.raises(Exception, match="frozen"):
        event.payload = 2  # type: ignore[misc]


def test_bad_payload_raises_input_error_naming_the_field() -> None:
    with pytest.raises(InputError, match=r"Invalid Counted: field 'payload'") as info:
        Counted(payload="many")
    assert info.value.fields == ("payload",)


def test_nested_payload_error_names_the_nested_field() -> None:
    class Copied(Event[Copy]):
        pass

    with pytest.raises(InputError) as info:
        Copied(payload={"source": "a", "dest": "b", "size": "big"})
    assert info.value.fields == ("payload.size",)


def test_unknown_field_is_an_input_error() -> None:
    with pytest.raises(InputError, match="extra_field"):
        Counted(payload=1, extra_field=2)


def test_custom_constructor_builds_the_payload() -> None:
    event = CopyRequested(toolUseId="t9", source="/a", dest="/b")
    assert event.payload == Copy(source="/a", dest="/b")
    assert event.toolUseId == "t9"


def test_custom_constructor_payload_errors_are_input_errors() -> None:
    with pytest.raises(InputError, match="source"):
        CopyRequested(source=None, dest="/b")  # type: ignore[arg-type]


def test_wire_round_trip_keeps_type_and_id() -> None:
    event = CopyRequested(toolUseId="t", source="/a", dest="/b")
    wire = event_to_wire(event)
    assert wire["type"] == "tests.unit.core.test_events:CopyRequested"
    assert event_from_wire(wire) == event


def test_wire_with_unknown_type_names_the_problem() -> None:
    with pytest.raises(InputError, match="Unknown event type 'nowhere:Missing'"):
        event_from_wire({"type": "nowhere:Missing", "data": {}})


def test_wire_with_bad_data_names_the_field() -> None:
    wire = event_to_wire(Counted(payload=1))
    wire["data"]["payload"] = "x"
    with pytest.raises(InputError, match="field 'payload'"):
        event_from_wire(wire)


@pytest.mark.parametrize("message", [None, [], {"type": "x"}, {"type": 1, "data": {}, "more": 1}])
def test_malformed_wire_message_is_an_input_error(message: object) -> None:
    with pytest.raises(InputError):
        event_from_wire(message)


def test_events_round_trip_through_pickle() -> None:
    for event in (Counted(payload=5), CopyRequested(source="a", dest="b")):
        assert pickle.loads(pickle.dumps(event)) == event


def _integral_text(value: object) -> bool:
    """A string pydantic may read as an int: "7", " -3 ", "0.0", "1_000"."""
    try:
        return isinstance(value, str) and float(value).is_integer()
    except ValueError:
        return False


not_an_int = st.one_of(
    st.text(), st.floats(allow_nan=False).filter(lambda f: not f.is_integer()), st.none(),
    st.lists(st.integers()), st.dictionaries(st.text(), st.integers()),
).filter(lambda v: not _integral_text(v))


@given(not_an_int)
def test_any_wrong_payload_type_is_an_input_error_never_a_crash(value: object) -> None:
    with pytest.raises(InputError) as info:
        Counted(payload=value)
    assert "payload" in info.value.fields


@given(st.dictionaries(st.sampled_from(["source", "dest", "size", "other"]),
                       st.one_of(st.integers(), st.text(), st.none(), st.lists(st.none()))))
def test_random_structured_payloads_validate_or_raise_input_error(data: dict[str, object]) -> None:
    try:
        event = Moved(payload=data)
    except InputError as error:
        assert error.fields
    else:
        assert isinstance(event.payload, Copy)


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_a_payload_nested_ten_thousand_levels_is_an_input_error_naming_the_field(kind: str) -> None:
    with pytest.raises(InputError, match=rf"^Invalid Noted: field 'payload': nested more than {MAX_DEPTH} levels") as info:
        Noted(payload=nested(10_000, kind))
    assert info.value.fields == ("payload",)


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_a_deeply_nested_payload_from_the_wire_is_an_input_error_naming_the_field(kind: str) -> None:
    wire = {"type": event_to_wire(Noted(payload=0))["type"], "data": {"payload": nested(10_000, kind)}}
    with pytest.raises(InputError, match="field 'payload': nested more than") as info:
        event_from_wire(wire)
    assert info.value.fields == ("payload",)


def test_every_field_of_an_event_is_held_to_the_nesting_limit() -> None:
    with pytest.raises(InputError) as info:
        Noted(payload=1, note=nested(MAX_DEPTH + 1, "list"))
    assert info.value.fields == ("note",)


def test_a_payload_at_the_nesting_limit_round_trips() -> None:
    event = Noted(payload=nested(MAX_DEPTH, "dict"), note=nested(MAX_DEPTH, "list"))
    assert event_from_wire(event_to_wire(event)) == event


def test_a_payload_that_contains_itself_is_an_input_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(InputError, match="contains itself"):
        Noted(payload=loop)


def test_models_count_as_levels_of_nesting() -> None:
    copies: Any = Copy(source="a", dest="b")
    for _ in range(MAX_DEPTH):
        copies = [copies]
    with pytest.raises(InputError, match="field 'payload'"):
        Noted(payload=copies)


class Tree(BaseModel):
    children: list[Tree] = []


class Planted(Event[dict[str, list[Copy]]]):
    tree: Tree | None = None
    labels: list[Any] | None = None


def test_fields_whose_types_cannot_nest_too_deep_are_known_per_class() -> None:
    assert bounded_fields(Moved) == {"payload", "description", "sender", "target", "toolUseId", "id"}
    assert bounded_fields(Planted) == bounded_fields(Moved)  # a recursive model and list[Any] are walked
    assert "payload" not in bounded_fields(Noted)


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_deep_data_for_a_flat_payload_is_an_input_error_naming_the_field(kind: str) -> None:
    with pytest.raises(InputError) as info:
        Moved(payload=nested(10_000, kind))
    assert info.value.fields[0].startswith("payload")
    wire = {"type": event_to_wire(Moved(Copy(source="a", dest="b")))["type"], "data": {"payload": nested(10_000, kind)}}
    with pytest.raises(InputError) as info:
        event_from_wire(wire)
    assert info.value.fields[0].startswith("payload")


def test_a_recursive_model_field_is_still_held_to_the_nesting_limit() -> None:
    tree = Tree()
    for _ in range(MAX_DEPTH):
        tree = Tree(children=[tree])
    with pytest.raises(InputError, match=r"^Invalid Planted: field 'tree': nested more than") as info:
        Planted(payload={}, tree=tree)
    assert info.value.fields == ("tree",)


def _next_id(_: object) -> str:
    return Counted(1).id


def test_event_ids_are_unique_hex_strings_and_a_forked_process_draws_its_own() -> None:
    ids = [Counted(1).id for _ in range(1000)]
    assert len(set(ids)) == 1000 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        (child,) = pool.map(_next_id, [None])
    assert child[:20] != ids[0][:20] and child not in ids


class Transfer(Event[tuple[str, str]]):
    """A tool-use event written as SOPy's examples write them."""

    def __init__(self, toolUseId: str, source: str, dest: str) -> None:
        super().__init__(toolUseId=toolUseId, payload=(source, dest))


class Relayed(Event[str]):
    """A subclass that forwards SOPy's constructor arguments positionally."""

    def __init__(
        self,
        payload: str,
        description: str | None = None,
        sender: str | None = None,
        target: str | None = None,
        toolUseId: str | None = None,
    ) -> None:
        super().__init__(payload, description, sender, target, toolUseId)


class FromMonitor(Event[int]):
    sender: str | None = "monitor"


def test_the_payload_may_be_given_first_without_its_name() -> None:
    assert Counted(3).payload == 3


def test_all_five_sopy_arguments_may_be_given_in_sopys_order() -> None:
    event = Counted(3, "three", "agent", "sop", "t1")
    assert (event.payload, event.description, event.sender, event.target, event.toolUseId) == (
        3, "three", "agent", "sop", "t1",
    )


def test_positional_and_keyword_arguments_mix_as_in_python() -> None:
    event = Counted(3, sender="agent", toolUseId="t2")
    assert (event.payload, event.sender, event.toolUseId) == (3, "agent", "t2")
    with pytest.raises(TypeError, match="multiple values for argument 'payload'"):
        Counted(3, payload=4)  # type: ignore[misc]


def test_a_subclass_constructor_written_as_sopys_tool_events_leaves_the_rest_none() -> None:
    event = Transfer("t7", "/a", "/b")
    assert (event.payload, event.toolUseId) == (("/a", "/b"), "t7")
    assert (event.description, event.sender, event.target) == (None, None, None)


def test_a_subclass_constructor_may_forward_sopys_arguments_positionally() -> None:
    event = Relayed("hi", "greeting", "agent", "sop", "t3")
    assert (event.payload, event.description, event.sender, event.target, event.toolUseId) == (
        "hi", "greeting", "agent", "sop", "t3",
    )
    assert Relayed("hi").description is None


def test_a_positional_payload_of_the_wrong_type_is_an_input_error_naming_the_field() -> None:
    with pytest.raises(InputError, match=r"Invalid Counted: field 'payload'") as info:
        Counted("many")
    assert info.value.fields == ("payload",)
    with pytest.raises(InputError, match=r"Invalid Relayed: field 'payload'"):
        Relayed(3)  # type: ignore[arg-type]


def test_the_description_defaults_to_none_as_in_sopy() -> None:
    assert Counted(1).description is None
    assert Counted(payload=1).description is None


def test_arguments_not_given_keep_a_subclass_default() -> None:
    assert FromMonitor(1).sender == "monitor"
    assert FromMonitor(1, None, None).sender is None


def test_positional_events_round_trip_through_the_wire_and_pickle() -> None:
    for event in (Counted(2, "two", "agent"), Transfer("t", "/a", "/b"), Relayed("x", None, "a", "b", "t")):
        assert event_from_wire(event_to_wire(event)) == event
        assert pickle.loads(pickle.dumps(event)) == event


def test_any_payload_type_works_in_process() -> None:
    class Failed(Event[Exception]):
        pass

    class Opaque:
        pass

    error, thing = ValueError("disk full"), Opaque()
    assert Failed(error).payload is error
    assert Noted(thing).payload is thing
    assert str(Failed(error, sender="copier")) == "Failed(sender=copier, target=None, payload=disk full)"
    with pytest.raises(InputError, match=r"Invalid Failed: field 'payload'"):
        Failed("not an exception")


def test_a_payload_with_no_json_form_is_refused_only_when_it_must_cross_processes() -> None:
    class Failed(Event[Exception]):
        pass

    event = Failed(ValueError("disk full"))
    expected = r"^Invalid Failed: field 'payload' holds a value of type ValueError, which cannot cross processes"
    with pytest.raises(InputError, match=expected) as info:
        event_to_wire(event)
    assert info.value.fields == ("payload",)


def test_the_json_crossing_error_names_an_extra_field_too() -> None:
    with pytest.raises(InputError, match=r"^Invalid Noted: field 'note' holds a value of type object") as info:
        event_to_wire(Noted(1, note=object()))
    assert info.value.fields == ("note",)
