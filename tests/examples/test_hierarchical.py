"""The hierarchical example runs through `sopy-actors run` on the session's cluster."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.examples.cli import ROOT, assert_readme_shows_the_graph, on_cluster, run_cli, run_example


def test_readme_graph_is_the_graph_the_cli_draws_and_the_workflow_checks() -> None:
    assert_readme_shows_the_graph(
        ROOT / "examples" / "hierarchical", "examples/hierarchical/workflow.py:MasterWorkflow", "ok: 2 procedures, 4 transitions"
    )


def test_hierarchical_example_runs_sub_sops_and_merges_their_state(runtime: Any) -> None:
    # Join the session's cluster and deployment: its hosts and store are already running.
    result = run_example(runtime, "examples/hierarchical/main.py")
    out = result.stdout
    assert "stateDiagram-v2" in out and "Procedure MasterWorkflow:" in out
    assert "master <- data_processing: stayed, now in MasterWorkflow" in out
    assert "master <- report_generation: transitioned, now in ContinueMasterWorkflow" in out
    assert "DataProcessingSOP v1: DataCleaned StartDataProcessing -> StartDataProcessing (rejected)" in out
    # The data child's own SubSOPCompleted may land in between (ignored or stayed), so no version.
    assert re.search(r"MasterWorkflow v\d+: SubSOPCompleted ContinueMasterWorkflow -> End \(ended\)", out)
    assert "[progress] MasterWorkflow" in result.stderr and "[progress]" not in out  # progress goes to stderr
    final = json.loads(out.split("--- final state\n", 1)[1].split("\nfinished in")[0])
    assert final["master_status"] == "done"
    assert final["sub_workflow_results"] == {
        "data_processing": {"total": 12, "rows": 3},
        "report_generation": {"report": "5 rows, total 12"},
    }
    assert final["data_processing_state"]["cleaned"] == [3, 4, 5]
    assert final["report_generation_state"]["report"] == "5 rows, total 12"

    status = run_cli("status", "--phase", "done", *on_cluster(runtime))
    assert status.returncode == 0, status.stderr[-2000:]
    rows = [line.split() for line in status.stdout.splitlines()[2:-1]]
    names = {row[1] for row in rows}
    assert {"MasterWorkflow", "DataProcessingSOP", "ReportGenerationSOP"} <= names

    sop_id = next(row[0] for row in rows if row[1] == "MasterWorkflow")
    followed = run_cli("attach", sop_id, *on_cluster(runtime))
    assert followed.returncode == 0, followed.stderr[-2000:]
    assert "v1: " in followed.stdout and followed.stdout.rstrip().endswith("}")


def test_a_second_run_shows_the_progress_of_its_own_sops_only(runtime: Any) -> None:
    def progressed(out: str) -> set[str]:
        return {line.split()[2].rstrip(":") for line in out.splitlines() if line.startswith("[progress]")}

    first = progressed(run_example(runtime, "examples/hierarchical/main.py").stderr)
    second = progressed(run_example(runtime, "examples/hierarchical/main.py").stderr)
    assert len(first) == len(second) == 3  # the master and its two children
    assert not first & second
