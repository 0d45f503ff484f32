"""`module:qualname` references: round trips, refusals, and a script's `__main__` by its shipped name."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sopy_actors import Event
from sopy_actors.core.events import event_from_wire, event_to_wire, event_type_name
from sopy_actors.core.references import (
    local_reference,
    portable_reference,
    reference_of,
    register_main_module,
    resolve_reference,
)
from sopy_actors.errors import InputError

SHIPPED = "_sopy_main_flow"


class Flow:
    class Step:
        pass


class Special(Flow):
    pass


def check() -> bool:
    return True


@pytest.fixture
def script() -> Iterator[types.ModuleType]:
    """A stand-in for a script run as `python flow.py`: its own `__main__`, shipped as SHIPPED."""
    main = types.ModuleType("__main__")
    exec(
        "from sopy_actors import Event\n"
        "class Drafting:\n    pass\n"
        "class Pinged(Event[str]):\n    pass\n",
        main.__dict__,
    )
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = main
    register_main_module(SHIPPED)
    try:
        yield main
    finally:
        register_main_module(None)
        sys.modules["__main__"] = saved


@pytest.mark.parametrize("obj", [Flow, Flow.Step, check], ids=["class", "nested class", "function"])
def test_a_top_level_object_round_trips_through_its_reference(obj: object) -> None:
    reference = reference_of(obj)
    assert reference == f"{__name__}:{obj.__qualname__}"  # type: ignore[attr-defined]
    assert resolve_reference(reference) is obj


def test_resolving_with_a_base_accepts_subclasses_and_refuses_anything_else() -> None:
    assert resolve_reference(reference_of(Special), Flow) is Special
    with pytest.raises(InputError, match=rf"{__name__}:check is not a Flow subclass"):
        resolve_reference(reference_of(check), Flow)


@pytest.mark.parametrize("reference", ["no_colon", ":Flow", f"{__name__}:", 42])
def test_a_malformed_reference_is_refused(reference: Any) -> None:
    with pytest.raises(InputError, match="expected 'module:qualname'"):
        resolve_reference(reference)


@pytest.mark.parametrize("reference", ["no_such_module_here:Flow", f"{__name__}:Missing", f"{__name__}:Flow.Missing"])
def test_a_reference_that_does_not_import_says_what_to_check(reference: str) -> None:
    with pytest.raises(InputError, match=rf"Cannot load {reference}: .*runtime_env"):
        resolve_reference(reference)


def _nested_function() -> Callable[[], None]:
    def inner() -> None:
        pass

    return inner


def _local_class() -> type:
    class Local:
        pass

    return Local


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (lambda: True, r"^function <lambda> is a lambda; .* make it a top-level function \(def\)"),
        (_nested_function(), r"^function _nested_function.<locals>.inner is defined inside a function; .*top level"),
        (_local_class(), r"^class _local_class.<locals>.Local is defined inside a function; .*top level"),
        (42, r"^object 42 is not a class or function"),
    ],
    ids=["lambda", "nested function", "local class", "not a function"],
)
def test_objects_other_processes_cannot_import_are_refused_with_what_to_do(obj: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        reference_of(obj)


def test_the_caller_names_what_it_refuses() -> None:
    with pytest.raises(InputError, match=r"^probe function .*<lambda> is a lambda"):
        reference_of(lambda: True, what="probe function")


def test_an_object_that_its_reference_does_not_name_is_refused() -> None:
    def impostor() -> bool:
        return False

    impostor.__qualname__ = "check"
    with pytest.raises(InputError, match=rf"function check is not what {__name__}:check names"):
        reference_of(impostor)


def test_a_class_of_an_unshipped_main_is_refused_with_how_to_ship_it() -> None:
    cls = type("Drafting", (), {"__module__": "__main__"})
    with pytest.raises(InputError, match=r"class Drafting is defined in __main__.*call sopy_actors.init\(\)"):
        reference_of(cls)


def test_a_shipped_script_is_named_by_its_module_and_resolves_to_main_without_a_second_import(
    script: types.ModuleType,
) -> None:
    reference = reference_of(script.Drafting)
    assert reference == f"{SHIPPED}:Drafting"
    assert resolve_reference(reference) is script.Drafting
    assert SHIPPED not in sys.modules


def test_the_main_mapping_is_a_string_mapping_in_both_directions(script: types.ModuleType) -> None:
    assert portable_reference("__main__:Drafting") == f"{SHIPPED}:Drafting"
    assert local_reference(f"{SHIPPED}:Drafting") == "__main__:Drafting"
    assert portable_reference("tests.x:Y") == local_reference("tests.x:Y") == "tests.x:Y"
    assert local_reference(f"{SHIPPED}_other:Y") == f"{SHIPPED}_other:Y"


def test_events_of_a_shipped_script_travel_under_its_module_name(script: types.ModuleType) -> None:
    event = script.Pinged(payload="hi")
    wire = event_to_wire(event)
    assert wire["type"] == event_type_name(script.Pinged) == f"{SHIPPED}:Pinged"
    assert event_from_wire(wire) == event
    assert SHIPPED not in sys.modules


def test_without_a_shipped_script_main_events_keep_their_main_name() -> None:
    class_ = type("Unshipped", (Event[int],), {"__module__": "__main__", "__qualname__": "Unshipped"})
    assert event_type_name(class_) == "__main__:Unshipped"


def test_only_an_identifier_can_stand_for_main() -> None:
    with pytest.raises(InputError, match="Invalid module name 'my-flow'"):
        register_main_module("my-flow")
