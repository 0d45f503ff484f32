"""The recovery example on the session's cluster: real HTTP services, real breakers, a real pause."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import sopy_actors
from tests.examples.cli import ROOT, assert_readme_shows_the_graph, on_cluster, run_cli, run_example

EXAMPLE = ROOT / "examples" / "recovery"
TARGET = "examples/recovery/workflow.py:default_sop"


def test_readme_graph_is_the_graph_the_cli_draws_and_the_workflow_checks() -> None:
    assert_readme_shows_the_graph(EXAMPLE, TARGET, "ok: 2 procedures, 6 transitions")


def test_the_ladder_retries_opens_the_breaker_falls_back_and_waits_for_a_person(runtime: Any) -> None:
    out = run_example(runtime, "examples/recovery/main.py").stdout
    steps = out.split("--- recovery history\n", 1)[1].split("--- waiting")[0]
    assert re.search(r"Summarising -> Summarising: Recovery \(agent_error, AgentError: .*503 .*\): retry 1 in", steps)
    fell_back = r"Summarising -> SummarisingWithBackup: Recovery \(agent_error, CircuitOpen: circuit=<tool:fetch_summary>"
    assert re.search(fell_back, steps)
    assert "wait for a person: Both summary services are down" in steps
    # Both circuits opened (a slow run may print one after its 5 s cool-down: half-open then).
    for tool in ("fetch_summary", "fetch_backup_summary"):
        assert re.search(rf"tool:{tool}: (open|half_open)", out), tool
    assert "manual #1 (AgentError): resolved by example: services down, written by hand" in out
    final = json.loads(out.split("--- final state\n", 1)[1].split("\nfinished in")[0])
    summaries = list(final["summaries"].values())
    assert summaries[0].startswith("primary: ") and summaries[-1] == "by hand: written by hand"
    assert all(summary.startswith("backup: ") for summary in summaries[1:-1])


def test_left_waiting_it_is_finished_with_the_cli_command_it_prints(runtime: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_EXAMPLE_LEAVE_WAITING", "1")
    out = run_example(runtime, "examples/recovery/main.py").stdout
    sop_id = re.search(r"^digest (\w+):", out, re.M).group(1)  # type: ignore[union-attr]
    action = re.search(r"--action '(.*)' --note", out).group(1)  # type: ignore[union-attr]
    listed = run_cli("status", "--waiting", *on_cluster(runtime))
    assert sop_id in listed.stdout and "reason: Both summary services are down" in listed.stdout
    resolved = run_cli("resolve", sop_id, "--action", action, "--note", "written by hand", "--by", "tester", *on_cluster(runtime))
    assert resolved.returncode == 0, resolved.stderr
    handle = sopy_actors.attach(sop_id)
    # Circuits are cluster-wide: after the run above, which documents fail first differs; the
    # one that failed is the one the printed command answers.
    status = handle.status()
    assert status.phase in ("waiting", "done") and status.recovery[-1]["by"] == "tester"
    assert handle.state_data()["summaries"][json.loads(action)["data"]["payload"]["text"]] == "by hand: written by hand"
