"""The public API is pinned, and importing the core never imports Ray."""

from __future__ import annotations

import subprocess
import sys

import sopy_actors

PUBLIC_API = [
    "SOP", "AgentCompleted", "AgentError", "AgentFuture", "AgentResult", "AgentSpec",
    "AgentStatistics", "DefinitionError", "End", "Event", "HandlerError", "HealthCheck", "InputError",
    "ModelConfig", "Monitor", "Outcome", "Procedure", "ProcedureGraph", "ProcedureOptions", "Prompt",
    "Receipt", "RecoveryExhausted", "RuntimeInfo", "RuntimeUnavailable", "SOPCancelled",
    "SOPFailed", "SOPHandle", "SOPStatus", "ScriptedModel", "SopyError", "StateError",
    "StrandsAgent", "SubSOPCompleted", "SubSOPFailed", "SubSOPResult", "ToolResultReady",
    "ToolUseRequested", "Transition", "TransitionError", "UnknownSOP", "attach", "cond",
    "current_run", "current_sop", "handler", "init", "list_sops", "make_prompt", "make_prompt_from_procedure",
    "monitor",
    "shutdown", "tool",
]


def test_public_api_is_pinned() -> None:
    assert sopy_actors.__all__ == PUBLIC_API
    assert sorted(sopy_actors.__all__, key=str.lower) == sorted(PUBLIC_API, key=str.lower)
    eager = [n for n in PUBLIC_API if n not in sopy_actors._LAZY]
    for name in eager:
        assert getattr(sopy_actors, name) is not None


def test_importing_the_package_and_core_does_not_import_ray() -> None:
    code = (
        "import sys, sopy_actors, sopy_actors.core, sopy_actors.testing;"
        "heavy = [m for m in ('ray', 'strands', 'prometheus_client') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
