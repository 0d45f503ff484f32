"""The flagship on a local Ray cluster: `sopy-actors run examples/flagship/main.py`.

A monthly sales report made by five agents under a master SOP and a publication sub-SOP (see
workflow.py). Offline, every agent plays a script (`ScriptedModel`) that includes calls the
SOPs must refuse; with SOPY_MODEL set (for example `openai:gpt-4o-mini`) the same workflow runs
on that model. Prints the graphs, then what happened: transitions, refused calls, tokens, and
the report it wrote.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from tools import (
    REGIONS,
    count_by_region,
    latest_day,
    negative_amounts,
    publish_report,
    query_sales,
    stage_report,
    write_report,
)
from workflow import CHECKS, ReportRequested, Staging, Team, master_entry, report_sop

from sopy_actors import ScriptedModel, StrandsAgent, attach
from sopy_actors.core.graph import ProcedureGraph

MONTH = "2026-10"


def make_database(path: Path) -> None:
    """A month of orders; one region is missing and one order has a negative amount."""
    rng = random.Random(7)
    rows = [
        (region, rng.choice(["widget", "gadget", "gizmo"]), round(rng.uniform(5, 500), 2), f"{MONTH}-{day:02d}")
        for day in range(1, 29)
        for region in REGIONS[:3]
    ]
    rows.append(("south", "gadget", -42.0, f"{MONTH}-15"))
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE sales (region TEXT, product TEXT, amount REAL, day TEXT)")
        connection.executemany("INSERT INTO sales VALUES (?, ?, ?, ?)", rows)


def model(steps: list[Any]) -> ScriptedModel | None:
    """The scripted model offline; None (= $SOPY_MODEL) when a real model is configured."""
    return None if os.environ.get("SOPY_MODEL") else ScriptedModel(steps)


def make_team(workdir: Path) -> Team:
    """Five specialists; each script plays what a careful model would do, mistakes included."""
    db = str(workdir / "sales.sqlite3")
    report = str(workdir / "reports" / f"{MONTH}.md")
    staged = str(workdir / "staging" / f"{MONTH}.md")
    by_region = "SELECT region, ROUND(SUM(amount), 2) AS total, COUNT(*) AS orders FROM sales GROUP BY region ORDER BY total DESC"
    check_tools = {"completeness": count_by_region, "consistency": negative_amounts, "freshness": latest_day}
    full_report = "# Sales report\n\n{prompt}\n"  # the scripted writer copies what it was given
    return Team(
        analyst=StrandsAgent(
            tools=[query_sales], name="analyst", system_prompt="You analyse sales data with SQL.",
            model=model([{"tool": "query_sales", "input": {"db": db, "sql": by_region}}, "Totals by region: {result}"]),
        ),
        checkers={
            check: StrandsAgent(
                tools=[check_tools[check]], name=f"{check}-checker", system_prompt=f"You check the {check} of sales data.",
                model=model([{"tool": check_tools[check].tool_name, "input": {"db": db}}, f"{check}: {{result}}"]),
            )
            for check in CHECKS
        },
        writer=StrandsAgent(
            tools=[write_report], name="writer", system_prompt="You write concise markdown reports.",
            model=model([
                {"tool": "write_report", "input": {"path": str(workdir / "report.md"), "markdown": full_report}},
                {
                    "tool": "write_report",
                    "input": {"path": report, "markdown": "# Sales report\n\ncompleteness and consistency are fine.\n"},
                },
                {"tool": "write_report", "input": {"path": report, "markdown": full_report}},
                "Report written to {result}.",
            ]),
        ),
        publisher=StrandsAgent(
            tools=[stage_report, publish_report], name="publisher", system_prompt="You publish reports.",
            model=model([
                {"tool": "publish_report", "input": {"path": report}},
                {"tool": "stage_report", "input": {"path": report}},
                {"tool": "publish_report", "input": {"path": staged}},
                "Published {result}.",
            ]),
        ),
    )


def show_sop(sop_id: str) -> list[dict[str, Any]]:
    """Print an SOP's committed transitions; return its refused events."""
    handle = attach(sop_id)
    status = handle.status()
    refused = []
    for entry in handle.history():
        print(
            f"{status.name} v{entry.version}: {entry.event_type} "
            f"{entry.from_procedure} -> {entry.to_procedure} ({entry.outcome})"
        )
        if entry.outcome == "rejected":
            refused.append({"sop": status.name, "event": entry.event_type, "prompt": entry.prompt})
    return refused


def main() -> dict[str, Any]:
    """Build the data, run the report SOP, print what happened."""
    for entry in (master_entry(), Staging()):
        print(f"--- graph of {type(entry).__name__}\n{ProcedureGraph.build(entry).to_mermaid()}")
    workdir = Path(tempfile.mkdtemp(prefix="sopy-flagship-"))
    make_database(workdir / "sales.sqlite3")
    print(f"--- working in {workdir}")
    team = make_team(workdir)
    handle = report_sop(team, str(workdir)).start()
    handle.send(ReportRequested(payload=MONTH))
    final = handle.result(timeout=600)

    print("--- transitions")
    refused = show_sop(handle.sop_id)
    for child in handle.status().children:
        refused += show_sop(child)
    print("--- refused by the SOPs (the tool never ran; the agent got the prompt)")
    for item in refused:
        print(f"{item['sop']} refused {item['event']}: {item['prompt']}")
    print("--- agents")
    agents = [team.analyst, *team.checkers.values(), team.writer, team.publisher]
    tokens = {}
    for agent in agents:
        stats = agent.statistics()
        tokens[agent.name] = stats.input_tokens + stats.output_tokens
        print(
            f"{agent.name:>20}: {stats.calls} call(s), {stats.tool_calls} tool call(s), "
            f"{stats.rejected_tool_calls} refused, {stats.input_tokens} tokens in, {stats.output_tokens} out"
        )
    report = Path(final.report_path or "")
    print(f"--- report {report}\n{report.read_text()}")
    print(f"--- published {final.published_path}")
    summary = {
        "workdir": str(workdir),
        "checks": sorted(final.checks),
        "report": str(report),
        "published": final.published_path,
        "refused": [item["event"] for item in refused],
        "tokens": tokens,
    }
    print(f"--- summary {json.dumps(summary)}")
    return summary


if __name__ == "__main__":
    import sopy_actors

    sopy_actors.init()
    main()
