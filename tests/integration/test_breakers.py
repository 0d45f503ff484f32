"""Cluster-wide circuit breakers on the actor runtime: agents and tools, `/metrics`, HealthChecks.

The tools and the watching SOP live here (workers import this module: the session ships
`tests`). Each test uses circuits of its own names: circuits are cluster-wide, the session's
cluster is shared.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

import sopy_actors.monitoring
from sopy_actors import SOP, End, Event, Procedure, ScriptedModel, StrandsAgent, handler, tool
from sopy_actors.agents import ToolFailed, ToolResultReady, ToolUseRequested, circuits
from sopy_actors.errors import AgentError, CircuitOpen
from sopy_actors.monitoring import HealthCheck
from sopy_actors.recovery import BreakerSettings
from tests.support.monitoring import scrape, value, wait_for

pytestmark = pytest.mark.usefixtures("runtime")


# -- a dependency that fails while told to, and the tools that call it -----------------------


def _service(directory: str, tool_name: str) -> str:
    """Log the run in `<directory>/calls.log`; take `<directory>/delay` seconds if that file
    exists; fail while `<directory>/down` exists."""
    folder = Path(directory)
    with (folder / "calls.log").open("a") as log:
        log.write(tool_name + "\n")
    delay = folder / "delay"
    if delay.exists():
        time.sleep(float(delay.read_text()))
    if (folder / "down").exists():
        raise ConnectionError(f"{tool_name}: the service is down")
    return f"{tool_name}: ok"


@tool
def fetch_shared(directory: str) -> str:
    """Fetch from the shared service.

    Args:
        directory: the service's directory.
    """
    return _service(directory, "fetch_shared")


@tool
def fetch_probed(directory: str) -> str:
    """Fetch from the probed service.

    Args:
        directory: the service's directory.
    """
    return _service(directory, "fetch_probed")


@tool
def fetch_watched(directory: str) -> str:
    """Fetch from the watched service.

    Args:
        directory: the service's directory.
    """
    return _service(directory, "fetch_watched")


@tool
def fetch_unguarded(directory: str) -> str:
    """Fetch from a service that only some agents guard.

    Args:
        directory: the service's directory.
    """
    return _service(directory, "fetch_unguarded")


# -- an SOP that accepts every tool event and records what it heard -------------------------


class Heard(BaseModel):
    results: list[str] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)  # "<error class> retryable=<bool>: <message>"
    circuits: dict[str, str] = Field(default_factory=dict)


class Stopped(Event[str]):
    pass


class Listening(Procedure[Heard]):
    @handler
    def on_use(self, state: Heard, event: ToolUseRequested) -> Procedure[Heard]:
        return self

    @handler
    def on_result(self, state: Heard, event: ToolResultReady) -> Procedure[Heard]:
        state.results.append(event.payload.text)
        return self

    @handler
    def on_failed(self, state: Heard, event: ToolFailed) -> Procedure[Heard]:
        error = event.payload.exception()
        state.failures.append(f"{type(error).__name__} retryable={error.retryable}: {error}")
        return self

    @handler
    def on_health(self, state: Heard, event: HealthCheck) -> Procedure[Heard]:
        state.circuits = dict(event.payload["circuits"])
        return self

    @handler
    def on_stop(self, state: Heard, event: Stopped) -> Procedure[Heard]:
        return End()


def listening_sop() -> SOP[Heard]:
    return SOP(state=Heard(), init_proc=Listening())


# -- helpers --------------------------------------------------------------------------------


def _tool_agent(name: str, fetch: Any, target: str, settings: BreakerSettings) -> StrandsAgent:
    script = [{"tool": target, "input": {"directory": "{prompt}"}}, "saw: {result}"]
    return StrandsAgent(tools=[fetch], model=ScriptedModel(script), name=name, tool_breakers={target: settings})


def _call(agent: StrandsAgent, directory: Path, sop: Any = None) -> Any:
    # A new conversation each time: the script starts again with the tool call.
    return agent(str(directory), sop=sop, conversation=uuid.uuid4().hex, timeout=120)


def _runs(directory: Path) -> list[str]:
    log = directory / "calls.log"
    return log.read_text().split() if log.exists() else []


def _gauge(runtime: Any, target: str) -> float | None:
    text = scrape(f"http://127.0.0.1:{runtime.metrics_port}/metrics")
    return value(text, "sopy_circuit_state", target=target) if f'target="{target}"' in text else None


# -- tests ----------------------------------------------------------------------------------


def test_tool_failures_from_two_sops_open_its_breaker_and_then_the_tool_does_not_run(tmp_path: Path, runtime: Any) -> None:
    (tmp_path / "down").touch()
    settings = BreakerSettings(failure_threshold=2, window=120, cool_down=300)
    first = _tool_agent("breaker-first", fetch_shared, "fetch_shared", settings)
    second = _tool_agent("breaker-second", fetch_shared, "fetch_shared", settings)
    one, two = listening_sop().start(), listening_sop().start()

    failed = [_call(first, tmp_path, one), _call(second, tmp_path, two)]

    assert [(c.status, "the service is down" in c.message) for r in failed for c in r.tool_calls] == [("error", True)] * 2
    assert _runs(tmp_path) == ["fetch_shared"] * 2
    assert circuits()["tool:fetch_shared"].state == "open"

    refused = _call(first, tmp_path, one)

    [call] = refused.tool_calls
    assert call.status == "error"
    assert call.message.startswith("Not run: circuit=<tool:fetch_shared> | open: calls fail fast for ")
    assert refused.text == f"saw: {call.message}"  # what the model saw as the tool's result
    assert _runs(tmp_path) == ["fetch_shared"] * 2  # the tool's body did not run
    heard = one.state().failures
    assert len(heard) == 2 and heard[0].startswith("AgentError retryable=True: ")
    assert heard[1].startswith("CircuitOpen retryable=True: circuit=<tool:fetch_shared> | open")
    for handle in (one, two):
        handle.send(Stopped(payload="done"))


def test_an_open_breaker_shows_in_the_metric_and_in_health_check_payloads(tmp_path: Path, runtime: Any) -> None:
    (tmp_path / "down").touch()
    agent = _tool_agent("breaker-watched", fetch_watched, "fetch_watched", BreakerSettings(failure_threshold=1))
    watcher = listening_sop().monitored(every=0.3).start()
    try:
        _call(agent, tmp_path)
        assert circuits()["tool:fetch_watched"].state == "open"

        wait_for(lambda: _gauge(runtime, "tool:fetch_watched") == 2, what="sopy_circuit_state = 2 (open)")
        wait_for(lambda: watcher.state().circuits.get("tool:fetch_watched") == "open", what="the circuit in a HealthCheck")
        assert sopy_actors.monitoring.monitor().health().circuits["tool:fetch_watched"] == "open"
    finally:
        watcher.send(Stopped(payload="done"))


def test_after_the_cool_down_one_probe_runs_while_other_calls_fail_fast_and_its_success_closes_the_breaker(
    tmp_path: Path, runtime: Any
) -> None:
    (tmp_path / "down").touch()
    settings = BreakerSettings(failure_threshold=2, window=120, cool_down=3)
    first = _tool_agent("breaker-probe-first", fetch_probed, "fetch_probed", settings)
    second = _tool_agent("breaker-probe-second", fetch_probed, "fetch_probed", settings)
    for agent in (first, second):
        _call(agent, tmp_path)
    assert circuits()["tool:fetch_probed"].state == "open"
    (tmp_path / "down").unlink()  # the service is back, and slow
    (tmp_path / "delay").write_text("2")
    wait_for(lambda: circuits()["tool:fetch_probed"].state == "half_open", what="the cool-down")

    probe = first.submit(str(tmp_path), conversation=uuid.uuid4().hex)
    wait_for(lambda: len(_runs(tmp_path)) == 3, what="the probe's tool run")
    assert circuits()["tool:fetch_probed"].probe_started_at is not None

    refused = _call(second, tmp_path)  # while the probe is out

    assert refused.tool_calls[0].message.startswith("Not run: circuit=<tool:fetch_probed> | open")
    assert _runs(tmp_path) == ["fetch_probed"] * 3
    probed = probe.result(timeout=120)
    assert [(c.status, c.message) for c in probed.tool_calls] == [("ok", "fetch_probed: ok")]
    assert circuits()["tool:fetch_probed"].state == "closed"
    wait_for(lambda: _gauge(runtime, "tool:fetch_probed") == 0, what="sopy_circuit_state = 0 (closed)")
    (tmp_path / "delay").unlink()
    assert [c.status for c in _call(second, tmp_path).tool_calls] == ["ok"]
    assert _runs(tmp_path) == ["fetch_probed"] * 4


def test_agent_failures_open_its_breaker_for_every_caller_which_then_fails_fast_until_a_probe_goes_through(
    runtime: Any,
) -> None:
    settings = BreakerSettings(failure_threshold=2, window=120, cool_down=2)
    unreachable = "llamacpp:http://127.0.0.1:9"  # nothing listens on port 9: every model call fails
    one = StrandsAgent(model=unreachable, name="breaker-model", breaker=settings)
    other = StrandsAgent(model=unreachable, name="breaker-model", breaker=settings, max_concurrency=2)
    assert one.actor_name() != other.actor_name()  # two actors (processes), one circuit: agent:breaker-model
    for agent in (one, other):
        with pytest.raises(AgentError):
            agent("hello", timeout=120)

    with pytest.raises(CircuitOpen) as refused:
        one("hello", timeout=120)
    with pytest.raises(CircuitOpen):
        other.submit("hello").result(timeout=120)

    assert refused.value.target == "agent:breaker-model" and refused.value.retryable
    assert 0 < refused.value.retry_after <= 2
    assert one.statistics().calls == other.statistics().calls == 1  # refused calls are not calls
    wait_for(lambda: circuits()["agent:breaker-model"].state == "half_open", what="the cool-down")
    with pytest.raises(AgentError) as probed:
        other("hello", timeout=120)  # the probe goes through to the model, and fails
    assert type(probed.value) is AgentError
    with pytest.raises(CircuitOpen):
        one("hello", timeout=120)  # the failed probe opened the circuit again
    assert one.statistics().calls == 1 and other.statistics().calls == 2


def test_an_agent_without_breakers_runs_a_tool_whose_circuit_other_agents_opened(tmp_path: Path) -> None:
    (tmp_path / "down").touch()
    guarded = _tool_agent("breaker-guarded", fetch_unguarded, "fetch_unguarded", BreakerSettings(failure_threshold=1))
    _call(guarded, tmp_path)
    opened = circuits()["tool:fetch_unguarded"]
    assert opened.state == "open"
    script = [{"tool": "fetch_unguarded", "input": {"directory": "{prompt}"}}, "saw: {result}"]
    plain = StrandsAgent(tools=[fetch_unguarded], model=ScriptedModel(script), name="breaker-none")

    result = _call(plain, tmp_path)

    assert [c.status for c in result.tool_calls] == ["error"] and "the service is down" in result.text
    assert _runs(tmp_path) == ["fetch_unguarded"] * 2  # it ran: its breaker belongs to the other agent
    assert circuits()["tool:fetch_unguarded"] == opened  # and its failure was not reported to it
