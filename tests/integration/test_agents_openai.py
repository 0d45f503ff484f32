"""The OpenAI-compatible provider end to end, against a local fake server (no internet)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from sopy_actors import StrandsAgent
from sopy_actors.agents import ModelConfig
from tests.support import agentflow as a
from tests.support.fake_openai import FakeOpenAI

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
pytest.importorskip("openai", reason="needs strands-agents[openai] (the test extra)")


def test_an_agent_on_an_openai_compatible_server_calls_its_guarded_tool(runtime: Any) -> None:
    with FakeOpenAI() as server:
        agent = StrandsAgent(
            tools=[a.shout],
            system_prompt="You shout.",
            model=ModelConfig(provider="openai", model_id="fake-gpt", base_url=server.base_url),
            name="openai-shouter",
        )
        handle = a.publishing_sop().start()
        result = agent("hello", sop=handle, timeout=120)

    assert result.text == "The tool said: HELLO"
    assert result.stop_reason == "end_turn"
    assert [(c.name, c.input, c.status) for c in result.tool_calls] == [("shout", {"text": "hello"}, "ok")]
    assert result.usage.input_tokens == 14 and result.usage.output_tokens == 6
    first, second = server.requests
    assert first["model"] == "fake-gpt" and first["stream"] is True
    assert first["messages"][0] == {"role": "system", "content": "You shout."}
    assert [t["function"]["name"] for t in first["tools"]] == ["shout"]
    assert second["messages"][-1]["role"] == "tool"
    # The generic tool events reached the SOP (optional there: Drafting ignores them).
    assert [(e.event_type, e.outcome) for e in handle.history()] == [
        ("ToolUseRequested", "ignored"),
        ("ToolResultReady", "ignored"),
    ]
