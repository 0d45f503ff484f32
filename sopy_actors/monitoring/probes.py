"""Dependency probes: a function (by import path) or an HTTP URL, checked every few seconds."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sopy_actors.core.references import reference_of, resolve_reference
from sopy_actors.errors import InputError

__all__ = ["ProbeSpec", "function_path", "run_probe"]


class ProbeSpec(BaseModel):
    """A registered probe, as the Monitor stores it (plain data: it survives a Monitor restart).

    Attributes:
        name: the `probe` label and the key in HealthCheck `dependencies`.
        kind: "url" (HTTP GET; a 2xx/3xx answer is up) or "function" (`module:function`; up
            unless it raises or returns False).
        target: the URL or the function's import path.
        every: seconds between checks.
        timeout: seconds before a check counts as down.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
    kind: Literal["url", "function"]
    target: str = Field(min_length=1)
    every: float = Field(default=10.0, gt=0)
    timeout: float = Field(default=2.0, gt=0)

    @field_validator("target")
    @classmethod
    def _check_target(cls, value: str, info: Any) -> str:
        if info.data.get("kind") == "url" and not value.startswith(("http://", "https://")):
            raise ValueError("a URL probe needs an http:// or https:// URL")
        return value


def function_path(function: Callable[..., Any]) -> str:
    """`module:qualname` of a top-level function, so a restarted Monitor can import it again.

    Raises:
        InputError: a lambda, a nested function, or one in an unshipped `__main__`.
    """
    return reference_of(function, what="probe function")


def _resolve(path: str) -> Callable[..., Any]:
    function = resolve_reference(path)
    if not callable(function):
        raise InputError(f"probe target {path} is not callable")
    return function  # type: ignore[no-any-return]


def run_probe(spec: ProbeSpec) -> dict[str, Any]:
    """Run one check (blocking; the Monitor runs it in a thread) → DependencyStatus fields."""
    started = time.perf_counter()
    error: str | None = None
    try:
        if spec.kind == "url":
            with urllib.request.urlopen(spec.target, timeout=spec.timeout) as response:
                if response.status >= 400:
                    error = f"HTTP {response.status}"
        elif _resolve(spec.target)() is False:
            error = "returned False"
    except urllib.error.HTTPError as failure:
        error = f"HTTP {failure.code}"
    except Exception as failure:
        error = f"{type(failure).__name__}: {failure}"
    return {
        "up": error is None,
        "latency_seconds": time.perf_counter() - started,
        "error": error,
        "checked_at": time.time(),
    }
