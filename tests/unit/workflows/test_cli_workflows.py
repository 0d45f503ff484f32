"""`sopy-actors graph|check` on built workflows and template files (in process, no Ray)."""

from __future__ import annotations

import pytest

from sopy_actors.cli import main

TEMPLATE = "tests/unit/workflows/analysis.yaml"
FACTORY = "tests/unit/workflows/flows.py:full_workflow"


def test_graph_draws_a_built_workflow_from_its_definition(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", FACTORY, "--format", "mermaid"]) == 0
    assert capsys.readouterr().out.splitlines()[3:6] == [
        "    ProcessData --> AnalyzeData: ProcessRequested",
        "    AnalyzeData --> ReviewFindings: AnalysisRequested [state.anomalies > 0]",
        "    AnalyzeData --> GenerateReport: AnalysisRequested [not (state.anomalies > 0)]",
    ]


def test_check_and_prompt_of_a_template_file_use_its_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", TEMPLATE, "--param", "source=a.csv"]) == 0
    assert capsys.readouterr().out == "ok: 5 procedures, 6 transitions\n"
    assert main(["graph", TEMPLATE, "--param", "source=a.csv", "--param", "threshold=7"]) == 0
    prompt = capsys.readouterr().out
    assert "Instruction: Load the rows from a.csv and check that none is negative. Then proceed to Processing." in prompt
    assert "Instruction: Count the rows above 7. If two or more anomalies, then go to Review." in prompt


def test_params_for_a_python_target_and_malformed_params_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", FACTORY, "--param", "a=b"]) == 2
    assert "--param applies to workflow template files" in capsys.readouterr().err
    assert main(["check", TEMPLATE, "--param", "source"]) == 2
    assert "--param expects name=value, got 'source'" in capsys.readouterr().err
