"""`module:qualname` references: round trips, refusals, a script's `__main__` by its shipped name,
and which modules data may make a process import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import types
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sopy_actors import Event
from sopy_actors.core.codec import decode_procedure, decode_state, decode_value
from sopy_actors.core.events import event_from_wire, event_to_wire, event_type_name
from sopy_actors.core.references import (
    TRUSTED_MODULES_ENV,
    local_reference,
    portable_reference,
    reference_of,
    register_main_module,
    resolve_reference,
    trust_modules,
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


def test_a_reference_follows_what_its_name_binds_now(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Special
    assert resolve_reference(reference_of(original)) is original  # known, and cached

    class Replacement:
        pass

    monkeypatch.setattr(sys.modules[__name__], "Special", Replacement)
    assert resolve_reference(f"{__name__}:Special") is Replacement
    with pytest.raises(InputError, match=rf"class Special is not what {__name__}:Special names"):
        reference_of(original)


def test_a_module_imported_anew_under_the_same_name_gives_its_new_classes(elsewhere: Path) -> None:
    name = plant(elsewhere, unique("flow"))
    trust_modules(name)
    first = resolve_reference(f"{name}:Thing")
    del sys.modules[name]
    second = resolve_reference(f"{name}:Thing")
    assert second is not first and second is sys.modules[name].Thing
    assert reference_of(second) == f"{name}:Thing"
    with pytest.raises(InputError, match="is not what"):
        reference_of(first)


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


# Each file of a planted module records that it ran, as any top-level code could do worse.
SIDE_EFFECT = """
import pathlib
with open(pathlib.Path(__file__).resolve().parents[{up}] / "ran.txt", "a") as ran:
    ran.write(__name__ + "\\n")

class Thing:
    pass
"""


def plant(root: Path, name: str) -> str:
    """Write module `name` (dotted: with its packages) under `root`; every file logs to root/ran.txt."""
    parts = name.split(".")
    for depth in range(1, len(parts)):
        package = root.joinpath(*parts[:depth])
        package.mkdir(exist_ok=True)
        (package / "__init__.py").write_text(SIDE_EFFECT.format(up=depth))
    root.joinpath(*parts[:-1], f"{parts[-1]}.py").write_text(SIDE_EFFECT.format(up=len(parts) - 1))
    return name


def ran(root: Path) -> list[str]:
    """The modules planted under `root` whose code ran."""
    log = root / "ran.txt"
    return log.read_text().split() if log.exists() else []


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path that is not the job's code; modules imported from it are forgotten after."""
    directory, current = tmp_path / "elsewhere", tmp_path / "current"
    directory.mkdir()
    current.mkdir()
    monkeypatch.chdir(current)  # the current directory is the job's code in a driver
    monkeypatch.syspath_prepend(str(directory))
    before = set(sys.modules)
    yield directory
    for name in set(sys.modules) - before:
        del sys.modules[name]


def unique(stem: str) -> str:
    return f"{stem}_{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(
    "load",
    [
        lambda name: resolve_reference(f"{name}:Thing"),
        lambda name: event_from_wire({"type": f"{name}:Thing", "data": {"payload": 1}}),
        lambda name: decode_state({"type": f"{name}:Thing", "data": {}}),
        lambda name: decode_procedure({"type": f"{name}:Thing", "name": "Thing", "options": {}, "attrs": {}}),
        lambda name: decode_value({"attrs": [{"__sop__": "model", "type": f"{name}:Thing", "data": {}}]}),
    ],
    ids=["reference", "event type", "state", "procedure", "model in a value"],
)
def test_a_module_outside_the_jobs_code_named_by_data_is_refused_and_never_imported(
    elsewhere: Path, load: Callable[[str], object]
) -> None:
    name = plant(elsewhere, unique("sidefx"))
    with pytest.raises(InputError, match=rf"refusing to import module {name} named by data: .*{name}.py is not part of "
                       rf"the job's code.*{TRUSTED_MODULES_ENV}={name}.*trust_modules\('{name}'\)"):
        load(name)
    assert ran(elsewhere) == []
    assert name not in sys.modules


def test_an_unknown_event_type_from_the_wire_names_the_type_field(elsewhere: Path) -> None:
    name = plant(elsewhere, unique("sidefx"))
    with pytest.raises(InputError, match=rf"^Unknown event type '{name}:Thing': refusing to import") as info:
        event_from_wire({"type": f"{name}:Thing", "data": {"payload": 1}})
    assert info.value.fields == ("type",)


def test_a_submodule_is_refused_without_running_its_package(elsewhere: Path) -> None:
    name = plant(elsewhere, f"{unique('sidefx')}.flows")
    with pytest.raises(InputError, match=r"__init__.py is not part of the job's code"):
        resolve_reference(f"{name}:Thing")
    assert ran(elsewhere) == []


def test_an_installed_module_is_not_the_jobs_code_even_under_the_current_directory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `this` prints the Zen of Python when imported; the standard library is an installation
    # directory, as site-packages is (a virtualenv inside the project directory is common).
    assert "this" not in sys.modules
    monkeypatch.chdir(Path(sysconfig.get_paths()["stdlib"]).parent)
    with pytest.raises(InputError, match=r"refusing to import module this named by data"):
        resolve_reference("this:s")
    assert "this" not in sys.modules and capsys.readouterr().out == ""


def test_a_module_under_the_current_directory_is_the_jobs_code(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = plant(elsewhere, f"{unique('flows')}.review")
    monkeypatch.chdir(elsewhere)
    assert resolve_reference(f"{name}:Thing").__module__ == name
    assert ran(elsewhere) == [name.partition(".")[0], name]


def test_a_namespace_package_under_the_current_directory_is_the_jobs_code(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = unique("flows")
    (elsewhere / package).mkdir()  # no __init__.py
    name = plant(elsewhere / package, "review")
    monkeypatch.chdir(elsewhere)
    assert resolve_reference(f"{package}.{name}:Thing").__module__ == f"{package}.{name}"


def test_modules_trusted_by_the_environment_variable_are_imported(elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = plant(elsewhere, f"{unique('sidefx')}.flows")
    monkeypatch.setenv(TRUSTED_MODULES_ENV, f"some.other , {name.partition('.')[0]}")
    assert resolve_reference(f"{name}:Thing").__name__ == "Thing"
    assert ran(elsewhere) == [name.partition(".")[0], name]


def test_a_trusted_prefix_covers_its_submodules_only(elsewhere: Path) -> None:
    trusted = plant(elsewhere, unique("sidefx"))
    other = plant(elsewhere, f"{trusted}_more")
    trust_modules(trusted)
    assert resolve_reference(f"{trusted}:Thing").__module__ == trusted
    with pytest.raises(InputError, match=f"refusing to import module {other} "):
        resolve_reference(f"{other}:Thing")
    assert ran(elsewhere) == [trusted]


def test_only_dotted_module_names_can_be_trusted() -> None:
    with pytest.raises(InputError, match=r"Invalid trusted module 'my-flows'"):
        trust_modules("my-flows")


@pytest.mark.parametrize("module", ["..flows", "flows/../x", "a..b"])
def test_a_reference_whose_module_is_not_a_module_name_is_refused(module: str) -> None:
    with pytest.raises(InputError, match=rf"Cannot load {module}:X: '{module}' is not a module name"):
        resolve_reference(f"{module}:X")


def _run(script: Path, cwd: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(script)], cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
        env={key: value for key, value in os.environ.items() if key != TRUSTED_MODULES_ENV},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_script_directory_is_the_jobs_code_and_sopy_actors_is_always_trusted(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "run").mkdir()
    plant(tmp_path / "app", "sibling")
    (tmp_path / "app" / "main.py").write_text(
        "import json, sys\n"
        "from sopy_actors.core.references import resolve_reference\n"
        "sibling = resolve_reference('sibling:Thing').__module__\n"
        "assert 'sopy_actors.cli.static' not in sys.modules\n"
        "static = resolve_reference('sopy_actors.cli.static:add_graph').__module__\n"
        "print(json.dumps({'sibling': sibling, 'static': static}))\n"
    )
    result = _run(tmp_path / "app" / "main.py", cwd=tmp_path / "run")
    assert result == {"sibling": "sibling", "static": "sopy_actors.cli.static"}
