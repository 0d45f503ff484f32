"""The `sopy-actors` command.

```
sopy-actors graph MODULE:ENTRY [--format prompt|mermaid|json] [--objective TEXT]
sopy-actors check MODULE:ENTRY
sopy-actors run FILE.py[:CALLABLE] | status | attach SOP_ID   (see sopy_actors.cli_runtime)
```

MODULE is a dotted module name (importable from the current directory) or a path to a .py
file; ENTRY names, in that module, a Procedure subclass (instantiated with no arguments), a
Procedure instance, an SOP (its entry procedure is used), or a zero-argument callable returning
one of those. Each command is one `_add_<command>` function registering a subparser, and
imports what it needs when it runs, so that `graph` and `check` never import Ray.

Exit status: 0 success, 1 `check` found errors, 2 bad usage or a MODULE:ENTRY that cannot be
loaded. Runs in the caller's process.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sopy_actors.core.graph import ProcedureGraph
    from sopy_actors.core.procedure import Procedure

__all__ = ["main"]

_PROG = "sopy-actors"


class _TargetError(Exception):
    """MODULE:ENTRY names nothing the CLI can use; the message says why."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `sopy-actors` command line.

    Args:
        argv: the arguments after the program name; `sys.argv[1:]` when None.

    Returns:
        The exit status.
    """
    parser = _parser()
    arguments = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = arguments.run
    try:
        return command(arguments)
    except _TargetError as error:
        print(f"{_PROG}: error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG, description="Draw, check and run SOPs built with sopy_actors."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    from sopy_actors.cli_runtime import add_attach, add_run, add_status

    for add in (_add_graph, _add_check, add_run, add_status, add_attach):
        add(commands)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("sopy-actors")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        metavar="MODULE:ENTRY",
        help="e.g. examples/guarded_migration/workflow.py:ReadFiles or my.module:sop",
    )


def _add_graph(commands: Any) -> None:
    parser = commands.add_parser(
        "graph", help="print the procedure graph as the SOP prompt, Mermaid or JSON"
    )
    _add_target(parser)
    parser.add_argument(
        "--format", choices=("prompt", "mermaid", "json"), default="prompt", help="default: prompt"
    )
    parser.add_argument(
        "--objective", default="", help="what the SOP is for, in the prompt's header"
    )
    parser.set_defaults(run=_graph)


def _add_check(commands: Any) -> None:
    parser = commands.add_parser(
        "check", help="validate the procedure graph; exit 1 when it has errors"
    )
    _add_target(parser)
    parser.set_defaults(run=_check)


def _graph(arguments: argparse.Namespace) -> int:
    graph = _load_graph(arguments.target)
    if arguments.format == "mermaid":
        print(graph.to_mermaid())
    elif arguments.format == "json":
        print(json.dumps(graph.to_dict(), indent=2))
    else:
        print(graph.to_prompt(arguments.objective))
    return 0


def _check(arguments: argparse.Namespace) -> int:
    graph = _load_graph(arguments.target)
    validation = graph.validate()
    for message in validation.errors:
        print(f"error: {message}")
    for message in validation.warnings:
        print(f"warning: {message}")
    if not validation.ok:
        return 1
    procedures = sum(not node.terminal for node in graph.nodes)
    print(f"ok: {procedures} procedures, {len(graph.edges)} transitions")
    return 0


def _load_graph(target: str) -> ProcedureGraph:
    from sopy_actors.core.graph import ProcedureGraph

    return ProcedureGraph.build(_load_entry(target))


def _load_entry(target: str) -> Procedure[Any]:
    """The entry procedure instance that MODULE:ENTRY names.

    Raises:
        _TargetError: the module or attribute is missing, or the object is of the wrong kind.
    """
    module_name, separator, attribute = target.rpartition(":")
    if not separator or not module_name or not attribute:
        raise _TargetError(
            f"expected MODULE:ENTRY, got {target!r} "
            "(e.g. examples/guarded_migration/workflow.py:ReadFiles or my.module:sop)"
        )
    module = _import(module_name)
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise _TargetError(f"{module_name} has no attribute {attribute!r}")
        value = getattr(value, part)
    return _entry_from(value, target, allow_call=True)


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
            raise _TargetError(f"calling {target}() failed: {failure}") from error
        return _entry_from(made, f"{target}()", allow_call=False)
    raise _TargetError(
        f"{target} is {_kind(value)}; expected a Procedure subclass, a Procedure instance, an "
        "SOP, or a zero-argument callable returning one of those (End is not an entry)"
    )


def _instantiate(procedure: type[Procedure[Any]], target: str) -> Procedure[Any]:
    from sopy_actors.core.procedure import End

    if issubclass(procedure, End):
        raise _TargetError(f"{target} is End, which cannot be an entry procedure")
    try:
        return procedure()
    except Exception as error:  # any failure is reported, not raised
        raise _TargetError(
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
        return _import_file(Path(name))
    # Like `python -m`, let modules in the current directory be found.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and (name == error.name or name.startswith(f"{error.name}.")):
            raise _TargetError(f"no module named {name!r} (from the current directory)") from error
        raise _TargetError(_import_failure(name, error)) from error
    except Exception as error:  # the user's module failed; say so plainly
        raise _TargetError(_import_failure(name, error)) from error


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise _TargetError(f"no such file: {path}")
    name, number = path.stem, 1
    while name in sys.modules:
        if Path(getattr(sys.modules[name], "__file__", None) or "").resolve() == path.resolve():
            return sys.modules[name]
        number += 1
        name = f"{path.stem}_{number}"  # another module already has the file's name
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise _TargetError(f"{path} cannot be loaded as a Python module")
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
        raise _TargetError(_import_failure(str(path), error)) from error
    return module


def _import_failure(name: str, error: BaseException) -> str:
    return f"importing {name} failed: {type(error).__name__}: {error}"


if __name__ == "__main__":
    sys.exit(main())
