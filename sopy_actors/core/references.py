"""`module:qualname` references: how every process names the same class or function.

Ray actors load workflow classes, tools and probe functions by importing them by name, so
references are the one thing that crosses process boundaries for user code. Pure Python; no
Ray import. Runs in any process.

A script run as `python FILE.py` is `__main__` only in its own process: `sopy_actors.init()`
ships it to the cluster under another module name (`sopy_actors.runtime.main_module`) and
registers that name here. References then name the shipped module, and the driver resolves
that name back to its own `__main__`, so it never imports its script a second time.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, TypeVar, overload

from sopy_actors.errors import InputError

__all__ = [
    "local_reference",
    "portable_reference",
    "reference_of",
    "register_main_module",
    "resolve_reference",
]

T = TypeVar("T")

_MAIN = "__main__"
_main_alias: str | None = None  # the module name this process's __main__ has on the cluster


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
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise InputError(
            f"{what or 'object'} {obj!r} is not a class or function, so it has no 'module:qualname' name"
        )
    subject = f"{what or ('class' if isinstance(obj, type) else 'function')} {qualname}"
    reference = portable_reference(f"{module}:{qualname}")
    if "<lambda>" in qualname:
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
        return reference
    raise InputError(f"{subject} {problem}")


@overload
def resolve_reference(reference: str, base: None = None) -> Any: ...


@overload
def resolve_reference(reference: str, base: type[T]) -> type[T]: ...


def resolve_reference(reference: str, base: type[T] | None = None) -> Any:
    """Import the module a reference names and walk its qualname; optionally check the class.

    Decoding data with `base` set can name installed classes but never runs arbitrary code.

    Args:
        reference: "module:qualname", e.g. from `reference_of`.
        base: when given, the target must be a subclass of it.

    Returns:
        The named object (a subclass of `base` when `base` is given).

    Raises:
        InputError: the reference is malformed, does not import, or names something else.
    """
    local = local_reference(reference) if isinstance(reference, str) else ""
    module_name, _, qualname = local.partition(":")
    if not module_name or not qualname:
        raise InputError(f"Invalid reference {reference!r}: expected 'module:qualname'")
    try:
        # The driver's own script is already running as __main__: importing it again would
        # re-run its top-level code and create second copies of its classes.
        target: Any = sys.modules[_MAIN] if module_name == _MAIN else importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise InputError(
            f"Cannot load {reference}: {error} (is its module on the cluster's runtime_env?)"
        ) from None
    if base is not None and not (isinstance(target, type) and issubclass(target, base)):
        raise InputError(f"{reference} is not a {base.__name__} subclass")
    return target
