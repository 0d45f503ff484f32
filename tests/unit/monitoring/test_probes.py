"""Probe checks and the Monitor's per-probe state machine: down, disabled, backoff, saved rows (no Ray)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from sopy_actors.monitoring import DependencyStatus
from sopy_actors.monitoring.probes import CRASH_LIMIT, MAX_BACKOFF, ProbeSpec, ProbeState, function_path, run_probe
from tests.support import probes

RUNNER_DIED = "ActorDiedError: The actor died unexpectedly before finishing this task."


def function_probe(function: Callable[[], object], *, every: float = 1.0, timeout: float = 0.5) -> ProbeSpec:
    return ProbeSpec(name="dep", kind="function", target=function_path(function), every=every, timeout=timeout)


def up(at: float) -> DependencyStatus:
    return DependencyStatus(up=True, latency_seconds=0.01, checked_at=at)


def test_three_runner_crashes_in_a_row_disable_a_probe_with_the_reason() -> None:
    probe = ProbeState(function_probe(probes.exits_process))
    assert probe.status is None and not probe.disabled
    for crash in range(1, CRASH_LIMIT):
        probe.crashed(RUNNER_DIED, at=float(crash))
        assert not probe.disabled
        assert probe.status == DependencyStatus(
            up=False, error=f"runner process died ({crash} of 3 in a row): {RUNNER_DIED}", checked_at=float(crash)
        )
    probe.crashed(RUNNER_DIED, at=3.0)
    assert probe.disabled
    assert probe.status == DependencyStatus(
        up=False,
        error=(
            "disabled: its runner process died 3 times in a row; register the probe again to "
            f"re-enable it (last: {RUNNER_DIED})"
        ),
        checked_at=3.0,
    )


def test_a_completed_or_timed_out_check_between_crashes_starts_the_count_again() -> None:
    probe = ProbeState(function_probe(probes.exits_process))
    probe.crashed(RUNNER_DIED, at=1.0)
    probe.crashed(RUNNER_DIED, at=2.0)
    probe.completed(up(3.0))
    assert probe.status == up(3.0)
    probe.crashed(RUNNER_DIED, at=4.0)
    probe.crashed(RUNNER_DIED, at=5.0)
    probe.timed_out(at=6.0)
    probe.crashed(RUNNER_DIED, at=7.0)
    probe.crashed(RUNNER_DIED, at=8.0)
    assert not probe.disabled


def test_a_check_that_times_out_is_down_and_never_disables_the_probe() -> None:
    probe = ProbeState(function_probe(probes.hangs_forever, timeout=0.5))
    for at in range(10):
        probe.timed_out(at=float(at))
    assert not probe.disabled
    assert probe.status == DependencyStatus(up=False, latency_seconds=0.5, error="timed out after 0.5 s", checked_at=9.0)


def test_checks_that_lose_their_runner_back_off_up_to_a_minute_and_a_result_resets_the_wait() -> None:
    probe = ProbeState(function_probe(probes.hangs_forever, every=0.5))
    assert probe.next_delay() == 0.5
    waits = []
    for at in range(10):
        probe.timed_out(at=float(at))
        waits.append(probe.next_delay())
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]
    probe.crashed(RUNNER_DIED, at=10.0)
    assert probe.next_delay() == MAX_BACKOFF
    probe.completed(up(11.0))
    assert probe.next_delay() == 0.5

    slow = ProbeState(function_probe(probes.hangs_forever, every=120.0))
    slow.timed_out(at=1.0)
    assert slow.next_delay() == 120.0


def test_a_disabled_probe_is_saved_with_its_status_and_loads_disabled_as_it_was() -> None:
    probe = ProbeState(function_probe(probes.exits_process))
    pending_row = json.loads(json.dumps(probe.row()))
    assert pending_row == probe.spec.model_dump(mode="json")
    for at in range(CRASH_LIMIT):
        probe.crashed(RUNNER_DIED, at=float(at))

    loaded = ProbeState.from_row(json.loads(json.dumps(probe.row())))  # as monitor.sqlite3 keeps it
    assert loaded.disabled and loaded.status == probe.status and loaded.spec == probe.spec
    assert loaded.row() == probe.row()
    pending = ProbeState.from_row(pending_row)
    assert not pending.disabled and pending.status is None and pending.spec == probe.spec


@pytest.mark.parametrize(
    "row",
    [
        {"name": "dep", "kind": "url", "target": "ftp://example.org"},
        {"name": "dep", "kind": "function", "target": "tests.support.probes:always_up", "timeout": 301},
        {"name": "dep", "kind": "function", "target": "tests.support.probes:always_up", "disabled": {"up": "maybe"}},
    ],
)
def test_a_saved_row_that_is_not_a_valid_probe_is_refused(row: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ProbeState.from_row(row)


def test_timeouts_default_to_two_seconds_and_stay_within_five_minutes() -> None:
    assert ProbeSpec(name="dep", kind="url", target="http://127.0.0.1:1/health").timeout == 2.0
    for timeout in (0, -1, 300.5):
        with pytest.raises(ValidationError, match="timeout"):
            ProbeSpec(name="dep", kind="url", target="http://127.0.0.1:1/health", timeout=timeout)


def test_a_check_imports_its_function_by_reference_and_says_why_it_is_down() -> None:
    assert run_probe(function_probe(probes.always_up)).up
    refused = run_probe(function_probe(probes.raises))
    assert not refused.up and refused.error == "ConnectionRefusedError: dependency refused the connection"
    assert run_probe(function_probe(probes.reports_down)).error == "returned False"
    missing = run_probe(ProbeSpec(name="dep", kind="function", target="tests.support.probes:gone"))
    assert not missing.up and missing.error is not None and "Cannot load tests.support.probes:gone" in missing.error

