"""The delegation example runs through `sopy-actors run` on the session's cluster."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from tests.examples.cli import ROOT, assert_readme_shows_the_graph, run_cli, run_example

EXAMPLE = ROOT / "examples" / "delegation"
TARGET = "examples/delegation/workflow.py:TaskCoordinator"



def json_after(out: str, marker: str) -> Any:
    """The JSON value printed right after `marker` (more lines may follow it)."""
    text = out.split(marker, 1)[1].lstrip()
    return json.JSONDecoder().raw_decode(text)[0]


def test_readme_graph_is_the_graph_the_cli_draws_and_the_workflow_checks() -> None:
    assert_readme_shows_the_graph(EXAMPLE, TARGET, "ok: 3 procedures, 12 transitions")


def test_delegation_example_delegates_to_three_agents_that_do_real_work(runtime: Any) -> None:
    result = run_example(runtime, "examples/delegation/main.py")
    out = result.stdout
    run_dir = Path(re.search(r"^run directory: (\S+)$", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    try:
        assert "--- graph of TaskCoordinator\nstateDiagram-v2\n" in out
        assert run_cli("graph", TARGET, "--format", "mermaid").stdout in out
        assert "StrandsAgent('data', model='scripted (offline)')" in out

        # The SOP refuses what is out of order or unknown; the three tasks move it on.
        assert "coordinator <- report_generation: rejected, now in TaskCoordinator\n" \
            "    recovery prompt: Process the data first: assign a data_processing task.\n" in out
        assert "coordinator <- translation: rejected, now in DataProcessingComplete\n" \
            "    recovery prompt: Unknown task type: translation\n" in out
        assert "coordinator <- data_processing: transitioned, now in DataProcessingComplete\n    data agent: " in out
        assert "coordinator <- report_generation: transitioned, now in ReportGenerationComplete\n    report agent: " in out
        assert "coordinator <- quality_review: ended, now in QualityReviewComplete\n    review agent: " in out
        assert "tools: query_database:ok, process_data:ok; tokens: " in out
        transitions = out.split("--- transitions\n", 1)[1].split("--- token usage", 1)[0]
        assert transitions.splitlines() == [
            "v1: TaskAssignment TaskCoordinator -> TaskCoordinator (rejected)",
            "v2: TaskAssignment TaskCoordinator -> DataProcessingComplete (transitioned)",
            "v3: TaskAssignment DataProcessingComplete -> DataProcessingComplete (rejected)",
            "v4: TaskAssignment DataProcessingComplete -> ReportGenerationComplete (transitioned)",
            "v5: TaskAssignment ReportGenerationComplete -> QualityReviewComplete (ended)",
        ]
        for agent in ("data", "report", "review"):
            pattern = rf"^{agent}: 1 call\(s\), 2 tool calls, (\d+) input \+ (\d+) output = (\d+) tokens$"
            usage = re.search(pattern, out, re.MULTILINE)
            assert usage is not None, agent
            assert int(usage[1]) > 0 and int(usage[2]) > 0 and int(usage[3]) == int(usage[1]) + int(usage[2])

        # The artifacts are real: the figures agree with the database, computed here independently.
        with sqlite3.connect(run_dir / "sales.sqlite") as db:
            assert db.execute("SELECT COUNT(*) FROM orders").fetchone() == (12,)
            by_region = dict(db.execute(
                "SELECT r.name, SUM(o.units * o.unit_price) FROM orders o JOIN regions r ON r.id = o.region_id "
                "WHERE o.status = 'paid' AND o.units > 0 GROUP BY r.name"
            ).fetchall())
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["revenue_by_region"] == by_region
        assert summary["revenue_total"] == sum(by_region.values()) == 1488.0
        assert (summary["orders"], summary["dropped_orders"]) == (10, 2)
        chart = (run_dir / "revenue_chart.txt").read_text().splitlines()
        assert [line.split(" |")[0].strip() for line in chart] == sorted(by_region)
        assert max(chart, key=lambda line: line.count("#")).startswith("North")  # the largest bar
        report = (run_dir / "report.md").read_text()
        for section in ("# Sales report", "## Revenue by region", "## Revenue by product", "## Chart"):
            assert f"\n{section}\n" in f"\n{report}"
        for region, revenue in by_region.items():
            assert f"| {region} | {revenue:.2f} |" in report
        assert "| **Total** | **1488.00** |" in report and chart[0] in report
        for path in ("sales.sqlite", "summary.json", "revenue_chart.txt", "report.md"):
            assert f"{run_dir / path} (" in out

        final = json_after(out, "--- final state\n")
        assert final["review"] == {"valid": True, "passed": True, "score": 1.0, "problems": []}
        assert final["report_path"] == str(run_dir / "report.md")
        assert {task: record["agent"] for task, record in final["tasks"].items()} == {
            "data_processing": "data", "report_generation": "report", "quality_review": "review",
        }
        assert final["tasks"]["quality_review"]["tools"] == ["validate_output:ok", "check_quality:ok"]
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
