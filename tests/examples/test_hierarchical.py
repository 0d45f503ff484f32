"""The hierarchical example runs through `sopy-actors run` on the session's cluster."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sopy_actors.cli", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def test_hierarchical_example_runs_sub_sops_and_merges_their_state(runtime: Any) -> None:
    # Join the session's cluster and deployment: its hosts and store are already running.
    cluster = ("--address", "auto", "--namespace", runtime.namespace, "--store-dir", str(Path(runtime.store_path).parent))
    result = run_cli("run", "examples/hierarchical/main.py", *cluster)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "stateDiagram-v2" in out and "Procedure MasterWorkflow:" in out
    assert "master <- data_processing: stayed, now in MasterWorkflow" in out
    assert "master <- report_generation: transitioned, now in ContinueMasterWorkflow" in out
    assert "DataProcessingSOP v1: DataCleaned StartDataProcessing -> StartDataProcessing (rejected)" in out
    # The data child's own SubSOPCompleted may land in between (ignored or stayed), so no version.
    assert re.search(r"MasterWorkflow v\d+: SubSOPCompleted ContinueMasterWorkflow -> End \(ended\)", out)
    assert "[progress] MasterWorkflow" in out
    final = json.loads(out.split("--- final state\n", 1)[1].split("\n[progress]")[0].split("\nfinished in")[0])
    assert final["master_status"] == "done"
    assert final["sub_workflow_results"] == {
        "data_processing": {"total": 12, "rows": 3},
        "report_generation": {"report": "5 rows, total 12"},
    }
    assert final["data_processing_state"]["cleaned"] == [3, 4, 5]
    assert final["report_generation_state"]["report"] == "5 rows, total 12"

    status = run_cli("status", "--phase", "done", *cluster)
    assert status.returncode == 0, status.stderr[-2000:]
    rows = [line.split() for line in status.stdout.splitlines()[2:-1]]
    names = {row[1] for row in rows}
    assert {"MasterWorkflow", "DataProcessingSOP", "ReportGenerationSOP"} <= names

    sop_id = next(row[0] for row in rows if row[1] == "MasterWorkflow")
    followed = run_cli("attach", sop_id, *cluster)
    assert followed.returncode == 0, followed.stderr[-2000:]
    assert "v1: " in followed.stdout and followed.stdout.rstrip().endswith("}")
