"""Building the strands `Agent` of a conversation, the same in an agent actor and in process."""

from __future__ import annotations

from typing import Any

from strands import Agent
from strands.tools.executors import SequentialToolExecutor

from sopy_actors.agents.guard import SOPGuard
from sopy_actors.agents.spec import AgentSpec

__all__ = ["new_strands_agent"]


def new_strands_agent(
    spec: AgentSpec, model: Any, tools: list[Any], guard: SOPGuard, *, session_manager: Any = None
) -> Agent:
    """A strands Agent for one conversation: the spec's prompt and name, the SOP guard's hooks,
    tools run one at a time (each tool call is an SOP event, in order), no console output.
    """
    return Agent(
        model=model,
        tools=list(tools),
        system_prompt=spec.system_prompt or None,
        agent_id=spec.name,
        name=spec.name,
        hooks=[guard],
        tool_executor=SequentialToolExecutor(),
        callback_handler=None,
        session_manager=session_manager,
    )
