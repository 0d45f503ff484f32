"""Loading what a command names: `MODULE:ENTRY` targets and workflow files.

MODULE is a dotted module name (importable from the current directory) or a path to a .py
file; ENTRY names, in that module, a Procedure subclass (instantiated with no arguments), a
Procedure instance, an SOP (its entry procedure is used), or a zero-argument callable returning
one of those. A target may also be a dynamic workflow: ENTRY may name a `Workflow` (or a
function returning one, e.g. `examples/adaptive_workflow/workflow.py:default_workflow`), and a
target may be a workflow template file (`FILE.yaml`, `.yml` or `.json`) with `--param k=v`
values. Imports only the core and `sopy_actors.workflows` (never Ray).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sopy_actors.core.graph import ProcedureGraph
    from sopy_actors.core.procedure import Procedure
    from sopy_actors.workflows import Workflow

__all__ = ["TEMPLATE_SUFFIXES", "TargetError", "import_file", "is_template", "load_graph", "load_template", "parse_parameters"]

TEMPLATE_SUFFIXES = (".yaml", ".yml", ".json")


class TargetError(Exception):
    """A command's target names nothing the CLI can use; the message says why."""


def is_template(target: str) -> bool:
    """Whether a target names a workflow template file (by its suffix)."""
    return target.endswith(TEMPLATE_SUFFIXES)


def parse_parameters(pairs: list[str] | None) -> dict[str, str]:
    """`--param k=v` values as a dict.

    Raises:
        TargetError: a value is not `name=value`.
    """
    found: dict[str, str] = {}
    for pair in pairs or []:
        name, separator, value = pair.partition("=")
        if not separator or not name.strip():
            raise TargetError(f"--param expects name=value, got {pair!r}")
        found[name.strip()] = value
    return found


def load_template(target: str, parameters: dict[str, str]) -> Workflow[Any]:
    """The workflow a template file makes with these parameters.

    Raises:
        TargetError: no such file.
        DefinitionError, InputError: the template or the parameters are invalid (they say where).
    """
    from sopy_actors.workflows import WorkflowTemplate

    path = Path(target)
    if not path.is_file():
        raise TargetError(f"no such file: {path}")
    return WorkflowTemplate.from_file(path).instantiate(parameters)


def load_graph(target: str, parameters: dict[str, str] | None = None) -> ProcedureGraph:
    """The procedure graph a target names (see the module docstring).

    Raises:
        TargetError: the target names nothing usable, or `parameters` are given for a target
            that is not a template file.
    """
    from sopy_actors.core.graph import ProcedureGraph
    from sopy_actors.workflows import Workflow

    if is_template(target):
        return load_template(target, parameters or {}).graph()
    if parameters:
        raise TargetError("--param applies to workflow template files (FILE.yaml, FILE.yml, FILE.json) only")
    value, label = _load_value(target), target
    if callable(value) and not isinstance(value, type) and not _is_entry(value):
        value, label = _call(value, target), f"{target}()"
    if isinstance(value, Workflow):
        return value.graph()
    return ProcedureGraph.build(_entry_from(value, label, allow_call=False))


def _is_entry(value: Any) -> bool:
    from sopy_actors.core.procedure import Procedure
    from sopy_actors.core.sop import SOP

    return isinstance(value, Procedure | SOP)


def _call(function: Any, target: str) -> Any:
    try:
        return function()
    except Exception as error:  # any failure is reported, not raised
        raise TargetError(f"calling {target}() failed: {type(error).__name__}: {error}") from error


def _load_value(target: str) -> Any:
    """The object that MODULE:ENTRY names.

    Raises:
        TargetError: the module or attribute is missing.
    """
    module_name, separator, attribute = target.rpartition(":")
    if not separator or not module_name or not attribute:
        raise TargetError(
            f"expected MODULE:ENTRY, got {target!r} "
            "(e.g. examples/guarded_migration/workflow.py:ReadFiles or my.module:sop)"
        )
    module = _import(module_name)
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise TargetError(f"{module_name} has no attribute {attribute!r}")
        value = getattr(value, part)
    return value


def _entry_from(value: Any, target: str, *, allow_call: bool) -> Procedure[Any]:
    from sopy_actors.core.procedure import End, Procedure
    from sopy_actors.core.sop import SOP

    if isinstance(value, type) and issubclass(value, Procedure):
        return _instantiate(value, target)
    if isinstance(value, SOP):
        value = value.init_proc
    if isinstance(value, Procedure) and not isinstance(value, End):
        return value
    if allow_call and callable(value) and not isinstance(value, type):
        try:
            made = value()
        except Exception as error:  # any failure is reported, not raised
            failure = f"{type(error).__name__}: {error}"
            raise TargetError(f"calling {target}() failed: {failure}") from error
        return _entry_from(made, f"{target}()", allow_call=False)
    raise TargetError(
        f"{target} is {_kind(value)}; expected a Procedure subclass, a Procedure instance, an "
        "SOP, or a zero-argument callable returning one of those (End is not an entry)"
    )


def _instantiate(procedure: type[Procedure[Any]], target: str) -> Procedure[Any]:
    from sopy_actors.core.procedure import End

    if issubclass(procedure, End):
        raise TargetError(f"{target} is End, which cannot be an entry procedure")
    try:
        return procedure()
    except Exception as error:  # any failure is reported, not raised
        raise TargetError(
            f"{target}() cannot be created with no arguments ({type(error).__name__}: {error}); "
            "name a module-level instance, an SOP or a function returning one instead"
        ) from error


def _kind(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__}"
    return f"a {type(value).__name__}"


def _import(name: str) -> ModuleType:
    """Import a dotted module name, or load a .py file as a module."""
    if name.endswith(".py") or "/" in name or os.sep in name:
        return import_file(Path(name))
    # Like `python -m`, let modules in the current directory be found.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and (name == error.name or name.startswith(f"{error.name}.")):
            raise TargetError(f"no module named {name!r} (from the current directory)") from error
        raise TargetError(_import_failure(name, error)) from error
    except Exception as error:  # the user's module failed; say so plainly
        raise TargetError(_import_failure(name, error)) from error


def import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise TargetError(f"no such file: {path}")
    name, number = path.stem, 1
    while name in sys.modules:
        if Path(getattr(sys.modules[name], "__file__", None) or "").resolve() == path.resolve():
            return sys.modules[name]
        number += 1
        name = f"{path.stem}_{number}"  # another module already has the file's name
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"{path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    # As `python path/to/file.py` would: its siblings are importable, and its classes can be
    # found by module name (pydantic and the graph's unreachable check both look them up).
    directory = str(path.resolve().parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's module failed; say so plainly
        del sys.modules[name]
        raise TargetError(_import_failure(str(path), error)) from error
    return module


def _import_failure(name: str, error: BaseException) -> str:
    return f"importing {name} failed: {type(error).__name__}: {error}"

