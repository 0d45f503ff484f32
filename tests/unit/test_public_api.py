"""The public API is pinned, and importing the core never imports Ray."""

from __future__ import annotations

import subprocess
import sys

import sopy_actors

# The ~40 names a workflow author needs; everything else lives in a subpackage.
PUBLIC_API = [
    "SOP", "AgentCompleted", "Alternative", "Backoff", "BreakerSettings", "CompressedState", "Condition",
    "DistributedState", "End", "Event", "Fallback", "HealthCheck", "HumanInterventionRequested", "Lazy",
    "LazyState", "Manual", "Outcome", "Procedure", "ProcedureOptions", "ProcedureTimedOut", "Prompt", "Receipt", "RecoveryPolicy",
    "Retry", "SOPHandle", "ScriptedModel", "SharedStateChanged", "SopyError", "StrandsAgent",
    "SubSOPCompleted", "SubSOPFailed", "Workflow", "WorkflowBuilder", "WorkflowRegistry", "WorkflowTemplate",
    "attach", "cond", "current_sop", "handler", "init", "lazy_loader", "list_sops", "make_prompt", "shutdown",
    "start_many", "tool",
]


def test_public_api_is_pinned_and_every_name_resolves() -> None:
    assert sopy_actors.__all__ == PUBLIC_API
    assert sorted(sopy_actors.__all__, key=str.lower) == sorted(PUBLIC_API, key=str.lower)
    assert sorted(dir(sopy_actors)) == sorted(PUBLIC_API)
    for name in PUBLIC_API:
        assert getattr(sopy_actors, name) is not None


def test_importing_the_package_and_core_does_not_import_ray() -> None:
    code = (
        "import sys, sopy_actors, sopy_actors.core, sopy_actors.testing;"
        "heavy = [m for m in ('ray', 'strands', 'prometheus_client', 'yaml') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
