"""`module:qualname` references: how every process names the same class or function.

Ray actors load workflow classes, tools and probe functions by importing them by name, so
references are the one thing that crosses process boundaries for user code. Pure Python; no
Ray import. Runs in any process.

A script run as `python FILE.py` is `__main__` only in its own process: `sopy_actors.init()`
ships it to the cluster under another module name (`sopy_actors.runtime.main_module`) and
registers that name here. References then name the shipped module, and the driver resolves
that name back to its own `__main__`, so it never imports its script a second time.

References also arrive as data (checkpoints, messages), so importing the module one names runs
that module's top-level code. `load_module` imports a module named by data only when it is
already imported, belongs to the job's code, or is trusted; anything else is refused before
any of its code runs:

- already imported: the module is in `sys.modules`;
- the job's code: the module's source file (and those of its not yet imported packages), found
  by scanning `sys.path` without importing, lies under a code directory and not under an
  installation directory (standard library, site-packages, scripts). Code directories are, in
  a driver, the current directory, the directory of the script run as `python FILE.py`, and the
  local `working_dir` and `py_modules` paths given to `sopy_actors.init()`
  (`register_code_directories`); in a Ray worker, the directories Ray puts on its `sys.path`
  for the job: where it unpacked the runtime_env `working_dir` and `py_modules`, and, for a
  job without a `working_dir`, its driver's current and script directories (Ray's
  `JobConfig.py_driver_sys_path`, which a local cluster shares with the driver);
- trusted: the module or a package above it is named by `trust_modules(...)` or in the
  environment variable `SOPY_TRUSTED_MODULES` (comma-separated); `sopy_actors` always is.

Some classes are not imported but built from data (generated workflow procedures): such a
class carries a `Definition`, and its reference is `module@key`. The definition's data travels
with the reference (`sopy_actors.core.codec` puts it next to the type), and any process
rebuilds the class with `resolve_definition`: it loads `module` under the rules above, and that
module's import registers the decoder (`register_definition_decoder`) that turns `key` and the
data into the class. So a process that never saw the class learns how to build it from the
data alone, and core never imports the layer that generates classes.

A process keeps the data of the last `KEPT_DEFINITIONS` definitions it built classes from, by
their source (`definition_source`: the reference up to the first "." of its key, so a decoder's
keys `data.name` name several classes built from one definition, such as a workflow's steps).
A sender that sent a process a definition may leave it out later (`resolve_definition` with
`data=None`): the kept data is used, or, when it is no longer kept, `DefinitionNeeded` says to
send it again. Decoders always get the data.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import os
import site
import sys
import sysconfig
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar, overload

from sopy_actors.errors import InputError

__all__ = [
    "KEPT_DEFINITIONS",
    "TRUSTED_MODULES_ENV",
    "Definition",
    "DefinitionDecoder",
    "DefinitionNeeded",
    "definition_of",
    "definition_source",
    "is_definition_reference",
    "load_module",
    "local_reference",
    "portable_reference",
    "reference_of",
    "register_code_directories",
    "register_definition_decoder",
    "register_main_module",
    "resolve_definition",
    "resolve_reference",
    "trust_modules",
]

T = TypeVar("T")

TRUSTED_MODULES_ENV = "SOPY_TRUSTED_MODULES"

_MAIN = "__main__"
_main_alias: str | None = None  # the module name this process's __main__ has on the cluster
_trusted: set[str] = {"sopy_actors"}
_code_directories: tuple[Path, ...] = ()
# Ray unpacks `<name>.tar.gz` into `<name>` and `<name>.zip` into `<name>` (runtime_env packaging).
_COMPOUND_ARCHIVES = (".tar.gz", ".tar.bz2", ".tar.xz")
_DEFINED = "@"  # separates the decoder's module from the key in a definition reference
_DEFINITION_ATTRIBUTE = "__sop_definition__"

DefinitionDecoder = Callable[[str, Any], Any]
"""Builds an object from a definition: called with the reference's key and the definition data.
Keys `data.name` share their data: every key with one `data` part is built from the same data."""

KEPT_DEFINITIONS = 4_096
"""Definitions whose data a process keeps (least recently used dropped first), for senders that
leave the data out; see the module docstring."""
_kept: OrderedDict[str, Any] = OrderedDict()  # definition source -> data classes were built from
_kept_lock = threading.Lock()  # procedure actors decode on several threads


class DefinitionNeeded(InputError):
    """A definition reference arrived without its data, and this process does not have it (it
    never built the class, restarted, or dropped it): send the data with the reference again."""


_decoders: dict[str, DefinitionDecoder] = {}

# Both pure for a given loaded module, so cached; each use checks that the cached answer still
# holds. A class's checked reference (it resolves back to the class):
_references: dict[type[Any], str] = {}
# What a reference resolved to, with the module it was found in: valid while that module is
# still `sys.modules`' (a module dropped or imported anew is loaded under the rules again).
# Only canonical references (the target's own module and qualname) are kept, so data cannot
# grow it past the number of classes and functions loaded.
_resolved: dict[str, tuple[ModuleType, str, tuple[str, ...]]] = {}  # reference -> (module, its name, qualname parts)


@dataclass(frozen=True)
class Definition:
    """What a class built from data carries, so other processes can build it again.

    Attributes:
        reference: `module@key`; `module` registered the decoder (see `register_definition_decoder`).
        data: JSON data the decoder builds the class from (it travels next to the reference).
        runs_as: the reference (`module:qualname`) of an imported class whose procedure actors
            also run this one, such as the base class of a generated step; None: its own.
    """

    reference: str
    data: Any
    runs_as: str | None = None


def register_definition_decoder(module: str, decoder: DefinitionDecoder) -> None:
    """Let references `module@key` name objects that `decoder(key, data)` builds from data.

    Called by `module` itself when it is imported, so that loading the module a reference names
    (under `load_module`'s rules) is all another process needs to rebuild the object.

    Raises:
        InputError: `module` is not a dotted module name.
    """
    if not _is_module_name(module):
        raise InputError(f"Invalid definition decoder module {module!r}: expected a dotted module name")
    _decoders[module] = decoder


def definition_of(obj: object) -> Definition | None:
    """The `Definition` a class built from data carries itself (not inherited), or None."""
    found = vars(obj).get(_DEFINITION_ATTRIBUTE) if isinstance(obj, type) else None
    return found if isinstance(found, Definition) else None


def is_definition_reference(reference: str) -> bool:
    """Whether `reference` names a class built from data (`module@key`), not an imported one."""
    return _DEFINED in reference


def definition_source(reference: str) -> str:
    """What names the data of definition reference `reference`: `module@data` of a key
    `data.name` (several classes built from one definition, such as a workflow's steps), else
    the whole reference. Classes with one source are built from the same data."""
    module, _, key = reference.partition(_DEFINED)
    return f"{module}{_DEFINED}{key.partition('.')[0]}"


def resolve_definition(reference: str, data: Any, base: type[T]) -> type[T]:
    """Build (or find, decoders cache) the class a definition reference and its data describe.

    Args:
        reference: `module@key`, from `Definition.reference`.
        data: the definition data that travelled with it; None when it was left out because
            this process was sent it before (the data it kept is used).
        base: the class must be a subclass of it.

    Returns:
        The class, carrying its `Definition` (reference and the data it was built from).

    Raises:
        DefinitionNeeded: `data` is None and this process keeps no data for the reference.
        InputError: the reference is malformed, its module may not be loaded here or
            registers no decoder, the decoder refuses the data, or the result is no `base`.
    """
    module, _, key = reference.partition(_DEFINED) if isinstance(reference, str) else ("", "", "")
    if not module or not key:
        raise InputError(f"Invalid definition reference {reference!r}: expected 'module@key'")
    try:
        load_module(module)
    except InputError as error:
        raise InputError(f"Cannot build {reference}: {error}") from None
    decoder = _decoders.get(module)
    if decoder is None:
        raise InputError(f"Cannot build {reference}: module {module} registers no definition decoder")
    source = definition_source(reference)
    if data is None:
        with _kept_lock:
            data = _kept.get(source)
        if data is None:
            raise DefinitionNeeded(f"Cannot build {reference}: this process keeps no definition for it; send it")
    target = decoder(key, data)
    if not (isinstance(target, type) and issubclass(target, base)):
        raise InputError(f"{reference} is not a {base.__name__} subclass")
    with _kept_lock:  # the data built a class: kept for calls that leave it out
        _kept[source] = data
        _kept.move_to_end(source)
        while len(_kept) > KEPT_DEFINITIONS:
            _kept.popitem(last=False)
    return target


def register_main_module(name: str | None) -> None:
    """Declare the module name this process's `__main__` is shipped under (None forgets it).

    Called in the driver by `sopy_actors.init()`; from then on references to objects of
    `__main__` use `name`, and `name` resolves to `sys.modules["__main__"]` here.

    Raises:
        InputError: `name` is not a Python identifier.
    """
    global _main_alias
    if name is not None and not name.isidentifier():
        raise InputError(f"Invalid module name {name!r} for __main__: it must be a Python identifier")
    _main_alias = name
    _references.clear()  # references to __main__ objects change their spelling
    _resolved.clear()


def portable_reference(reference: str) -> str:
    """The reference other processes know: `__main__:X` becomes `<shipped module>:X`.

    Unchanged when nothing is registered (then `__main__` stays as it is, for code that only
    runs in this process, such as the pure transition function).
    """
    if _main_alias is not None and reference.startswith(f"{_MAIN}:"):
        return _main_alias + reference[len(_MAIN) :]
    return reference


def local_reference(reference: str) -> str:
    """The inverse of `portable_reference` in this process: `<shipped module>:X` is `__main__:X`."""
    if _main_alias is not None and reference.startswith(f"{_main_alias}:"):
        return _MAIN + reference[len(_main_alias) :]
    return reference


def reference_of(obj: object, *, what: str = "") -> str:
    """The `module:qualname` reference other processes import `obj` by; checked to import back.

    Args:
        obj: a class or function defined at the top level of an importable module (or of a
            script whose `__main__` is registered, see `register_main_module`).
        what: how messages name the object, e.g. "tool" (default: "class" or "function").

    Returns:
        The reference, e.g. "my_package.flows:Drafting".

    Raises:
        InputError: `obj` is not a class or function, is a lambda, is defined inside a
            function, is in an unshipped `__main__`, or its reference does not lead back to it.
    """
    cached = _references.get(obj) if isinstance(obj, type) else None
    if cached is not None and resolve_reference(cached) is obj:
        return cached
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise InputError(
            f"{what or 'object'} {obj!r} is not a class or function, so it has no 'module:qualname' name"
        )
    subject = f"{what or ('class' if isinstance(obj, type) else 'function')} {qualname}"
    reference = portable_reference(f"{module}:{qualname}")
    if definition_of(obj) is not None:
        problem = (
            "is built from a definition, not imported: encode it with sopy_actors.core.codec, "
            "which carries its definition"
        )
    elif "<lambda>" in qualname:
        problem = (
            "is a lambda; other processes import it by name, so make it a top-level function "
            "(def) of an importable module"
        )
    elif "<locals>" in qualname:
        problem = (
            "is defined inside a function; other processes import it by name, so define it at "
            "the top level of an importable module"
        )
    elif reference.startswith(f"{_MAIN}:"):
        problem = (
            "is defined in __main__, which other processes cannot import; in a script run as "
            "`python FILE.py`, call sopy_actors.init() before using it (init ships the script "
            "to the cluster), or run the file with `sopy-actors run FILE.py`, or move it into a module"
        )
    elif resolve_reference(reference) is not obj:
        problem = (
            f"is not what {reference} names (it is rebound or wrapped); define it at the top "
            "level under its own name"
        )
    else:
        if isinstance(obj, type):
            _references[obj] = reference
        return reference
    raise InputError(f"{subject} {problem}")


@overload
def resolve_reference(reference: str, base: None = None) -> Any: ...


@overload
def resolve_reference(reference: str, base: type[T]) -> type[T]: ...


def resolve_reference(reference: str, base: type[T] | None = None) -> Any:
    """Load the module a reference names (see `load_module`), walk its qualname, check the class.

    Decoding data with `base` set can name loaded or trusted classes but never runs other code.

    Args:
        reference: "module:qualname", e.g. from `reference_of`.
        base: when given, the target must be a subclass of it.

    Returns:
        The named object (a subclass of `base` when `base` is given).

    Raises:
        InputError: the reference is malformed, its module may not be imported here (nothing
            of it runs then) or does not import, or it names something else.
    """
    cached = _resolved.get(reference) if isinstance(reference, str) else None
    if cached is not None and sys.modules.get(cached[1]) is cached[0]:
        found: Any = cached[0]
        for part in cached[2]:  # what the name binds now: a class rebound since is found anew
            found = getattr(found, part, None)
        if found is not None:
            return _checked(reference, found, base)
    local = local_reference(reference) if isinstance(reference, str) else ""
    module_name, _, qualname = local.partition(":")
    if not module_name or not qualname:
        raise InputError(f"Invalid reference {reference!r}: expected 'module:qualname'")
    try:
        # The driver's own script is already running as __main__: importing it again would
        # re-run its top-level code and create second copies of its classes.
        target: Any = sys.modules[_MAIN] if module_name == _MAIN else load_module(module_name)
    except InputError as error:
        raise InputError(f"Cannot load {reference}: {error}") from None
    module = target
    try:
        for part in qualname.split("."):
            target = getattr(target, part)
    except AttributeError as error:
        raise InputError(
            f"Cannot load {reference}: {error} (is its module on the cluster's runtime_env?)"
        ) from None
    if getattr(target, "__module__", None) == module.__name__ and getattr(target, "__qualname__", None) == qualname:
        _resolved[reference] = (module, module_name, tuple(qualname.split(".")))
    return _checked(reference, target, base)


def _checked(reference: str, target: Any, base: type[Any] | None) -> Any:
    """`target`, if it is a subclass of `base` (when given)."""
    if base is not None and not (isinstance(target, type) and issubclass(target, base)):
        raise InputError(f"{reference} is not a {base.__name__} subclass")
    return target


def trust_modules(*prefixes: str) -> None:
    """Let data name classes and functions of these modules and their submodules in this process.

    Each process keeps its own list: to trust modules in the cluster's actors too, set the
    environment variable `SOPY_TRUSTED_MODULES` (comma-separated) there, e.g.
    `sopy_actors.init(runtime_env={"env_vars": {"SOPY_TRUSTED_MODULES": "myco.flows"}})`.

    Args:
        prefixes: dotted module names, e.g. "myco.workflows" (which also trusts
            "myco.workflows.review" but not "myco.workflows_old").

    Raises:
        InputError: a prefix is not a dotted module name.
    """
    for prefix in prefixes:
        if not _is_module_name(prefix):
            raise InputError(f"Invalid trusted module {prefix!r}: expected a dotted module name such as 'myco.flows'")
    _trusted.update(prefixes)


def register_code_directories(directories: Iterable[str | os.PathLike[str]]) -> None:
    """Declare this driver's code directories: modules under them may be imported by name.

    Called in the driver by `sopy_actors.init()`, before Ray starts.

    Args:
        directories: the local `working_dir` and `py_modules` paths of the job's runtime_env
            (a single-file module counts as itself); they replace those declared before.
    """
    global _code_directories
    _code_directories = tuple(Path(directory).resolve() for directory in directories)


def load_module(name: str) -> ModuleType:
    """The module `name`, imported only if it is already loaded, the job's code, or trusted.

    Runs in any process, on names that come from data (an event's type, a class reference in a
    checkpoint or message). A refused module is not imported: none of its code runs. See the
    module docstring for the rules.

    Args:
        name: a dotted module name, e.g. "my_package.flows".

    Returns:
        The module, from `sys.modules` or newly imported.

    Raises:
        InputError: the module may not be imported here (the message says how to allow it),
            or importing it failed.
    """
    if name in sys.modules:
        # Through the import system, not sys.modules: a module another thread is still
        # importing is waited for (its module lock), not returned half-initialised.
        return importlib.import_module(name)
    if not _is_module_name(name):
        raise InputError(f"{name!r} is not a module name")
    if not _is_trusted(name):
        files = _files_run_by_import(name)
        if files is None:
            raise InputError(
                f"no module {name} is on this process's path (is its module on the cluster's runtime_env?)"
            )
        roots = _code_roots()
        outside = next((file for file in files if not _is_job_code(file, roots)), None)
        if outside is not None:
            raise InputError(
                f"refusing to import module {name} named by data: {outside} is not part of the job's "
                "code (the runtime_env working_dir or py_modules, or the driver's current or script "
                f"directory) and the module is not trusted; to allow it, set {TRUSTED_MODULES_ENV}="
                f"{name} in the environment of every process that loads it (runtime_env env_vars) or "
                f"call sopy_actors.core.references.trust_modules({name!r}) there"
            )
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise InputError(f"importing module {name} failed: {error}") from None


def _is_module_name(name: str) -> bool:
    return all(part.isidentifier() for part in name.split("."))


def _is_trusted(name: str) -> bool:
    configured = (prefix.strip() for prefix in os.environ.get(TRUSTED_MODULES_ENV, "").split(","))
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in _trusted.union(configured) if prefix)


def _files_run_by_import(name: str) -> list[Path] | None:
    """The source files importing `name` would run (its unloaded packages' too), or None if absent.

    Found as the import system finds them but without importing anything: each package's own
    `__init__` runs when a submodule is imported, so `importlib.util.find_spec` (which imports
    the parent packages) cannot be used.
    """
    files: list[Path] = []
    search: list[str] | None = None  # None: sys.path, for a top-level module
    parts = name.split(".")
    for index in range(len(parts)):
        if index and search is None:
            return None  # the parent is a plain module: it has no submodules
        prefix = ".".join(parts[: index + 1])
        loaded = sys.modules.get(prefix)
        if loaded is not None:
            path = getattr(loaded, "__path__", None)
        else:
            spec = importlib.machinery.PathFinder.find_spec(prefix, search)
            if spec is None:
                return None
            if spec.has_location and spec.origin is not None:  # a namespace package has no file
                files.append(Path(spec.origin))
            path = spec.submodule_search_locations
        search = None if path is None else list(path)
    return files


def _is_job_code(file: Path, roots: list[Path]) -> bool:
    resolved = file.resolve()
    return any(resolved.is_relative_to(root) for root in roots) and not any(
        resolved.is_relative_to(directory) for directory in _installation_directories()
    )


def _code_roots() -> list[Path]:
    """This process's code directories (see the module docstring)."""
    roots = list(_code_directories)
    worker = _ray_worker()
    if worker is not None:  # its own current and script directories are Ray's, not the job's
        roots += map(Path, worker.core_worker.get_job_config().py_driver_sys_path)
        roots += _runtime_env_directories(sys.modules["ray"].get_runtime_context().runtime_env)
    else:
        roots.append(Path.cwd())
        script = getattr(sys.modules.get(_MAIN), "__file__", None)
        if isinstance(script, str) and script.endswith(".py"):  # not a console script such as pytest
            roots.append(Path(script).parent)
    return [root.resolve() for root in roots]


def _ray_worker() -> Any:
    """Ray's worker object when this process is a Ray worker, else None (core never imports Ray)."""
    module = sys.modules.get("ray._private.worker")
    if module is None or module.global_worker.mode != module.WORKER_MODE:
        return None
    return module.global_worker


def _runtime_env_directories(runtime_env: dict[str, Any]) -> list[Path]:
    """The directories Ray unpacked a runtime_env's working_dir and py_modules into, on `sys.path`."""
    uris = [runtime_env.get("working_dir") or "", *(runtime_env.get("py_modules") or [])]
    local = [Path(uri.removeprefix("local://")) for uri in uris if uri.startswith("local://")]
    names = {_unpacked_name(uri) for uri in uris if uri and not uri.startswith("local://")}
    return [*local, *(Path(entry) for entry in sys.path if entry and Path(entry).name in names)]


def _unpacked_name(uri: str) -> str:
    """The directory name Ray unpacks a runtime_env package into: `gcs://_ray_pkg_1f.zip` → `_ray_pkg_1f`."""
    name = uri.rstrip("/").rpartition("/")[2]
    compound = next((suffix for suffix in _COMPOUND_ARCHIVES if name.endswith(suffix)), None)
    return name.removesuffix(compound) if compound else Path(name).stem


@functools.cache
def _installation_directories() -> tuple[Path, ...]:
    """Where Python and installed packages live: never the job's code, even inside a code directory."""
    paths = sysconfig.get_paths()
    found = [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib", "scripts")]
    found += [*site.getsitepackages(), site.getusersitepackages()]
    return tuple(Path(directory).resolve() for directory in found)
