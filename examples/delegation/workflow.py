"""The spec's TaskCoordinator: one SOP delegating tasks to data, report and review agents.

Each specialist is a `StrandsAgent` (a strands Agent in its own Ray actor) whose tools do real
work on a run directory: the data agent queries a SQLite database and writes a summary, the
report agent draws a text chart and writes a Markdown report, the review agent reads the report
back, checks its figures against the database and grades it. The coordinator's handler calls
the agents blocking, as SOPy code does; the SOP then moves to the procedure that names the
finished task (`DataProcessingComplete`, ...). A report before processed data, a review before a
report and an unknown task type are refused with a recovery prompt.

Tools live at the top level of this module: agent actors import them by name (`sopy-actors
run` ships this directory to the cluster). Offline, each agent plays a script of tool calls
over the run directory; with `SOPY_MODEL` set, the same agents use that model instead.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sopy_actors import End, Event, Procedure, cond, handler, make_prompt, tool
from sopy_actors.agents import AgentResult, ScriptedModel, StrandsAgent

# The files of one run, inside its run directory.
DATABASE = "sales.sqlite"
SUMMARY = "summary.json"
CHART = "revenue_chart.txt"
REPORT = "report.md"

REPORT_SECTIONS = ("# Sales report", "## Revenue by region", "## Revenue by product", "## Chart")


# -- the run's database -----------------------------------------------------------------------

REGIONS = [(1, "North"), (2, "South"), (3, "East"), (4, "West")]
PRODUCTS = [(1, "Widget", "hardware"), (2, "Gadget", "hardware"), (3, "Support plan", "service")]
# (day, region id, product id, units, unit price, status); refunded and test orders do not count.
ORDERS = [
    ("2024-03-01", 1, 1, 12, 9.5, "paid"),
    ("2024-03-01", 2, 2, 3, 24.0, "paid"),
    ("2024-03-02", 3, 1, 7, 9.5, "paid"),
    ("2024-03-02", 4, 3, 2, 120.0, "paid"),
    ("2024-03-03", 1, 2, 5, 24.0, "refunded"),
    ("2024-03-03", 2, 1, 20, 9.5, "paid"),
    ("2024-03-04", 3, 3, 1, 120.0, "paid"),
    ("2024-03-04", 4, 2, 4, 24.0, "paid"),
    ("2024-03-05", 1, 3, 3, 120.0, "paid"),
    ("2024-03-05", 2, 2, -2, 24.0, "test"),
    ("2024-03-06", 3, 2, 6, 24.0, "paid"),
    ("2024-03-06", 4, 1, 9, 9.5, "paid"),
]


def create_database(path: Path) -> Path:
    """Create the run's SQLite database: regions, products and orders (a few sample rows)."""
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE regions (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
            CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL);
            CREATE TABLE orders (
                id INTEGER PRIMARY KEY, day TEXT NOT NULL,
                region_id INTEGER REFERENCES regions(id), product_id INTEGER REFERENCES products(id),
                units INTEGER NOT NULL, unit_price REAL NOT NULL, status TEXT NOT NULL
            );
            """
        )
        db.executemany("INSERT INTO regions VALUES (?, ?)", REGIONS)
        db.executemany("INSERT INTO products VALUES (?, ?, ?)", PRODUCTS)
        db.executemany(
            "INSERT INTO orders (day, region_id, product_id, units, unit_price, status) VALUES (?, ?, ?, ?, ?, ?)",
            ORDERS,
        )
    return path


def _revenue_by(db: sqlite3.Connection, table: str, key: str) -> dict[str, float]:
    rows = db.execute(
        f"SELECT t.name, ROUND(SUM(o.units * o.unit_price), 2) FROM orders o JOIN {table} t ON t.id = o.{key} "
        "WHERE o.status = 'paid' AND o.units > 0 GROUP BY t.name ORDER BY t.name"
    )
    return {name: revenue for name, revenue in rows}


# -- the data agent's tools -------------------------------------------------------------------


@tool
def query_database(database: str, sql: str) -> list[dict[str, Any]]:
    """Run a read-only SQL query on a SQLite database and return its rows.

    Args:
        database: path of the SQLite file.
        sql: one SELECT statement.
    """
    if not sql.lstrip().lower().startswith("select"):
        raise ValueError("query_database only runs SELECT statements")
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        cursor = db.execute(sql)
        columns = [column[0] for column in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


@tool
def process_data(database: str, output: str) -> dict[str, Any]:
    """Clean the orders (paid, positive units only), total the revenue and write a JSON summary.

    Args:
        database: path of the SQLite file with regions, products and orders.
        output: path of the JSON summary to write.
    """
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        (orders, dropped) = db.execute(
            "SELECT SUM(status = 'paid' AND units > 0), SUM(NOT (status = 'paid' AND units > 0)) FROM orders"
        ).fetchone()
        by_region = _revenue_by(db, "regions", "region_id")
        by_product = _revenue_by(db, "products", "product_id")
    summary = {
        "database": database,
        "orders": orders,
        "dropped_orders": dropped,
        "revenue_total": round(sum(by_region.values()), 2),
        "revenue_by_region": by_region,
        "revenue_by_product": by_product,
    }
    Path(output).write_text(json.dumps(summary, indent=2) + "\n")
    return {"summary": output, **summary}


# -- the report agent's tools -----------------------------------------------------------------


@tool
def generate_chart(summary: str, output: str) -> dict[str, Any]:
    """Draw the revenue per region of a JSON summary as a text bar chart and write it to a file.

    Args:
        summary: path of the JSON summary (from process_data).
        output: path of the chart file to write.
    """
    revenue: dict[str, float] = json.loads(Path(summary).read_text())["revenue_by_region"]
    top = max(revenue.values())
    width = max(len(name) for name in revenue)
    lines = [f"{name:<{width}} | {'#' * round(40 * value / top):<40} {value:>8.2f}" for name, value in revenue.items()]
    Path(output).write_text("\n".join(lines) + "\n")
    return {"chart": output, "bars": len(lines)}


@tool
def create_document(summary: str, chart: str, output: str) -> dict[str, Any]:
    """Write the Markdown sales report from the JSON summary and the chart file.

    Args:
        summary: path of the JSON summary (from process_data).
        chart: path of the text chart (from generate_chart).
        output: path of the Markdown report to write.
    """
    data = json.loads(Path(summary).read_text())

    def table(revenue: dict[str, float], label: str) -> list[str]:
        rows = [f"| {name} | {value:.2f} |" for name, value in revenue.items()]
        return [f"| {label} | Revenue |", "|---|---:|", *rows, f"| **Total** | **{sum(revenue.values()):.2f}** |"]

    lines = [
        "# Sales report",
        "",
        f"{data['orders']} paid orders, {data['revenue_total']:.2f} in revenue"
        + f" ({data['dropped_orders']} refunded or test orders left out).",
        "",
        f"Source: `{data['database']}`",
        "",
        "## Revenue by region",
        "",
        *table(data["revenue_by_region"], "Region"),
        "",
        "## Revenue by product",
        "",
        *table(data["revenue_by_product"], "Product"),
        "",
        "## Chart",
        "",
        "```",
        Path(chart).read_text().rstrip("\n"),
        "```",
        "",
    ]
    Path(output).write_text("\n".join(lines))
    return {"report": output, "bytes": Path(output).stat().st_size, "sections": sum(line.startswith("#") for line in lines)}


# -- the review agent's tools -----------------------------------------------------------------


@tool
def validate_output(report: str, database: str) -> dict[str, Any]:
    """Check a report against its database: required sections present, every figure correct.

    Args:
        report: path of the Markdown report.
        database: path of the SQLite database the report was made from.
    """
    text = Path(report).read_text()
    problems = [f"missing section {section!r}" for section in REPORT_SECTIONS if section not in text.splitlines()]
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        expected = {**_revenue_by(db, "regions", "region_id"), **_revenue_by(db, "products", "product_id")}
    reported = {name: float(value) for name, value in re.findall(r"^\| ([^|*]+?) \| ([\d.]+) \|$", text, re.MULTILINE)}
    for name, value in expected.items():
        if name not in reported:
            problems.append(f"{name} is missing from the tables")
        elif abs(reported[name] - value) > 0.005:
            problems.append(f"{name}: the report says {reported[name]:.2f}, the database {value:.2f}")
    return {"report": report, "valid": not problems, "figures_checked": len(expected), "problems": problems}


@tool
def check_quality(report: str) -> dict[str, Any]:
    """Grade a Markdown report's form: length, line width, no placeholders, a chart present.

    Args:
        report: path of the Markdown report.
    """
    text = Path(report).read_text()
    words = len(text.split())
    checks = {
        "has at least 40 words": words >= 40,
        "lines are at most 100 characters": all(len(line) <= 100 for line in text.splitlines()),
        "no placeholders (TODO, TBD, XXX)": not re.search(r"\b(TODO|TBD|XXX)\b", text),
        "has a chart": "```" in text and "#" in text.split("## Chart", 1)[-1],
    }
    score = sum(checks.values()) / len(checks)
    failed = [name for name, ok in checks.items() if not ok]
    return {"report": report, "passed": not failed, "score": score, "words": words, "failed_checks": failed}


# -- the specialists --------------------------------------------------------------------------


def _model(steps: list[Any]) -> ScriptedModel | None:
    """The offline script, or None (the model `SOPY_MODEL` names) when SOPY_MODEL is set."""
    return None if os.environ.get("SOPY_MODEL") else ScriptedModel(steps)


def data_agent(run_dir: str) -> StrandsAgent:
    """The data specialist; offline it queries the orders, then processes them."""
    database, summary = f"{run_dir}/{DATABASE}", f"{run_dir}/{SUMMARY}"
    script = [
        {"tool": "query_database", "input": {"database": database, "sql": (
            "SELECT status, COUNT(*) AS orders, SUM(units) AS units FROM orders GROUP BY status ORDER BY status"
        )}},
        {"tool": "process_data", "input": {"database": database, "output": summary}},
        "Processed the orders: {result}",
    ]
    return StrandsAgent(
        tools=[query_database, process_data],
        system_prompt="You are a data processing specialist. Inspect the data with query_database, "
        "then process it with process_data, and answer with the summary.",
        model=_model(script),
        name="data",
    )


def report_agent(run_dir: str) -> StrandsAgent:
    """The report specialist; offline it draws the chart, then writes the report."""
    summary, chart, report = f"{run_dir}/{SUMMARY}", f"{run_dir}/{CHART}", f"{run_dir}/{REPORT}"
    script = [
        {"tool": "generate_chart", "input": {"summary": summary, "output": chart}},
        {"tool": "create_document", "input": {"summary": summary, "chart": chart, "output": report}},
        "Wrote the report: {result}",
    ]
    return StrandsAgent(
        tools=[generate_chart, create_document],
        system_prompt="You are a report generation specialist. Draw the chart with generate_chart, "
        "then write the report with create_document.",
        model=_model(script),
        name="report",
    )


def review_agent(run_dir: str) -> StrandsAgent:
    """The review specialist; offline it validates the report, then grades it."""
    database, report = f"{run_dir}/{DATABASE}", f"{run_dir}/{REPORT}"
    script = [
        {"tool": "validate_output", "input": {"report": report, "database": database}},
        {"tool": "check_quality", "input": {"report": report}},
        "Review done: {result}",
    ]
    return StrandsAgent(
        tools=[validate_output, check_quality],
        system_prompt="You are a quality assurance specialist. Check the report with validate_output "
        "and check_quality, and say whether it can be delivered.",
        model=_model(script),
        name="review",
    )


# -- state and events -------------------------------------------------------------------------


class TaskRecord(BaseModel):
    """What one delegated task gave: the agent's answer, its usage and its tool calls."""

    agent: str
    text: str
    input_tokens: int
    output_tokens: int
    tools: list[str]


class CoordinationState(BaseModel):
    """The coordinator's state: what each specialist produced, and where."""

    run_dir: str = ""
    summary: dict[str, Any] | None = None
    chart_path: str | None = None
    report_path: str | None = None
    review: dict[str, Any] | None = None
    tasks: dict[str, TaskRecord] = Field(default_factory=dict)

    def record(self, task_type: str, result: AgentResult) -> None:
        """Keep a task's outcome."""
        self.tasks[task_type] = TaskRecord(
            agent=result.agent,
            text=result.text,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            tools=[f"{call.name}:{call.status}" for call in result.tool_calls],
        )


class Task(BaseModel):
    """A task for a specialist: `type` picks the specialist, `data` / `output` say what on."""

    type: str
    data: str = ""
    output: str = ""


class TaskAssignment(Event[Task]):
    """A task is assigned to the coordinator."""


def tool_output(result: AgentResult, name: str) -> dict[str, Any] | None:
    """The JSON result of the agent's last successful call of tool `name`, if it made one."""
    for call in reversed(result.tool_calls):
        if call.name == name and call.status == "ok":
            value = json.loads(call.message)
            return value if isinstance(value, dict) else {"value": value}
    return None


# -- procedures -------------------------------------------------------------------------------


class TaskCoordinator(Procedure[CoordinationState]):
    """Delegates each task to its specialist agent (blocking, inside the handler).

    Args:
        run_dir: the directory the agents' tools work in (its database, summary, chart and
            report); the offline scripts name these files.
    """

    prompt = make_prompt(
        "Assign the tasks in order: data_processing, then report_generation, then quality_review."
    )

    def __init__(self, run_dir: str = "out") -> None:
        super().__init__()
        # Specialized agents for different tasks
        self.data_agent = data_agent(run_dir)
        self.report_agent = report_agent(run_dir)
        self.review_agent = review_agent(run_dir)

    @handler
    def handle_task_assignment(
        self, state: CoordinationState, event: TaskAssignment
    ) -> Procedure[CoordinationState] | str:
        task = event.payload

        if cond(task.type == "data_processing", "a data_processing task"):
            # Delegate to data specialist
            result = self.data_agent(f"Process this data: {task.data}")
            summary = tool_output(result, "process_data")
            if summary is None:
                return f"The data agent did not run process_data ({result.text!r}); assign the task again."
            state.summary = summary
            state.record(task.type, result)
            return DataProcessingComplete(self, result)
        if cond(task.type == "report_generation", "a report_generation task"):
            if state.summary is None:
                return "Process the data first: assign a data_processing task."
            # Delegate to report specialist
            result = self.report_agent(f"Generate report from: {task.data}")
            written = tool_output(result, "create_document")
            if written is None:
                return f"The report agent did not run create_document ({result.text!r}); assign the task again."
            state.chart_path = (tool_output(result, "generate_chart") or {}).get("chart")
            state.report_path = written["report"]
            state.record(task.type, result)
            return ReportGenerationComplete(self, result)
        if cond(task.type == "quality_review", "a quality_review task"):
            if state.report_path is None:
                return "Generate the report first: assign a report_generation task."
            # Delegate to review specialist
            result = self.review_agent(f"Review this output: {task.output}")
            validation, quality = tool_output(result, "validate_output"), tool_output(result, "check_quality")
            if validation is None or quality is None:
                return "The review agent must run validate_output and check_quality; assign the task again."
            state.review = {"valid": validation["valid"], "passed": quality["passed"], "score": quality["score"],
                            "problems": validation["problems"] + quality["failed_checks"]}
            state.record(task.type, result)
            if cond(state.review["problems"], "the report fails the review"):
                return self  # stay: a new report_generation task must fix it
            return QualityReviewComplete(result=result)
        return f"Unknown task type: {task.type}"


class TaskCompleted(TaskCoordinator):
    """The coordinator after a task: the same specialists, plus the finished task's result."""

    def __init__(self, coordinator: TaskCoordinator, result: AgentResult) -> None:
        Procedure.__init__(self)
        # Hand the agents on instead of building them again: the handler runs in a worker,
        # which may not see the driver's SOPY_MODEL, and another spec is another agent actor.
        self.data_agent = coordinator.data_agent
        self.report_agent = coordinator.report_agent
        self.review_agent = coordinator.review_agent
        self.result = result


class DataProcessingComplete(TaskCompleted):
    prompt = make_prompt("The data is processed: assign the report_generation task.")


class ReportGenerationComplete(TaskCompleted):
    prompt = make_prompt("The report is written: assign the quality_review task.")


class QualityReviewComplete(End):
    """The end: the report passed the review."""

    prompt = make_prompt("The report passed the review: deliver it.")

    def __init__(self, *, result: AgentResult) -> None:
        super().__init__()
        self.result = result
