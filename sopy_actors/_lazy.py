"""Lazy exports for a package `__init__`: names imported from their module on first access.

Ray, strands and prometheus_client load only when a name that needs them is used, as
`ray/__init__.py` does for its heavier parts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, namespace: dict[str, Any], modules: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module `__getattr__` and `__dir__` of a package with lazily imported names.

    Args:
        package: the package's name, for the AttributeError message.
        namespace: the package's `globals()`; a loaded name is cached there.
        modules: exported name -> absolute name of the module that defines it.
    """

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(namespace.get("__all__", ()))

    return __getattr__, __dir__
