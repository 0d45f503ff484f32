"""Specialist agents as Ray actors: strands Agents whose tool calls the SOP can veto.

    agent = StrandsAgent(tools=[draft, submit], system_prompt="You write reports.",
                         model=ScriptedModel([{"tool": "draft", "input": {...}}, "Done: {result}"]))
    with sop:                              # tool calls become events of this SOP
        result = agent("Execute the workflow")

Modules: `spec` (AgentSpec), `providers` (ModelConfig, provider factory), `scripted` (the
offline ScriptedModel), `tools` (`@tool` and its events), `guard` (the strands hooks), `actor`
(AgentActor), `handle` (StrandsAgent), `future` (AgentFuture), `results`, `events`, `metrics`,
`sessions`, `breakers` (the cluster's circuit breakers; `circuits()` reads them) over
`circuit_board`. Names are loaded on first use: `sopy_actors.agents.events` stays free of Ray and
strands.
"""

from __future__ import annotations

from sopy_actors._lazy import lazy_exports

__all__ = [
    "AgentCompleted",
    "AgentCompletion",
    "AgentFuture",
    "AgentResult",
    "AgentSpec",
    "AgentStatistics",
    "ModelConfig",
    "ScriptedModel",
    "StrandsAgent",
    "ToolCall",
    "ToolDefException",
    "ToolFailed",
    "ToolFailure",
    "ToolOutput",
    "ToolResultReady",
    "ToolUse",
    "ToolUseRequested",
    "Usage",
    "circuits",
    "eToolResult",
    "eToolUse",
    "tool",
]

_MODULES = {
    "AgentCompleted": "events",
    "AgentCompletion": "events",
    "AgentFuture": "future",
    "AgentResult": "results",
    "AgentSpec": "spec",
    "AgentStatistics": "metrics",
    "ModelConfig": "providers",
    "ScriptedModel": "scripted",
    "StrandsAgent": "handle",
    "ToolCall": "results",
    "ToolDefException": "tools",
    "ToolFailed": "events",
    "ToolFailure": "events",
    "ToolOutput": "events",
    "ToolResultReady": "events",
    "ToolUse": "events",
    "ToolUseRequested": "events",
    "Usage": "results",
    "circuits": "breakers",
    "eToolResult": "events",
    "eToolUse": "events",
    "tool": "tools",
}


__getattr__, __dir__ = lazy_exports(
    __name__, globals(), {name: f"sopy_actors.agents.{module}" for name, module in _MODULES.items()}
)
