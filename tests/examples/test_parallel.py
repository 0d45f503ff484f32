"""The parallel example runs through `sopy-actors run` on the session's cluster."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.examples.cli import ROOT, assert_readme_shows_the_graph, run_cli, run_example

EXAMPLE = ROOT / "examples" / "parallel"
TARGET = "examples/parallel/workflow.py:ParallelAgentCoordinator"



def json_after(out: str, marker: str) -> Any:
    """The JSON value printed right after `marker` (more lines may follow it)."""
    text = out.split(marker, 1)[1].lstrip()
    return json.JSONDecoder().raw_decode(text)[0]


def transitions(section: str) -> list[str]:
    block = section.split("--- transitions\n", 1)[1].split("--- results", 1)[0]
    return block.splitlines()


def test_readme_graph_is_the_graph_the_cli_draws_and_the_workflow_checks() -> None:
    assert_readme_shows_the_graph(EXAMPLE, TARGET, "ok: 4 procedures, 7 transitions")


def test_parallel_example_runs_three_agents_at_once_polling_and_event_driven(runtime: Any) -> None:
    result = run_example(runtime, "examples/parallel/main.py")
    out = result.stdout
    assert run_cli("graph", TARGET, "--format", "mermaid").stdout in out
    actor_pids = {int(pid) for pid in re.findall(r"^agent_\d: StrandsAgent\(.*\), pid (\d+),", out, re.MULTILINE)}
    assert len(actor_pids) == 3  # one actor (process) per agent
    polling, events = out.split("=== wait_for='polling'\n", 1)[1].split("=== wait_for='events'\n", 1)

    assert "coordinator <- ParallelTaskStart: transitioned, now in WaitForParallelCompletion\n" in polling
    assert re.search(r"coordinator <- CheckCompletion x\d+: the last one ended the SOP\n", polling)
    steps = transitions(polling)
    assert steps[0] == "v1: ParallelTaskStart ParallelAgentCoordinator -> WaitForParallelCompletion (transitioned)"
    # How many checks find work still running depends on timing; the order does not.
    assert all(s.endswith("CheckCompletion WaitForParallelCompletion -> WaitForParallelCompletion (stayed)") for s in steps[1:-2])
    assert steps[-2].endswith("CheckCompletion WaitForParallelCompletion -> AggregateResults (transitioned)")
    assert steps[-1].endswith("CheckCompletion AggregateResults -> End (ended)")

    assert "coordinator <- ParallelTaskStart: transitioned, now in CollectCompletions\n" in events
    assert transitions(events) == [
        "v1: ParallelTaskStart ParallelAgentCoordinator -> CollectCompletions (transitioned)",
        "v2: AgentCompleted CollectCompletions -> CollectCompletions (stayed)",
        "v3: AgentCompleted CollectCompletions -> CollectCompletions (stayed)",
        "v4: AgentCompleted CollectCompletions -> End (ended)",
    ]

    for form, section in (("polling", polling), ("events", events)):
        timeline = json_after(section, f"timeline ({form}): ")
        agents = {task: t["agent"] for task, t in timeline.items()}
        assert agents == {"signups": "numbers", "wording": "words", "plan": "outliner"}
        assert {t["pid"] for t in timeline.values()} == actor_pids
        # The three tool runs overlapped: each started before any of them finished.
        assert max(t["started"] for t in timeline.values()) < min(t["finished"] for t in timeline.values()), form
        aggregate = json_after(section, f"--- aggregate ({form})\n")
        assert (aggregate["tasks"], aggregate["failed"], aggregate["all_ran_at_once"]) == (3, [], True)
        assert aggregate["agents"] == {"plan": "agent_3", "signups": "agent_1", "wording": "agent_2"}
        answers = {task: json.loads(text) for task, text in aggregate["answers"].items()}  # the tools' real results
        signups = {k: answers["signups"][k] for k in ("count", "total", "min", "max")}
        assert signups == {"count": 5, "total": 577.0, "min": 88.0, "max": 143.0}
        assert (answers["wording"]["words"], answers["wording"]["most_frequent"][0]) == (13, ["the", 3])
        assert answers["plan"]["bullets"] == ["- Ray runs the agents.", "- The SOP guards them.", "- Futures report back."]
        assert re.search(r"^plan \(agent_3, agent outliner\): .*\n    tokens: \d+ in, \d+ out; ", section, re.MULTILINE)
