"""The templated analysis example runs through `sopy-actors run`, from main.py and from the YAML file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.examples.cli import ROOT, on_cluster, run_cli, run_example

EXAMPLE = ROOT / "examples" / "templated_analysis"
TEMPLATE = "examples/templated_analysis/analysis.yaml"


def _json_after(out: str, marker: str) -> Any:
    """The JSON value printed right after `marker` (more lines may follow it)."""
    return json.JSONDecoder().raw_decode(out.split(marker, 1)[1].lstrip())[0]


def test_readme_graph_is_the_graph_the_cli_draws_from_the_template_file() -> None:
    drawn = run_cli("graph", TEMPLATE, "--param", "data_type=temperature", "--format", "mermaid")
    readme = (EXAMPLE / "README.md").read_text()
    block = re.search(r"```mermaid\n(.*?)```", readme, re.DOTALL)
    assert block is not None and (drawn.returncode, drawn.stderr) == (0, "")
    assert drawn.stdout == block.group(1)
    checked = run_cli("check", TEMPLATE, "--param", "data_type=temperature")
    assert (checked.returncode, checked.stdout) == (0, "ok: 5 procedures, 6 transitions\n")
    assert "```\nok: 5 procedures, 6 transitions\n```" in readme


def test_the_prompt_of_a_template_is_filled_with_its_parameters() -> None:
    prompt = run_cli("graph", TEMPLATE, "--param", "data_type=humidity", "--param", "algorithm=zscore")
    assert prompt.returncode == 0, prompt.stderr
    assert "Procedure DataCollection:\n    Instruction: Collect humidity data from data/readings.csv" in prompt.stdout
    analysis = "Find the outliers in the humidity data using zscore. If outliers were found, then go to OutlierReview."
    assert analysis in prompt.stdout


def test_a_bad_parameter_or_template_fails_before_anything_runs(tmp_path: Path) -> None:
    missing = run_cli("check", TEMPLATE)
    assert missing.returncode == 2 and "parameter 'data_type' is required" in missing.stderr
    unknown = run_cli("run", TEMPLATE, "--param", "data_type=x", "--param", "colour=red")
    assert unknown.returncode == 2 and "unknown parameter(s) colour" in unknown.stderr
    assert "connected:" not in unknown.stdout  # refused before Ray started
    bad = tmp_path / "bad.yaml"
    # The test template's registry module imports from the repository root, wherever the file is.
    bad.write_text((ROOT / "tests/unit/workflows/analysis.yaml").read_text().replace("{source}", "{source.__class__}"))
    refused = run_cli("check", str(bad), "--param", "source=x")
    assert refused.returncode == 2
    assert re.search(r"bad\.yaml:\d+: steps\[0\]\.prompt_template: placeholder \{source\.__class__\} is refused", refused.stderr)


def test_templated_example_runs_each_step_with_its_agent(runtime: Any) -> None:
    out = run_example(runtime, "examples/templated_analysis/main.py").stdout
    temperature, humidity = out.split("=== data_analysis_workflow with ")[1:]
    analysed = "Analysis (Analysis): Find the outliers in the temperature data using iqr\n" \
        "    -> transitioned, now in OutlierReview"
    assert analysed in temperature
    assert "48 readings of temperature" not in temperature and "45 readings of temperature kept, 3 dropped" in temperature
    assert "- west 2024-05-01T07:00: 41.5 (station mean " in temperature and "confirmed spike" in temperature
    assert "OutlierReview: analyst agent, examine_readings" in temperature
    assert "Reporting: writer agent, write_report" in temperature
    assert "-> transitioned, now in Reporting" in humidity and "OutlierReview" not in humidity.split("--- transitions")[1]
    final = _json_after(humidity, "--- final state\n")
    assert final["analysis"]["outliers"] == 0 and final["processed"] == {"kept": 48, "dropped": 0}


def test_the_template_file_runs_on_its_own_with_the_registry_driver(runtime: Any) -> None:
    result = run_cli("run", TEMPLATE, "--param", "data_type=temperature", "--param", "algorithm=zscore", *on_cluster(runtime))
    assert result.returncode == 0, result.stderr[-3000:]
    final = _json_after(result.stdout, "--- final state of data_analysis_workflow\n")
    assert final["processed"] == {"kept": 45, "dropped": 3}
    assert final["review"] == {"confirmed": 2, "dismissed": 0}
    assert Path(final["report"]).read_text().startswith("# Temperature readings\n")
