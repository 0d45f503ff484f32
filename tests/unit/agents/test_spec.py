"""AgentSpec and StrandsAgent as data: validation names the field; equal specs are one agent."""

from __future__ import annotations

import pickle

import pytest

from sopy_actors import ScriptedModel, StrandsAgent
from sopy_actors.agents import AgentSpec, ModelConfig
from sopy_actors.core.codec import decode_value, encode_value
from sopy_actors.errors import InputError
from tests.support import agentflow


def test_tools_are_stored_as_references_and_equal_specs_share_an_actor_name() -> None:
    first = AgentSpec(name="pub", tools=[agentflow.write_draft, agentflow.publish])
    second = AgentSpec(name="pub", tools=["tests.support.agentflow:write_draft", agentflow.publish])
    assert first.tools == ("tests.support.agentflow:write_draft", "tests.support.agentflow:publish")
    assert first == second
    assert first.actor_name() == second.actor_name()
    assert first.actor_name().startswith("sopy-agent-pub-")
    assert AgentSpec(name="pub", system_prompt="other").actor_name() != first.actor_name()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "has space"}, "name"),
        ({"name": "a", "max_concurrency": 0}, "max_concurrency"),
        ({"name": "a", "tools": [agentflow.publish, agentflow.publish]}, "tools"),
        ({"name": "a", "tools": ["tests.support.agentflow:missing"]}, "tools"),
        ({"name": "a", "tools": "tests.support.agentflow:publish"}, "tools"),
        ({"name": "a", "model": "nonsense:model"}, "model"),
        ({"name": "a", "model": 42}, "model"),
        ({"name": "a", "persist_sessions": "maybe"}, "persist_sessions"),
        ({"name": "a", "surprise": 1}, "surprise"),
        ({"name": "a", "resources": {"llm": -1}}, "resources.llm"),
    ],
)
def test_invalid_spec_fields_are_input_errors_naming_the_field(fields: dict, field: str) -> None:
    with pytest.raises(InputError) as caught:
        AgentSpec(**fields)
    assert caught.value.fields[0] == field
    assert f"field '{field}'" in str(caught.value)


def test_a_tool_defined_inside_a_function_is_refused_with_the_reason() -> None:
    from strands import tool

    @tool
    def local_tool(x: int) -> int:
        """Local."""
        return x

    with pytest.raises(InputError, match="defined inside a function") as caught:
        StrandsAgent(tools=[local_tool], name="local")
    assert caught.value.fields == ("tools",)


def test_a_scripted_model_travels_as_its_steps() -> None:
    steps = [{"tool": "publish", "input": {"path": "x"}}, "done"]
    spec = AgentSpec(name="s", model=ScriptedModel(steps))
    assert spec.model == ModelConfig(provider="scripted", steps=tuple(steps))
    assert AgentSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_an_unnamed_agent_gets_a_stable_name_from_its_spec() -> None:
    first = StrandsAgent(tools=[agentflow.shout], system_prompt="Shout.")
    second = StrandsAgent(tools=[agentflow.shout], system_prompt="Shout.")
    assert first.name == second.name and first.name.startswith("agent-")
    assert StrandsAgent(tools=[agentflow.shout], system_prompt="Whisper.").name != first.name


def test_a_handle_pickles_and_survives_the_checkpoint_codec() -> None:
    agent = StrandsAgent(tools=[agentflow.write_draft], system_prompt="Write.", name="writer")
    assert pickle.loads(pickle.dumps(agent)) == agent
    restored = decode_value(encode_value({"agent": agent}))["agent"]
    assert isinstance(restored, StrandsAgent)
    assert restored == agent and restored.spec.actor_name() == agent.spec.actor_name()
