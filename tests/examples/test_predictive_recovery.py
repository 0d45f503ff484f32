"""The predictive-recovery example on the session's cluster: real memory, real Monitor, real reaction."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.examples.cli import ROOT, assert_readme_shows_the_graph, run_example


def test_readme_graph_is_the_graph_the_cli_draws_and_the_workflow_checks() -> None:
    assert_readme_shows_the_graph(
        ROOT / "examples" / "predictive_recovery",
        "examples/predictive_recovery/workflow.py:PredictiveRecovery",
        "ok: 2 procedures, 6 transitions",
    )


@pytest.mark.memory_readings
def test_memory_pressure_leads_to_preventive_action_and_recovery(runtime: Any) -> None:
    result = run_example(runtime, "examples/predictive_recovery/main.py")
    out = result.stdout
    assert "stateDiagram-v2" in out and "PredictiveRecovery --> PreventiveAction" in out
    assert "HealthCheck PredictiveRecovery -> PreventiveAction (transitioned)" in out
    assert "HealthCheck PreventiveAction -> End (ended)" in out
    final = json.loads(out.split("--- final state\n", 1)[1].split("\nfinished in")[0])
    assert final["actions"] == [
        "_check_resource_exhaustion: parallelism lowered to 1",
        "recovered: memory back under the warning threshold",
    ]
    assert final["parallelism"] == 1
    # What PreventiveAction saw: still under pressure, then healthy after the release.
    assert final["readings"][0] > 0.8 and final["readings"][-1] <= 0.8
