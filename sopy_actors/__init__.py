"""sopy_actors: reliable LLM-agent workflows as SOPy state machines, running on Ray as actors.

The names a workflow author needs. The core model (events, procedures, SOPs) imports no Ray;
runtime and agent names (`init`, `StrandsAgent`, ...) are loaded on first use, so
`import sopy_actors` stays light. More lives in the subpackages: `sopy_actors.errors` (every
error), `sopy_actors.recovery` (the recovery ladder), `sopy_actors.workflows` (built and
templated workflows), `sopy_actors.state` (distributed, lazy and compressed state),
`sopy_actors.agents`, `sopy_actors.monitoring`, `sopy_actors.testing`, and `sopy_actors.sopy`
(SOPy's own module layout and names).
"""

from __future__ import annotations

import logging

from sopy_actors._lazy import lazy_exports
from sopy_actors.core.events import Event
from sopy_actors.core.lifecycle import (
    HumanInterventionRequested,
    ProcedureTimedOut,
    SharedStateChanged,
    SubSOPCompleted,
    SubSOPFailed,
)
from sopy_actors.core.options import ProcedureOptions
from sopy_actors.core.procedure import End, Procedure, Prompt, cond, handler, make_prompt
from sopy_actors.core.sop import SOP, current_sop
from sopy_actors.core.transition import Outcome
from sopy_actors.errors import SopyError
from sopy_actors.recovery import Alternative, Backoff, BreakerSettings, Fallback, Manual, RecoveryPolicy, Retry
from sopy_actors.state import CompressedState, DistributedState, Lazy, LazyState, lazy_loader

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "SOP",
    "AgentCompleted",
    "Alternative",
    "Backoff",
    "BreakerSettings",
    "CompressedState",
    "Condition",
    "DistributedState",
    "End",
    "Event",
    "Fallback",
    "HealthCheck",
    "HumanInterventionRequested",
    "Lazy",
    "LazyState",
    "Manual",
    "Outcome",
    "Procedure",
    "ProcedureOptions",
    "ProcedureTimedOut",
    "Prompt",
    "Receipt",
    "RecoveryPolicy",
    "Retry",
    "SOPHandle",
    "ScriptedModel",
    "SharedStateChanged",
    "SopyError",
    "StrandsAgent",
    "SubSOPCompleted",
    "SubSOPFailed",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowRegistry",
    "WorkflowTemplate",
    "attach",
    "cond",
    "current_sop",
    "handler",
    "init",
    "lazy_loader",
    "list_sops",
    "make_prompt",
    "shutdown",
    "start_many",
    "tool",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "init": "sopy_actors.bootstrap",
        "shutdown": "sopy_actors.bootstrap",
        "Receipt": "sopy_actors.runtime.messages",
        "SOPHandle": "sopy_actors.runtime.handle",
        "attach": "sopy_actors.runtime.engine",
        "list_sops": "sopy_actors.runtime.engine",
        "start_many": "sopy_actors.runtime.engine",
        "AgentCompleted": "sopy_actors.agents.events",
        "ScriptedModel": "sopy_actors.agents.scripted",
        "StrandsAgent": "sopy_actors.agents.handle",
        "tool": "sopy_actors.agents.tools",
        "HealthCheck": "sopy_actors.monitoring.health",
        "Condition": "sopy_actors.workflows",
        "Workflow": "sopy_actors.workflows",
        "WorkflowBuilder": "sopy_actors.workflows",
        "WorkflowRegistry": "sopy_actors.workflows",
        "WorkflowTemplate": "sopy_actors.workflows",
    },
)
