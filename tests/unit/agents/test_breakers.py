"""Circuit breakers as agents declare them: the circuit board on a fake clock, and AgentSpec's fields."""

from __future__ import annotations

import pytest

from sopy_actors import ScriptedModel, StrandsAgent
from sopy_actors.agents import AgentSpec
from sopy_actors.agents.circuit_board import CircuitBoard, agent_target, tool_target
from sopy_actors.errors import CircuitOpen, InputError
from sopy_actors.recovery import BreakerSettings, Circuit
from tests.support import agentflow

SETTINGS = BreakerSettings(failure_threshold=2, window=10, cool_down=30)


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _states(board: CircuitBoard) -> dict[str, str]:
    return {target: data["state"] for target, data in board.snapshot().items()}


def test_targets_name_agents_and_tools() -> None:
    assert agent_target("writer") == "agent:writer"
    assert tool_target("fetch") == "tool:fetch"


def test_failures_of_one_target_open_only_its_circuit_and_an_open_one_refuses() -> None:
    clock = FakeClock()
    board = CircuitBoard(clock=clock)
    for target in ("tool:fetch", "agent:writer"):
        board.admit(target, SETTINGS)
    board.record("tool:fetch", ok=False)
    board.admit("tool:fetch", SETTINGS)
    board.record("tool:fetch", ok=False)

    assert _states(board) == {"agent:writer": "closed", "tool:fetch": "open"}
    with pytest.raises(CircuitOpen) as refused:
        board.admit("tool:fetch", SETTINGS)
    assert refused.value.target == "tool:fetch" and refused.value.retry_after == 30
    board.admit("agent:writer", SETTINGS)  # the other circuit still lets calls through


def test_after_the_cool_down_exactly_one_probe_goes_through_and_its_success_closes_the_circuit() -> None:
    clock = FakeClock()
    board = CircuitBoard(clock=clock)
    for _ in range(2):
        board.admit("tool:fetch", SETTINGS)
        board.record("tool:fetch", ok=False)
    clock.now += 30

    assert _states(board) == {"tool:fetch": "half_open"}
    board.admit("tool:fetch", SETTINGS)  # the probe
    with pytest.raises(CircuitOpen):
        board.admit("tool:fetch", SETTINGS)  # a second caller while the probe is out
    board.record("tool:fetch", ok=True)
    assert _states(board) == {"tool:fetch": "closed"}
    board.admit("tool:fetch", SETTINGS)


def test_new_settings_replace_a_circuits_settings_and_keep_its_state() -> None:
    clock = FakeClock()
    board = CircuitBoard(clock=clock)
    board.admit("tool:fetch", SETTINGS)
    board.record("tool:fetch", ok=False)
    stricter = BreakerSettings(failure_threshold=1, window=10, cool_down=5)
    board.admit("tool:fetch", stricter)
    board.record("tool:fetch", ok=False)  # one failure is enough now
    circuit = Circuit.model_validate(board.snapshot()["tool:fetch"])
    assert (circuit.state, circuit.settings) == ("open", stricter)
    with pytest.raises(CircuitOpen) as refused:
        board.admit("tool:fetch", SETTINGS)  # refused under the settings it brought, which stay
    assert refused.value.retry_after == 30
    assert Circuit.model_validate(board.snapshot()["tool:fetch"]).settings == SETTINGS


def test_outcomes_of_unknown_targets_are_ignored_and_bad_targets_are_input_errors() -> None:
    board = CircuitBoard(clock=FakeClock())
    board.record("tool:never-admitted", ok=False)
    assert board.snapshot() == {}
    for target in ("fetch", "tool:", "model:x"):
        with pytest.raises(InputError, match="circuit target"):
            board.admit(target, SETTINGS)


def test_a_spec_declares_breakers_for_the_agent_and_its_tools_and_they_survive_json() -> None:
    spec = AgentSpec(
        name="pub",
        tools=[agentflow.write_draft, agentflow.publish],
        breaker=SETTINGS,
        tool_breakers={"publish": {"failure_threshold": 1}},
    )
    assert spec.tool_names() == ["write_draft", "publish"]
    assert spec.tool_breakers == {"publish": BreakerSettings(failure_threshold=1)}
    assert AgentSpec.model_validate(spec.model_dump(mode="json")) == spec
    assert AgentSpec(name="pub", tools=[agentflow.write_draft, agentflow.publish]).actor_name() != spec.actor_name()
    agent = StrandsAgent(tools=[agentflow.publish], model=ScriptedModel(["ok"]), name="pub", tool_breakers={"publish": SETTINGS})
    assert agent.spec.tool_breakers == {"publish": SETTINGS}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tool_breakers": {"publsh": SETTINGS}}, r"tool_breakers names 'publsh', which is not a tool of agent 'pub'"),
        ({"breaker": {"failure_threshold": 0}}, r"breaker.*failure_threshold"),
        ({"tool_breakers": {"publish": {"cool_down": -1}}}, r"tool_breakers.*publish: cool_down"),
        ({"tool_breakers": ["publish"]}, r"tool_breakers.*must map tool names"),
    ],
)
def test_bad_breaker_declarations_are_input_errors_naming_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        AgentSpec(name="pub", tools=[agentflow.publish], **fields)
    assert caught.value.fields == (next(iter(fields)),)
