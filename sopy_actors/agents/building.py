"""Building a strands `Agent` for an AgentSpec, the same in an agent actor and in process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from strands import Agent
from strands.middleware import InvokeModelContext, InvokeModelStage, MiddlewareNext, TypedEvent
from strands.tools.executors import SequentialToolExecutor

from sopy_actors.agents.guard import SOPGuard
from sopy_actors.agents.spec import AgentSpec

__all__ = ["new_strands_agent"]


def new_strands_agent(
    spec: AgentSpec,
    model: Any,
    tools: list[Any],
    guard: SOPGuard,
    *,
    session_manager: Any = None,
    model_calls: asyncio.Semaphore | None = None,
) -> Agent:
    """A strands Agent for the spec: its prompt and name, the SOP guard's hooks, tools run one
    at a time (each tool call is an SOP event, in order), no console output.

    Args:
        spec: the agent's spec.
        model: the strands model (one per actor or process, shared by its Agents).
        tools: the spec's tools, loaded.
        guard: the hooks that hold tool calls to the SOP a call works for.
        session_manager: a strands session manager, or None.
        model_calls: slots for model calls shared by Agents, or None (no limit): each model call
            holds one while it streams, so waiting on tools and SOPs holds none.
    """
    agent = Agent(
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
    if model_calls is not None:
        slots = model_calls

        async def one_slot_per_model_call(
            context: InvokeModelContext, next_fn: MiddlewareNext[InvokeModelContext, TypedEvent]
        ) -> AsyncGenerator[TypedEvent, None]:
            async with slots:
                async for event in next_fn(context):
                    yield event

        agent.add_middleware(InvokeModelStage, one_slot_per_model_call)
    return agent
