"""The circuit breaker's state machine, on a fake clock; CircuitOpen on the error wire."""

from __future__ import annotations

import json
import pickle

import pytest

from sopy_actors.errors import DefinitionError, InputError, error_from_wire, error_to_wire, is_retryable
from sopy_actors.recovery import CIRCUIT_STATE_CODES, BreakerSettings, Circuit, CircuitBreaker, CircuitOpen

SETTINGS = BreakerSettings(failure_threshold=3, window=10, cool_down=30)


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker("search-tool", settings=SETTINGS, clock=clock)


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.before_call()
        breaker.record_failure()


def test_n_failures_within_the_window_open_the_circuit(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 2)
    assert breaker.state == "closed"
    clock.advance(9)
    fail(breaker)
    assert breaker.state == "open"


def test_failures_spread_wider_than_the_window_do_not(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(6):
        fail(breaker)
        clock.advance(5.5)  # at most two failures inside any 10 s
    assert breaker.state == "closed"
    assert len(breaker.snapshot()["failures"]) == 1


def test_an_open_circuit_fails_fast_with_a_retryable_error_saying_when_to_try(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(12)
    with pytest.raises(CircuitOpen) as refused:
        breaker.before_call()
    assert refused.value.target == "search-tool" and refused.value.retry_after == 18
    assert refused.value.retryable and is_retryable(refused.value)
    assert str(refused.value) == (
        "circuit=<search-tool> | open: calls fail fast for 18.0 s more, then one probe call is let through; "
        "use a fallback meanwhile"
    )


def test_after_the_cool_down_one_probe_is_let_through_and_its_success_closes_the_circuit(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    clock.advance(30)
    assert breaker.state == "half_open"
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # everyone else waits for the probe
    breaker.record_success()
    assert breaker.state == "closed" and breaker.snapshot()["failures"] == []
    breaker.before_call()


def test_a_failed_probe_opens_the_circuit_for_another_cool_down(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(31)
    fail(breaker)
    assert breaker.state == "open"
    clock.advance(29.5)
    with pytest.raises(CircuitOpen) as refused:
        breaker.before_call()
    assert refused.value.retry_after == pytest.approx(0.5)
    clock.advance(0.5)
    assert breaker.state == "half_open"


def test_a_probe_that_never_reports_back_is_replaced_after_a_cool_down(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(30)
    breaker.before_call()  # its caller dies
    clock.advance(29)
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.advance(1)
    breaker.before_call()
    assert breaker.snapshot()["probe_started_at"] == clock.now


def test_late_results_of_calls_admitted_before_opening_change_nothing(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    breaker.record_success()
    breaker.record_failure()
    clock.advance(29)
    assert breaker.state == "open"
    clock.advance(1)
    assert breaker.state == "half_open"  # the cool-down counts from the opening, not from the late failure


def test_the_snapshot_is_json_that_resumes_the_same_circuit(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(30)
    snapshot = json.loads(json.dumps(breaker.snapshot()))
    assert snapshot["state"] == "half_open" and CIRCUIT_STATE_CODES[snapshot["state"]] == 1
    assert snapshot["settings"] == {"failure_threshold": 3, "window": 10.0, "cool_down": 30.0}
    resumed = CircuitBreaker.from_snapshot(snapshot, clock=clock)
    assert resumed.target == "search-tool" and resumed.state == "half_open"
    resumed.before_call()
    with pytest.raises(CircuitOpen):
        resumed.before_call()
    with pytest.raises(InputError, match="Invalid circuit snapshot: field 'state'"):
        CircuitBreaker.from_snapshot({**snapshot, "state": "ajar"})


def test_circuit_transitions_are_pure() -> None:
    closed = Circuit(target="db", settings=BreakerSettings(failure_threshold=1, cool_down=5))
    opened = closed.failed(now=100)
    assert (closed.state, opened.state) == ("closed", "open")
    assert opened.state_at(104.9) == "open" and opened.state_at(105) == "half_open"
    probing = opened.admit(now=105)
    assert (opened.probe_started_at, probing.probe_started_at) == (None, 105)
    assert probing.succeeded(now=106).state == "closed" and probing.state == "half_open"
    assert CIRCUIT_STATE_CODES == {"closed": 0, "half_open": 1, "open": 2}


def test_circuit_open_crosses_the_error_wire_and_pickle_as_itself() -> None:
    error = CircuitOpen("search-tool", retry_after=12.5)
    wire = json.loads(json.dumps(error_to_wire(error)))
    assert wire["type"] == "CircuitOpen"
    for copy in (error_from_wire(wire), pickle.loads(pickle.dumps(error))):
        assert type(copy) is CircuitOpen and str(copy) == str(error)
        assert copy.__dict__ == error.__dict__ and copy.retryable


def test_breaker_settings_list_every_problem() -> None:
    with pytest.raises(DefinitionError) as error:
        BreakerSettings(failure_threshold=0, window=-1, cool_down=float("inf"))
    assert str(error.value).startswith("Invalid BreakerSettings for 3 reasons:")
    assert [problem.split(":")[0] for problem in error.value.problems] == ["failure_threshold", "window", "cool_down"]


def test_a_clock_that_returns_nonsense_is_refused() -> None:
    with pytest.raises(InputError, match="clock returned nan"):
        CircuitBreaker("db", clock=lambda: float("nan")).before_call()
