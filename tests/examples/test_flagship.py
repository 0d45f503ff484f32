"""The flagship runs through `sopy-actors run` on the session's cluster and does what its README says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.examples.cli import ROOT, run_example

AGENTS = ["analyst", "completeness-checker", "consistency-checker", "freshness-checker", "writer", "publisher"]


def test_flagship_delegates_runs_agents_in_parallel_guards_tools_and_publishes_through_a_sub_sop(runtime: Any) -> None:
    result = run_example(runtime, "examples/flagship/main.py")
    out = result.stdout
    summary = json.loads(out.split("--- summary ", 1)[1].splitlines()[0])
    workdir = Path(summary["workdir"])

    assert summary["checks"] == ["completeness", "consistency", "freshness"]
    assert summary["refused"] == ["ReportDraftRequested", "ReportDraftRequested", "PublishRequested"]
    assert sorted(summary["tokens"]) == sorted(AGENTS) and all(n > 0 for n in summary["tokens"].values())
    # Refused calls never ran: no report outside reports/, nothing published before staging.
    assert not (workdir / "report.md").exists()
    report = (workdir / "reports" / "2026-10.md").read_text()
    assert (workdir / "published" / "2026-10.md").read_text() == report
    assert (workdir / "staging" / "2026-10.md").read_text() == report
    # The checkers found the data's real problems, and the report states them.
    assert '"regions_without_orders": ["west"]' in report and '"amount": -42.0' in report
    assert '"latest_day": "2026-10-28"' in report
    assert "The report must state the result of every check; it leaves out: freshness." in out
    assert "Nothing is staged yet: stage " in out
    assert re.search(r"ReportSOP v\d+: SubSOPCompleted Publishing -> End \(ended\)", out)
    assert "PublicationSOP v5: ReportPublished Releasing -> End (ended)" in out
    assert re.search(r"writer: 1 call\(s\), 3 tool call\(s\), 2 refused", out)


def test_flagship_readme_graphs_are_what_the_cli_draws() -> None:
    readme = (ROOT / "examples" / "flagship" / "README.md").read_text()
    drawn = re.findall(r"```mermaid\n(.*?)```", readme, re.DOTALL)
    for entry, expected in zip(("master_entry", "Staging"), drawn, strict=True):
        target = f"examples/flagship/workflow.py:{entry}"
        command = [sys.executable, "-m", "sopy_actors.cli", "graph", target, "--format", "mermaid"]
        assert subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout == expected
