"""sopy_actors: reliable LLM-agent workflows as SOPy state machines, running on Ray as actors.

The core model (events, procedures, SOPs, the procedure graph) imports no Ray; runtime names
(`init`, `attach`, ...) and agent names (`StrandsAgent`, `tool`, ...) are loaded on first use, so
`import sopy_actors` stays light.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from sopy_actors.core.events import Event
from sopy_actors.core.lifecycle import SubSOPCompleted, SubSOPFailed, SubSOPResult
from sopy_actors.core.options import ProcedureOptions
from sopy_actors.core.graph import ProcedureGraph, make_prompt_from_procedure
from sopy_actors.core.procedure import End, Procedure, Prompt, cond, handler, make_prompt
from sopy_actors.core.sop import SOP, current_run
from sopy_actors.core.transition import Outcome, Transition
from sopy_actors.errors import (
    AgentError,
    DefinitionError,
    HandlerError,
    InputError,
    RecoveryExhausted,
    RuntimeUnavailable,
    SOPCancelled,
    SOPFailed,
    SopyError,
    StateError,
    TransitionError,
    UnknownSOP,
)

logging.getLogger(__name__).addHandler(logging.NullHandler())

# name -> module that defines it; imported on first attribute access (they import Ray).
_LAZY: dict[str, str] = {
    name: "sopy_actors.runtime"
    for name in (
        "Receipt", "RuntimeInfo", "SOPHandle", "SOPStatus", "attach", "current_sop", "init", "list_sops",
        "shutdown",
    )
}
_LAZY.update(
    {
        name: "sopy_actors.agents"
        for name in (
            "AgentCompleted", "AgentFuture", "AgentResult", "AgentSpec", "AgentStatistics",
            "ModelConfig", "ScriptedModel", "StrandsAgent", "ToolResultReady", "ToolUseRequested",
            "tool",
        )
    }
)
_LAZY.update({name: "sopy_actors.monitoring" for name in ("HealthCheck", "Monitor", "monitor")})

__all__ = [
    "SOP",
    "AgentCompleted",
    "AgentError",
    "AgentFuture",
    "AgentResult",
    "AgentSpec",
    "AgentStatistics",
    "DefinitionError",
    "End",
    "Event",
    "HandlerError",
    "HealthCheck",
    "InputError",
    "ModelConfig",
    "Monitor",
    "Outcome",
    "Procedure",
    "ProcedureGraph",
    "ProcedureOptions",
    "Prompt",
    "Receipt",
    "RecoveryExhausted",
    "RuntimeInfo",
    "RuntimeUnavailable",
    "SOPCancelled",
    "SOPFailed",
    "SOPHandle",
    "SOPStatus",
    "ScriptedModel",
    "SopyError",
    "StateError",
    "StrandsAgent",
    "SubSOPCompleted",
    "SubSOPFailed",
    "SubSOPResult",
    "ToolResultReady",
    "ToolUseRequested",
    "Transition",
    "TransitionError",
    "UnknownSOP",
    "attach",
    "cond",
    "current_run",
    "current_sop",
    "handler",
    "init",
    "list_sops",
    "make_prompt",
    "make_prompt_from_procedure",
    "monitor",
    "shutdown",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sopy_actors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
