"""ScriptedModel: a real strands Model, deterministic, usable directly in a strands Agent."""

from __future__ import annotations

import asyncio
import json

import pytest
from strands import Agent

from sopy_actors import ScriptedModel
from sopy_actors.errors import InputError
from tests.support import agentflow


def _agent(steps: list) -> Agent:
    return Agent(model=ScriptedModel(steps), tools=[agentflow.shout], callback_handler=None)


def test_a_script_calls_tools_and_answers_with_the_last_result() -> None:
    agent = _agent([{"tool": "shout", "input": {"text": "{prompt}"}}, "Heard: {result}"])
    result = agent("hello there")
    assert str(result).strip() == "Heard: HELLO THERE"
    assert result.stop_reason == "end_turn"
    assert result.metrics.cycle_count == 2


def test_placeholders_are_filled_once_so_a_result_is_never_read_as_a_template() -> None:
    model = ScriptedModel([{"tool": "shout", "input": {"text": "a"}}, "{prompt} -> {result}"])
    messages = [
        {"role": "user", "content": [{"text": "ask"}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t0", "name": "shout", "input": {}}}]},
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "t0", "status": "success", "content": [{"text": "see {prompt}"}]}}],
        },
    ]

    async def answer() -> str:
        return "".join(
            [e["contentBlockDelta"]["delta"]["text"] async for e in model.stream(messages) if "contentBlockDelta" in e]
        )

    # The tool's text reaches the answer as it is: "{prompt}" inside it is not filled in.
    assert asyncio.run(answer()) == "ask -> see {prompt}"


def test_the_script_continues_across_calls_of_one_conversation() -> None:
    agent = _agent(["first answer", "second answer to {prompt}"])
    assert str(agent("one")).strip() == "first answer"
    assert str(agent("two")).strip() == "second answer to two"
    assert str(agent("three")).strip() == "second answer to three"  # the last step repeats


def test_usage_is_counted_deterministically_from_text_lengths() -> None:
    usages = []
    for _ in range(2):
        result = _agent(["x" * 40]).__call__("y" * 40)
        usages.append(result.metrics.latest_agent_invocation.usage)
    assert usages[0] == usages[1]
    assert usages[0]["outputTokens"] == 10
    assert usages[0]["inputTokens"] == 10
    assert usages[0]["totalTokens"] == 20


def test_stream_yields_strands_events_for_a_tool_call() -> None:
    model = ScriptedModel([{"tool": "shout", "input": {"text": "a"}}])

    async def collect() -> list[dict]:
        return [e async for e in model.stream([{"role": "user", "content": [{"text": "hi"}]}])]

    events = asyncio.run(collect())
    assert [next(iter(e)) for e in events] == [
        "messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata",
    ]
    assert events[1]["contentBlockStart"]["start"]["toolUse"]["name"] == "shout"
    assert json.loads(events[2]["contentBlockDelta"]["delta"]["toolUse"]["input"]) == {"text": "a"}
    assert events[4]["messageStop"]["stopReason"] == "tool_use"


@pytest.mark.parametrize(
    ("steps", "field"),
    [([], "steps"), ("text", "steps"), ([{"name": "x", "input": {}}], "steps[0]"), (["ok", {"tool": ""}], "steps[1]")],
)
def test_malformed_scripts_are_refused_naming_the_step(steps: object, field: str) -> None:
    with pytest.raises(InputError) as caught:
        ScriptedModel(steps)  # type: ignore[arg-type]
    assert caught.value.fields == (field,)


def test_structured_output_plays_the_step_as_the_output_model_or_refuses_it() -> None:
    from pydantic import BaseModel
    from strands.types.exceptions import StructuredOutputException

    class Verdict(BaseModel):
        ok: bool
        reason: str

    async def play(model: ScriptedModel) -> list[dict[str, object]]:
        prompt = [{"role": "user", "content": [{"text": "judge"}]}]
        return [event async for event in model.structured_output(Verdict, prompt)]

    from_tool = asyncio.run(play(ScriptedModel([{"tool": "verdict", "input": {"ok": True, "reason": "fine"}}])))
    assert from_tool == [{"output": Verdict(ok=True, reason="fine")}]
    from_text = asyncio.run(play(ScriptedModel(['{"ok": false, "reason": "{prompt}"}'])))
    assert from_text == [{"output": Verdict(ok=False, reason="judge")}]
    with pytest.raises(StructuredOutputException, match="not a valid Verdict"):
        asyncio.run(play(ScriptedModel(["not json"])))
