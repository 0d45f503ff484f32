"""The adaptive workflow example runs through `sopy-actors run` on the session's cluster."""

from __future__ import annotations

import json
from typing import Any

from tests.examples.cli import ROOT, assert_readme_shows_the_graph, run_cli, run_example

EXAMPLE = ROOT / "examples" / "adaptive_workflow"
TARGET = "examples/adaptive_workflow/workflow.py:default_workflow"


def test_readme_graph_is_the_graph_the_cli_draws_and_the_workflow_checks() -> None:
    assert_readme_shows_the_graph(EXAMPLE, TARGET, "ok: 5 procedures, 6 transitions")


def test_the_graph_of_a_built_workflow_comes_from_its_definition() -> None:
    drawn = run_cli("graph", TARGET, "--format", "json")
    assert drawn.returncode == 0, drawn.stderr
    graph = json.loads(drawn.stdout)
    assert [node["id"] for node in graph["nodes"]] == [
        "ValidateData", "ProcessData", "AnalyzeData", "ReviewFindings", "GenerateReport", "End",
    ]
    conditions = [(e["from"], e["to"], e["condition"]) for e in graph["edges"] if e["from"] == "AnalyzeData"]
    assert conditions == [
        ("AnalyzeData", "ReviewFindings", "outliers were found"),
        ("AnalyzeData", "GenerateReport", "not (outliers were found)"),
    ]
    assert graph["problems"] == {"errors": [], "warnings": []}


def test_adaptive_example_runs_two_contexts_and_refuses_a_third(runtime: Any) -> None:
    out = run_example(runtime, "examples/adaptive_workflow/main.py").stdout
    assert "steps: ValidateData, ProcessData, AnalyzeData, ReviewFindings, GenerateReport" in out
    assert "steps: ProcessData, GenerateReport" in out
    assert "AnalyzeData -> transitioned, now in ReviewFindings" in out
    assert "ProcessData -> transitioned, now in GenerateReport" in out  # analysis disabled: skipped
    assert "Mean 15.35; outliers outside 7.42 .. 21.23: [41.5, 39.8]." in out
    assert "Invalid workflow adaptive_analysis for 5 reasons:" in out
    assert "step ValidateData: handler on_loaded returns ProcessData(), which is not a step" in out
    results = json.JSONDecoder().raw_decode(out.split("--- results\n", 1)[1])[0]
    assert results["full"]["steps"] == [
        "validated 48 rows", "kept 45 readings, dropped 3", "mean 15.35, 2 outliers", "reviewed the outliers", "reported",
    ]
    assert results["quick"] == {"steps": ["kept 45 readings, dropped 3", "reported"], "outliers": [], "mean": None}
