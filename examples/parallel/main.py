"""Run the parallel example on a local Ray cluster: `sopy-actors run examples/parallel/main.py`."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from workflow import (
    WORK_SECONDS,
    CheckCompletion,
    ParallelAgentCoordinator,
    ParallelState,
    ParallelTask,
    ParallelTaskStart,
    TaskBatch,
    tool_output,
)

from sopy_actors import SOP
from sopy_actors.core.graph import ProcedureGraph

TASKS = [
    ParallelTask(id="signups", category="data", description="Total the daily sign-ups 120, 95, 143, 88 and 131."),
    ParallelTask(
        id="wording",
        category="analysis",
        description="Analyse the wording of: the quick brown fox jumps over the lazy dog while the dog sleeps.",
    ),
    ParallelTask(
        id="plan",
        category="writing",
        description="Outline this plan: Ray runs the agents. The SOP guards them. Futures report back.",
    ),
]


def run(wait_for: Literal["polling", "events"]) -> dict[str, Any]:
    """Run the three tasks with one coordinator SOP; print what happened; return the aggregate."""
    print(f"=== wait_for={wait_for!r}")
    handle = SOP(state=ParallelState(), init_proc=ParallelAgentCoordinator(wait_for=wait_for)).start()
    started = time.perf_counter()
    receipt = handle.send(ParallelTaskStart(payload=TaskBatch(tasks=TASKS)))
    print(f"coordinator <- ParallelTaskStart: {receipt.outcome.value}, now in {receipt.procedure}")
    if wait_for == "polling":
        checks = 0
        while handle.status().phase != "done":
            time.sleep(0.2)
            checks += 1
            receipt = handle.send(CheckCompletion(payload=checks))
        final: ParallelState = handle.result(timeout=60)
        print(f"coordinator <- CheckCompletion x{checks}: the last one {receipt.outcome.value} the SOP")
    else:
        final = handle.result(timeout=120)  # no polling: the AgentCompleted events end it
    wall = time.perf_counter() - started

    print("--- transitions")
    for entry in handle.history():
        print(f"v{entry.version}: {entry.event_type} {entry.from_procedure} -> {entry.to_procedure} ({entry.outcome})")
    print("--- results")
    timeline = {}
    for task_id, outcome in sorted(final.completed_tasks.items()):
        assert outcome.result is not None, outcome.error
        work = tool_output(outcome.result)
        timeline[task_id] = {"agent": outcome.result.agent, **{k: work[k] for k in ("started", "finished", "pid")}}
        usage = outcome.result.usage
        print(f"{task_id} ({outcome.agent}, agent {outcome.result.agent}): {outcome.result.text}")
        print(
            f"    tokens: {usage.input_tokens} in, {usage.output_tokens} out; "
            f"agent call {outcome.result.latency_seconds:.2f} s"
        )
    first = min(t["started"] for t in timeline.values())
    print("--- timeline (seconds from the first tool start)")
    for task_id, t in timeline.items():
        print(f"{task_id:8} {t['agent']:9} pid {t['pid']:<7} {t['started'] - first:5.2f} -> {t['finished'] - first:5.2f}")
    print(f"timeline ({wait_for}): {json.dumps(timeline)}")
    aggregate = final.aggregate or {}
    print(
        f"work: {len(timeline)} tool runs of {WORK_SECONDS:.1f} s = {aggregate['work_seconds']:.1f} s of work, "
        f"done in {aggregate['span_seconds']:.1f} s from the first start to the last finish "
        f"(all three at once: {aggregate['all_ran_at_once']})"
    )
    print(f"the SOP took {wall:.1f} s from ParallelTaskStart to End (its procedure actors start on first use)")
    print(f"--- aggregate ({wait_for})\n{json.dumps(aggregate, indent=2)}")
    return aggregate


def main() -> dict[str, Any]:
    """Run both forms: polling the futures, then completions delivered as events."""
    coordinator = ParallelAgentCoordinator()
    print(f"--- graph of ParallelAgentCoordinator\n{ProcedureGraph.build(coordinator).to_mermaid()}")
    # An agent's first use starts its actor (a process: about a second here); start all three
    # now, so the timelines below show the agents' work rather than process start-up.
    print("--- agent actors")
    for agent_id, agent in coordinator.agents.items():
        stats = agent.statistics()
        print(f"{agent_id}: {agent!r}, pid {stats.pid}, {stats.calls} calls so far")
    return {"polling": run("polling"), "events": run("events")}


if __name__ == "__main__":
    import sopy_actors

    sopy_actors.init()
    main()
