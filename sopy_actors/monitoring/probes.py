"""Dependency probes: what one is (`ProbeSpec`), one check (`run_probe`), and what the Monitor
knows about it between checks (`ProbeState`).

Pure Python, no Ray. Checks never run in the Monitor's process: each probe has a runner
process of its own (`sopy_actors.monitoring.probe_runner`), which calls `run_probe`; the Monitor
only records how each check ended in the probe's `ProbeState`.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sopy_actors.core.references import reference_of, resolve_reference
from sopy_actors.errors import InputError
from sopy_actors.monitoring.health import DependencyStatus

__all__ = [
    "CRASH_LIMIT",
    "DEFAULT_EVERY",
    "DEFAULT_TIMEOUT",
    "MAX_BACKOFF",
    "ProbeSpec",
    "ProbeState",
    "function_path",
    "run_probe",
]

DEFAULT_EVERY = 10.0
"""Seconds between checks unless a probe says otherwise."""
DEFAULT_TIMEOUT = 2.0
"""Seconds a check may take unless a probe says otherwise."""
CRASH_LIMIT = 3
"""Checks in a row whose runner process died, after which a probe is disabled."""
MAX_BACKOFF = 60.0
"""Longest wait (s) after checks that lost their runner, unless the probe's `every` is longer."""


class ProbeSpec(BaseModel):
    """A registered probe, as the Monitor stores it (plain data: it survives a Monitor restart).

    Attributes:
        name: the `probe` label and the key in HealthCheck `dependencies`.
        kind: "url" (HTTP GET; a 2xx/3xx answer is up) or "function" (`module:qualname`; up
            unless it raises or returns False).
        target: the URL or the function's import path.
        every: seconds between checks (from the end of one to the start of the next).
        timeout: seconds a check may take; a check still running then counts as down.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")
    kind: Literal["url", "function"]
    target: str = Field(min_length=1)
    every: float = Field(default=DEFAULT_EVERY, gt=0, le=86400)
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, le=300)

    @field_validator("target")
    @classmethod
    def _check_target(cls, value: str, info: Any) -> str:
        if info.data.get("kind") == "url" and not value.startswith(("http://", "https://")):
            raise ValueError("a URL probe needs an http:// or https:// URL")
        return value


def function_path(function: Callable[..., Any]) -> str:
    """`module:qualname` of a top-level function, so a probe runner can import it by name.

    Raises:
        InputError: a lambda, a nested function, or one in an unshipped `__main__`.
    """
    return reference_of(function, what="probe function")


def _resolve(path: str) -> Callable[..., Any]:
    function = resolve_reference(path)
    if not callable(function):
        raise InputError(f"probe target {path} is not callable")
    return function  # type: ignore[no-any-return]


def run_probe(spec: ProbeSpec) -> DependencyStatus:
    """Run one check (blocking; in the probe's runner process, never in the Monitor's).

    A URL probe sends one GET and binds nothing; a function probe imports its function by
    name (never unpickled from data) and calls it without arguments.
    """
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
    return DependencyStatus(
        up=error is None, latency_seconds=time.perf_counter() - started, error=error, checked_at=time.time()
    )


class ProbeState:
    """What the Monitor knows about one probe between checks: a small state machine.

    A probe is pending until its first check ends, then up or down after each check. A check
    ends one of three ways: it `completed` (its result is the status), it `timed_out` (down;
    the runner, stuck in it, was stopped) or its runner process died (`crashed`, down). After
    `CRASH_LIMIT` crashes in a row the probe is disabled: it stays down with the reason, is not
    run again, and stays so across Monitor restarts (see `row`) until it is registered again.

    A check that lost its runner (timed out or crashed) makes the next one wait `every`
    doubled for each such loss in a row, up to `max(every, MAX_BACKOFF)`, so a hanging
    dependency does not have the head node start a process every few seconds.

    Plain Python, used on the Monitor's loop; it runs nothing itself.

    Args:
        spec: the registered probe.
        disabled: the status that disabled the probe, when it is loaded disabled.
    """

    def __init__(self, spec: ProbeSpec, *, disabled: DependencyStatus | None = None) -> None:
        self.spec = spec
        self.status: DependencyStatus | None = disabled
        self.disabled = disabled is not None
        self._crashes = 0  # checks in a row whose runner died
        self._losses = 0  # checks in a row that lost their runner (timed out or crashed)

    def completed(self, status: DependencyStatus) -> None:
        """The runner returned the check's result: it is the probe's status."""
        self.status = status
        self._crashes = self._losses = 0

    def timed_out(self, *, at: float) -> None:
        """The check ran past the probe's timeout: down (a hang is not a crash)."""
        self.status = DependencyStatus(
            up=False, latency_seconds=self.spec.timeout, error=f"timed out after {self.spec.timeout:g} s", checked_at=at
        )
        self._crashes = 0
        self._losses += 1

    def crashed(self, error: str, *, at: float) -> None:
        """The runner process died during the check, or could not start: down, and disabled
        after `CRASH_LIMIT` crashes in a row.

        Args:
            error: what the runner's loss looked like, for the status and the disable reason.
            at: Unix time of the loss.
        """
        self._crashes += 1
        self._losses += 1
        self.disabled = self._crashes >= CRASH_LIMIT
        if self.disabled:
            text = (
                f"disabled: its runner process died {self._crashes} times in a row; register the "
                f"probe again to re-enable it (last: {error})"
            )
        else:
            text = f"runner process died ({self._crashes} of {CRASH_LIMIT} in a row): {error}"
        self.status = DependencyStatus(up=False, error=text, checked_at=at)

    def next_delay(self) -> float:
        """Seconds to wait before the next check."""
        every = self.spec.every
        if not self._losses:
            return every
        return min(every * 2.0**self._losses, max(every, MAX_BACKOFF))

    def row(self) -> dict[str, Any]:
        """The probe as the Monitor saves it in monitor.sqlite3: the spec's fields, plus
        `disabled` (the status that disabled it) once it is disabled."""
        data = self.spec.model_dump(mode="json")
        if self.disabled and self.status is not None:
            data["disabled"] = self.status.model_dump(mode="json")
        return data

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ProbeState:
        """A probe as `row` saved it (pending, or disabled as it was).

        Raises:
            ValueError: the row does not describe a valid probe (a pydantic ValidationError).
        """
        data = dict(row)
        disabled = data.pop("disabled", None)
        return cls(
            ProbeSpec.model_validate(data),
            disabled=None if disabled is None else DependencyStatus.model_validate(disabled),
        )
