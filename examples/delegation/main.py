"""Run the delegation example on a local Ray cluster: `sopy-actors run examples/delegation/main.py`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from workflow import (
    CHART,
    DATABASE,
    REPORT,
    SUMMARY,
    CoordinationState,
    Task,
    TaskAssignment,
    TaskCoordinator,
    create_database,
)

from sopy_actors import SOP
from sopy_actors.core.graph import ProcedureGraph


def main() -> dict[str, object]:
    """Delegate the three tasks (and two the SOP refuses), then print what the agents did."""
    run_dir = Path(tempfile.mkdtemp(prefix="sopy-delegation-"))
    database = create_database(run_dir / DATABASE)
    summary, chart, report = run_dir / SUMMARY, run_dir / CHART, run_dir / REPORT
    print(f"run directory: {run_dir}")
    coordinator = TaskCoordinator(str(run_dir))
    agents = (coordinator.data_agent, coordinator.report_agent, coordinator.review_agent)
    print(f"--- graph of TaskCoordinator\n{ProcedureGraph.build(coordinator).to_mermaid()}")
    print("--- agents\n" + "\n".join(repr(agent) for agent in agents))

    handle = SOP(state=CoordinationState(run_dir=str(run_dir)), init_proc=coordinator).start()
    tasks = [
        Task(type="report_generation", data=f"the summary {summary}"),  # refused: no data yet
        Task(type="data_processing", data=f"the orders in the SQLite database {database}; write the summary to {summary}"),
        Task(type="translation", data="the report, into French"),  # refused: no such specialist
        Task(type="report_generation", data=f"the summary {summary}; write the chart to {chart} and the report to {report}"),
        Task(type="quality_review", output=f"the report {report}, made from the database {database}"),
    ]
    print("--- tasks")
    for task in tasks:
        receipt = handle.send(TaskAssignment(payload=task))
        print(f"coordinator <- {task.type}: {receipt.outcome.value}, now in {receipt.procedure}")
        if receipt.rejected:
            print(f"    recovery prompt: {receipt.prompt}")
            continue
        record = handle.state_data()["tasks"][task.type]
        print(f"    {record['agent']} agent: {record['text']}")
        print(f"    tools: {', '.join(record['tools'])}; tokens: {record['input_tokens']} in, {record['output_tokens']} out")
    if handle.status().phase != "done":
        raise RuntimeError(f"the coordinator did not end: the review found {handle.state().review}")
    final: CoordinationState = handle.result(timeout=60)

    print("--- transitions")
    for entry in handle.history():
        print(f"v{entry.version}: {entry.event_type} {entry.from_procedure} -> {entry.to_procedure} ({entry.outcome})")
    print("--- token usage per agent")
    for agent in agents:
        stats = agent.statistics()
        print(
            f"{stats.agent}: {stats.calls} call(s), {stats.tool_calls} tool calls, "
            f"{stats.input_tokens} input + {stats.output_tokens} output = {stats.total_tokens} tokens"
        )
    print("--- artifacts")
    for path in (database, summary, chart, report):
        print(f"{path} ({path.stat().st_size} bytes)")
    print(f"--- {report.name}\n{report.read_text()}")
    print("--- final state")
    result = final.model_dump(mode="json")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    import sopy_actors

    sopy_actors.init()
    main()
