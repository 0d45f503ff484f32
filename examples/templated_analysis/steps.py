"""The registry `analysis.yaml` names: step types, events, agents, the state and the driver.

Each step type is a procedure whose handler hands the step's work order to the step's agent
(the template gives each step an `agent:`; the step's class gets it as its `agent` attribute)
and checks what the agent's tool wrote before the SOP may move on: an empty collection, a
processing step that kept nothing, or a tool that failed is refused with a recovery prompt.
Where the SOP goes next is the template's business (`handlers:`), not these classes'.

The tools do real work on the readings CSV in `data/` and write JSON and Markdown files into
the run directory. Offline, each agent plays a script that passes the work order (the text
after `WORK ORDER:` in its prompt) to its tool; with `SOPY_MODEL` set, the same agents use that
model instead. Tools live at the top level of this module: agent actors import them by name.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from sopy_actors import Event, Procedure, ProcedureOptions, cond, handler, make_prompt, tool
from sopy_actors.agents import ScriptedModel, StrandsAgent
from sopy_actors.workflows import Workflow, WorkflowRegistry

ORDER = "WORK ORDER:"
SENTINEL = -100.0  # sensors write -999.0 when they fail: any reading below this is not a reading


class AnalysisState(BaseModel):
    """What the run has produced so far: each step's summary, and which agent did what."""

    source: str
    data_type: str
    algorithm: str
    run_dir: str
    collected: dict[str, Any] = Field(default_factory=dict)
    processed: dict[str, Any] = Field(default_factory=dict)
    analysis: dict[str, Any] = Field(default_factory=dict)
    review: dict[str, Any] = Field(default_factory=dict)
    report: str = ""
    work: list[str] = Field(default_factory=list)


# -- events: the driver asks each step to do its work -----------------------------------------


class CollectionRequested(Event[None]):
    """Collect the readings."""


class ProcessingRequested(Event[None]):
    """Clean the collected readings."""


class AnalysisRequested(Event[None]):
    """Find the outliers."""


class ReviewRequested(Event[None]):
    """Review the outliers."""


class ReportRequested(Event[None]):
    """Write the report."""


# -- the tools --------------------------------------------------------------------------------


def _order(text: str) -> dict[str, Any]:
    """The JSON work order at the end of an agent prompt (or the whole text)."""
    order: dict[str, Any] = json.loads(text.rpartition(ORDER)[2] if ORDER in text else text)
    return order


def _write(path: str, data: Any) -> None:
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


@tool
def prepare_readings(order: str) -> dict[str, Any]:
    """Collect the readings of one column from a CSV file, or clean collected readings.

    Args:
        order: a JSON work order: {"task": "collect", "source": CSV path, "column": name,
            "output": JSON path} or {"task": "clean", "input": JSON path, "output": JSON path}.
    """
    work = _order(order)
    if work["task"] == "collect":
        with open(work["source"], newline="") as file:
            rows = list(csv.DictReader(file))
        if rows and work["column"] not in rows[0]:
            raise ValueError(f"{work['source']} has no column {work['column']!r} (columns: {', '.join(rows[0])})")
        readings = [{"station": row["station"], "time": row["time"], "raw": row[work["column"]]} for row in rows]
        _write(work["output"], {"column": work["column"], "readings": readings})
        return {"output": work["output"], "rows": len(readings), "stations": len({r["station"] for r in readings})}
    collected = json.loads(Path(work["input"]).read_text())
    kept, dropped = [], []
    for reading in collected["readings"]:
        try:
            value = float(reading["raw"])
        except ValueError:
            dropped.append({**reading, "why": "not a number"})
            continue
        if value < SENTINEL:
            dropped.append({**reading, "why": "sensor failure value"})
            continue
        kept.append({"station": reading["station"], "time": reading["time"], "value": value})
    _write(work["output"], {"column": collected["column"], "readings": kept, "dropped": dropped})
    return {"output": work["output"], "kept": len(kept), "dropped": len(dropped)}


def _outliers(values: list[float], algorithm: str) -> tuple[float, float]:
    """The (low, high) bounds outside which a value is an outlier."""
    if algorithm == "zscore":
        mean, stdev = statistics.fmean(values), statistics.pstdev(values)
        return mean - 2.5 * stdev, mean + 2.5 * stdev
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)


@tool
def examine_readings(order: str) -> dict[str, Any]:
    """Find outliers in cleaned readings (iqr or zscore), or review the outliers found.

    Args:
        order: a JSON work order: {"task": "outliers", "input": JSON path, "algorithm": "iqr"
            or "zscore", "output": JSON path} or {"task": "review", "input": the outliers JSON,
            "readings": the cleaned JSON, "output": JSON path}.
    """
    work = _order(order)
    if work["task"] == "outliers":
        readings = json.loads(Path(work["input"]).read_text())["readings"]
        values = [reading["value"] for reading in readings]
        low, high = _outliers(values, work["algorithm"])
        found = [reading for reading in readings if not low <= reading["value"] <= high]
        by_station = {
            station: round(statistics.fmean(r["value"] for r in readings if r["station"] == station), 2)
            for station in sorted({r["station"] for r in readings})
        }
        summary = {
            "algorithm": work["algorithm"],
            "count": len(values),
            "mean": round(statistics.fmean(values), 2),
            "min": min(values),
            "max": max(values),
            "bounds": [round(low, 2), round(high, 2)],
            "outliers": found,
            "mean_by_station": by_station,
        }
        _write(work["output"], summary)
        return {"output": work["output"], "outliers": len(found), "mean": summary["mean"]}
    outliers = json.loads(Path(work["input"]).read_text())["outliers"]
    readings = json.loads(Path(work["readings"]).read_text())["readings"]
    confirmed, dismissed = [], []
    for outlier in outliers:
        # A spike is confirmed when the station's own other readings are far from it.
        others = [r["value"] for r in readings if r["station"] == outlier["station"] and r["time"] != outlier["time"]]
        usual = statistics.fmean(others) if others else outlier["value"]
        entry = {**outlier, "station_mean": round(usual, 2)}
        (confirmed if abs(outlier["value"] - usual) > 10 else dismissed).append(entry)
    _write(work["output"], {"confirmed": confirmed, "dismissed": dismissed})
    return {"output": work["output"], "confirmed": len(confirmed), "dismissed": len(dismissed)}


@tool
def write_report(order: str) -> dict[str, Any]:
    """Write the Markdown report of a run from its JSON files.

    Args:
        order: a JSON work order: {"title": str, "processed": JSON path, "analysis": JSON path,
            "review": JSON path or null, "output": Markdown path}.
    """
    work = _order(order)
    processed = json.loads(Path(work["processed"]).read_text())
    analysis = json.loads(Path(work["analysis"]).read_text())
    review = json.loads(Path(work["review"]).read_text()) if work.get("review") else None
    lines = [
        f"# {work['title']}",
        "",
        f"{analysis['count']} readings of {processed['column']} kept, {len(processed['dropped'])} dropped "
        f"({', '.join(sorted({d['why'] for d in processed['dropped']})) or 'none'}).",
        f"Mean {analysis['mean']}, min {analysis['min']}, max {analysis['max']}; outliers by {analysis['algorithm']} "
        f"outside {analysis['bounds'][0]} .. {analysis['bounds'][1]}: {len(analysis['outliers'])}.",
        "",
        "## Mean by station",
        "",
        "| Station | Mean |",
        "|---|---:|",
        *(f"| {station} | {mean:.2f} |" for station, mean in analysis["mean_by_station"].items()),
    ]
    if review is not None:
        lines += ["", "## Reviewed outliers", ""]
        lines += [
            f"- {o['station']} {o['time']}: {o['value']} (station mean {o['station_mean']}): confirmed spike"
            for o in review["confirmed"]
        ]
        lines += [f"- {o['station']} {o['time']}: {o['value']}: dismissed" for o in review["dismissed"]]
    Path(work["output"]).write_text("\n".join(lines) + "\n")
    return {"output": work["output"], "lines": len(lines)}


# -- the agents -------------------------------------------------------------------------------


def _agent(name: str, tool_function: Any, role: str) -> StrandsAgent:
    """An agent with one tool; offline it passes its work order to the tool, then answers."""
    script = [{"tool": tool_function.tool_name, "input": {"order": "{prompt}"}}, f"{name} done: {{result}}"]
    return StrandsAgent(
        tools=[tool_function],
        system_prompt=f"You are the {role}. Do the step's instruction by calling your tool with the work "
        f"order (the JSON after '{ORDER}') as its `order` argument, then report what it returned.",
        model=None if os.environ.get("SOPY_MODEL") else ScriptedModel(script),
        name=name,
    )


# -- the step types ---------------------------------------------------------------------------


class AgentStep(Procedure[AnalysisState]):
    """A step that has its agent (from the template's `agent:`) do a work order."""

    sop_options = ProcedureOptions(placement="shared")
    agent: ClassVar[StrandsAgent | None] = None

    def work(self, state: AnalysisState, order: dict[str, Any]) -> dict[str, Any] | str:
        """Run the agent on the order; the output file's JSON, or a recovery prompt."""
        if self.agent is None:
            return f"Step {self.sop_name} has no agent: give it one with `agent:` in the template."
        result = self.agent(f"{self.prompt}\n\n{ORDER} {json.dumps(order)}", conversation=f"{state.run_dir}:{self.sop_name}")
        failed = [call for call in result.tool_calls if call.status != "ok"]
        if failed or not result.tool_calls or not Path(order["output"]).exists():
            return f"The {self.agent.name} agent's tool did not complete: {failed[0].message if failed else 'no output'}."
        state.work.append(f"{self.sop_name}: {self.agent.name} agent, {', '.join(c.name for c in result.tool_calls)}")
        if order["output"].endswith(".json"):
            output: dict[str, Any] = json.loads(Path(order["output"]).read_text())
            return output
        return {"text": Path(order["output"]).read_text()}


class DataCollection(AgentStep):
    prompt = make_prompt("Collect the readings.")

    @handler
    def collect(self, state: AnalysisState, event: CollectionRequested) -> Procedure[AnalysisState] | str:
        out = self.work(state, {"task": "collect", "source": state.source, "column": state.data_type,
                                "output": f"{state.run_dir}/collected.json"})
        if isinstance(out, str):
            return out
        if cond(not out["readings"], "no readings were collected"):
            return f"{state.source} holds no readings: collect from a file with rows."
        state.collected = {"rows": len(out["readings"]), "column": out["column"]}
        return self


class DataProcessing(AgentStep):
    prompt = make_prompt("Clean the readings.")

    @handler
    def process(self, state: AnalysisState, event: ProcessingRequested) -> Procedure[AnalysisState] | str:
        out = self.work(state, {"task": "clean", "input": f"{state.run_dir}/collected.json",
                                "output": f"{state.run_dir}/processed.json"})
        if isinstance(out, str):
            return out
        if cond(not out["readings"], "cleaning kept no reading"):
            return "Cleaning dropped every reading: check the column and the sensor failure value."
        state.processed = {"kept": len(out["readings"]), "dropped": len(out["dropped"])}
        return self


class Analysis(AgentStep):
    prompt = make_prompt("Find the outliers.")

    @handler
    def analyse(self, state: AnalysisState, event: AnalysisRequested) -> Procedure[AnalysisState] | str:
        out = self.work(state, {"task": "outliers", "input": f"{state.run_dir}/processed.json",
                                "algorithm": state.algorithm, "output": f"{state.run_dir}/analysis.json"})
        if isinstance(out, str):
            return out
        state.analysis = {"mean": out["mean"], "bounds": out["bounds"], "outliers": len(out["outliers"])}
        return self


class OutlierReview(AgentStep):
    prompt = make_prompt("Review the outliers.")

    @handler
    def review(self, state: AnalysisState, event: ReviewRequested) -> Procedure[AnalysisState] | str:
        out = self.work(state, {"task": "review", "input": f"{state.run_dir}/analysis.json",
                                "readings": f"{state.run_dir}/processed.json", "output": f"{state.run_dir}/review.json"})
        if isinstance(out, str):
            return out
        state.review = {"confirmed": len(out["confirmed"]), "dismissed": len(out["dismissed"])}
        return self


class Reporting(AgentStep):
    prompt = make_prompt("Write the report.")

    @handler
    def report(self, state: AnalysisState, event: ReportRequested) -> Procedure[AnalysisState] | str:
        review = f"{state.run_dir}/review.json" if state.review else None
        out = self.work(state, {"title": f"{state.data_type.capitalize()} readings",
                                "processed": f"{state.run_dir}/processed.json", "analysis": f"{state.run_dir}/analysis.json",
                                "review": review, "output": f"{state.run_dir}/report.md"})
        if isinstance(out, str):
            return out
        state.report = f"{state.run_dir}/report.md"
        return self


# -- the registry -----------------------------------------------------------------------------

registry = WorkflowRegistry()
registry.procedure("data_collection", DataCollection)
registry.procedure("data_processing", DataProcessing)
registry.procedure("analysis", Analysis)
registry.procedure("outlier_review", OutlierReview)
registry.procedure("reporting", Reporting)
registry.event("collection_requested", CollectionRequested)
registry.event("processing_requested", ProcessingRequested)
registry.event("analysis_requested", AnalysisRequested)
registry.event("review_requested", ReviewRequested)
registry.event("report_requested", ReportRequested)
registry.agent("collector", _agent("collector", prepare_readings, "data collection specialist"))
registry.agent("analyst", _agent("analyst", examine_readings, "data analyst"))
registry.agent("writer", _agent("writer", write_report, "report writer"))

# The event that asks each step type for its work.
REQUESTS: dict[str, type[Event[Any]]] = {
    "DataCollection": CollectionRequested,
    "DataProcessing": ProcessingRequested,
    "Analysis": AnalysisRequested,
    "OutlierReview": ReviewRequested,
    "Reporting": ReportRequested,
}


@registry.state
def initial_state(parameters: dict[str, Any]) -> AnalysisState:
    """A new run directory; the source path is resolved against this module's directory."""
    source = Path(str(parameters["source"]))
    if not source.is_absolute():
        source = Path(__file__).resolve().parent / source
    return AnalysisState(
        source=str(source),
        data_type=str(parameters["data_type"]),
        algorithm=str(parameters["algorithm"]),
        run_dir=tempfile.mkdtemp(prefix="sopy-templated-"),
    )


@registry.driver
def drive(handle: Any, workflow: Workflow[Any]) -> None:
    """Ask each step the SOP is in for its work, until it ends (at most 12 requests)."""
    for _ in range(12):
        status = handle.status()
        if status.phase != "waiting":
            return
        base = workflow.steps[status.procedure].__bases__[0]
        print(f"{status.procedure} ({base.__name__}): {status.prompt}")
        receipt = handle.send(REQUESTS[base.__name__](payload=None))
        print(f"    -> {receipt.outcome.value}, now in {receipt.procedure}")
        if receipt.rejected:
            print(f"    recovery prompt: {receipt.prompt}")
            return
