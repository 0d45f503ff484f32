"""Circuit breakers: stop calling a failing agent or tool for a while, then probe it once.

```
            N failures within `window`             `cool_down` passed: one probe call let through
  closed ───────────────────────────────► open ──────────────────────────────────────────► half_open
    ▲                                      ▲                                                  │
    │                                      └──────────────── the probe failed ────────────────┤
    └──────────────────────────────────────────────────────── the probe succeeded ────────────┘
```

`Circuit` is the state machine as frozen JSON data: each transition is a pure method taking
the time (`now`) and returning the next `Circuit`; a call refused while the circuit is open
raises `CircuitOpen`, which is retryable (the recovery ladder then prefers a fallback over
waiting, see `sopy_actors.recovery.ladder`). `CircuitBreaker` wraps one `Circuit` with a clock
for code that calls a target directly. The JSON form (`Circuit.model_dump(mode="json")`) is what
a cluster-wide breaker service stores and what `sopy_circuit_state{target}` is read from
(`CIRCUIT_STATE_CODES`).

Times are seconds on the clock the caller passes in; the default clock is wall time
(`time.time`) because a snapshot may be read by another process or after a restart, where a
monotonic clock means nothing. Pure Python; no Ray.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sopy_actors.core.events import input_error
from sopy_actors.errors import CircuitOpen, DefinitionError, InputError

__all__ = [
    "CIRCUIT_STATE_CODES",
    "BreakerSettings",
    "Circuit",
    "CircuitBreaker",
    "CircuitStateName",
]

CircuitStateName = Literal["closed", "open", "half_open"]

CIRCUIT_STATE_CODES: dict[CircuitStateName, int] = {"closed": 0, "half_open": 1, "open": 2}
"""The value of the gauge `sopy_circuit_state{target}` per state (higher is worse)."""


class BreakerSettings(BaseModel):
    """When a circuit opens and how long it stays open.

    Attributes:
        failure_threshold: failures within `window` that open the circuit (>= 1).
        window: seconds a failure counts for (> 0).
        cool_down: seconds the circuit stays open before one probe call is let through (> 0);
            also how long a probe may stay unanswered before another one is allowed.

    Raises:
        DefinitionError: a field is invalid; every problem is listed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    failure_threshold: int = Field(default=5, ge=1, strict=True)
    window: float = Field(default=60.0, gt=0, allow_inf_nan=False)
    cool_down: float = Field(default=30.0, gt=0, allow_inf_nan=False)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            problems = [f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()]
            raise DefinitionError(type(self).__name__, problems) from None


class Circuit(BaseModel):
    """One target's circuit breaker as data; every method is a pure transition.

    Attributes:
        target: the agent or tool it guards (the metric label).
        settings: thresholds and times.
        state: as of the last transition (`state_at(now)` also counts the cool-down).
        failures: times of the failures still inside the window (closed only).
        opened_at: when it opened (open only).
        probe_started_at: when the half-open probe call was let through, if one is out.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str
    settings: BreakerSettings = BreakerSettings()
    state: CircuitStateName = "closed"
    failures: tuple[float, ...] = ()
    opened_at: float | None = None
    probe_started_at: float | None = None

    def at(self, now: float) -> Circuit:
        """This circuit as it stands at `now`: failures out of the window dropped, an open circuit
        whose cool-down is over half-open, a probe unanswered for a cool-down forgotten."""
        settings = self.settings
        if self.state == "closed":
            recent = tuple(t for t in self.failures if now - t < settings.window)
            return self if recent == self.failures else self.model_copy(update={"failures": recent})
        if self.state == "open":
            if self.opened_at is not None and now - self.opened_at < settings.cool_down:
                return self
            return self.model_copy(update={"state": "half_open", "opened_at": None, "probe_started_at": None})
        if self.probe_started_at is not None and now - self.probe_started_at >= settings.cool_down:
            return self.model_copy(update={"probe_started_at": None})  # the probe's caller never reported
        return self

    def state_at(self, now: float) -> CircuitStateName:
        """closed, open or half_open at `now`."""
        return self.at(now).state

    def admit(self, now: float) -> Circuit:
        """Let a call through at `now`, or refuse it.

        Returns:
            The circuit after admitting the call (in half_open, with the probe marked as out).

        Raises:
            CircuitOpen: open (until the cool-down is over), or half-open with the probe out.
        """
        current = self.at(now)
        if current.state == "closed":
            return current
        if current.state == "open":
            assert current.opened_at is not None
            raise CircuitOpen(self.target, retry_after=current.opened_at + self.settings.cool_down - now)
        if current.probe_started_at is not None:
            raise CircuitOpen(self.target, retry_after=current.probe_started_at + self.settings.cool_down - now)
        return current.model_copy(update={"probe_started_at": now})

    def succeeded(self, now: float) -> Circuit:
        """A call admitted earlier succeeded: a half-open circuit closes; others stay as they are."""
        current = self.at(now)
        if current.state != "half_open":
            return current
        return current.model_copy(update={"state": "closed", "failures": (), "probe_started_at": None})

    def failed(self, now: float) -> Circuit:
        """A call admitted earlier failed: a closed circuit counts it (and opens at the
        threshold), a half-open one opens again, an open one stays open."""
        current = self.at(now)
        if current.state == "open":
            return current
        if current.state == "half_open":
            return current.model_copy(update={"state": "open", "opened_at": now, "probe_started_at": None})
        failures = (*current.failures, now)
        if len(failures) >= self.settings.failure_threshold:
            return current.model_copy(update={"state": "open", "failures": (), "opened_at": now})
        return current.model_copy(update={"failures": failures})


class CircuitBreaker:
    """A `Circuit` with a clock, for code that calls one target: not thread-safe, not shared.

    Use `before_call()` before each call and `record_success()` / `record_failure()` after it.
    Across processes the state lives in one place (a breaker service holding `Circuit`s);
    `snapshot()` and `from_snapshot()` move it there and back.

    Args:
        target: the agent or tool it guards.
        settings: thresholds and times.
        clock: returns the current time in seconds (default `time.time`; tests pass a fake).
    """

    def __init__(
        self, target: str, *, settings: BreakerSettings | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._circuit = Circuit(target=target, settings=settings or BreakerSettings())
        self._clock = clock

    @classmethod
    def from_snapshot(cls, data: dict[str, Any], *, clock: Callable[[], float] = time.time) -> CircuitBreaker:
        """A breaker resumed from `snapshot()`'s JSON.

        Raises:
            InputError: `data` is not a circuit snapshot; the message names each bad field.
        """
        try:
            circuit = Circuit.model_validate(data)
        except ValidationError as error:
            raise input_error("circuit snapshot", error) from None
        breaker = cls(circuit.target, settings=circuit.settings, clock=clock)
        breaker._circuit = circuit
        return breaker

    @property
    def target(self) -> str:
        """The agent or tool it guards."""
        return self._circuit.target

    @property
    def state(self) -> CircuitStateName:
        """closed, open or half_open, now."""
        return self._circuit.state_at(self._now())

    def before_call(self) -> None:
        """Admit a call now, or refuse it.

        Raises:
            CircuitOpen: the circuit is open, or half-open with its one probe call out.
        """
        self._circuit = self._circuit.admit(self._now())

    def record_success(self) -> None:
        """The admitted call succeeded."""
        self._circuit = self._circuit.succeeded(self._now())

    def record_failure(self) -> None:
        """The admitted call failed."""
        self._circuit = self._circuit.failed(self._now())

    def snapshot(self) -> dict[str, Any]:
        """The circuit as it stands now, as JSON data (`Circuit`'s fields)."""
        return self._circuit.at(self._now()).model_dump(mode="json")

    def _now(self) -> float:
        now = float(self._clock())
        if not math.isfinite(now):
            raise InputError(f"the breaker's clock returned {now!r}; it must return seconds as a finite number")
        return now
