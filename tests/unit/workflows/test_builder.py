"""WorkflowBuilder: validation messages, skipping, declared transitions, in process (no Ray)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sopy_actors import End
from sopy_actors.core.codec import decode_procedure, encode_procedure
from sopy_actors.errors import DefinitionError
from sopy_actors.testing import LocalSOP
from sopy_actors.workflows import Condition, WorkflowBuilder
from tests.unit.workflows import flows

ROOT = Path(__file__).resolve().parents[3]


def _problems(builder: WorkflowBuilder, context: object = None) -> list[str]:
    with pytest.raises(DefinitionError) as raised:
        builder.build(flows.Data(), context)
    return list(raised.value.problems)


def test_build_lists_every_problem_of_a_workflow_at_once() -> None:
    builder = WorkflowBuilder("broken")
    builder.add_procedure(flows.ValidateData)
    builder.add_procedure(flows.GenerateReport)
    builder.add_transition(flows.ProcessData, flows.GenerateReport, flows.ProcessRequested)
    builder.add_transition(flows.ValidateData, flows.ReviewFindings, flows.RowsLoaded)
    builder.add_transition(flows.ValidateData, flows.GenerateReport, int)  # type: ignore[arg-type]
    builder.add_transition(flows.ValidateData, flows.GenerateReport, flows.RowsLoaded, lambda s, e: True)
    problems = _problems(builder)
    assert problems == [
        "transition ProcessData -> GenerateReport on ProcessRequested: unknown procedure ProcessData: add it with "
        "add_procedure first",
        "transition ValidateData -> ReviewFindings on RowsLoaded: unknown procedure ReviewFindings: add it with "
        "add_procedure first (or go to End)",
        "transition ValidateData -> GenerateReport on int: <class 'int'> is not an Event subclass",
        "transition ValidateData -> GenerateReport on RowsLoaded: transition condition "
        "test_build_lists_every_problem_of_a_workflow_at_once.<locals>.<lambda> is a lambda; other "
        "processes import it by name, so make it a top-level function (def) of an importable module (or write it as "
        "a Condition(field=..., op=..., value=...))",
    ]


def test_a_handler_returning_a_procedure_left_out_of_the_workflow_is_a_definition_error() -> None:
    problems = _problems(WorkflowBuilder("partial").add_procedure(flows.ValidateData).add_procedure(flows.GenerateReport))
    assert problems[0] == (
        "step ValidateData: handler on_rows returns ProcessData(), which is not a step of workflow partial: add it "
        "to the workflow, or declare the step's transition for that event instead"
    )
    assert "procedure GenerateReport is unreachable from the entry ValidateData: no reachable handler returns it" in problems
    assert "procedure ValidateData has no path to End: no chain of transitions from it reaches a return of End()" in problems


def test_no_active_procedure_and_a_failing_condition_are_reported() -> None:
    off = WorkflowBuilder("off").add_procedure(flows.ValidateData, condition=lambda s, c: False)
    assert _problems(off) == ["no procedure is active for this context (added: ValidateData)"]
    failing = WorkflowBuilder("failing").add_procedure(flows.ValidateData, condition=lambda s, c: c.missing)
    assert _problems(failing) == [
        "the condition of ValidateData failed: AttributeError: 'NoneType' object has no attribute 'missing'"
    ]


def test_a_condition_on_a_field_the_state_lacks_is_a_definition_error() -> None:
    builder = WorkflowBuilder("typo").add_procedure(flows.ProcessData).add_procedure(flows.AnalyzeData)
    builder.add_procedure(flows.GenerateReport)
    builder.add_transition(flows.AnalyzeData, End, flows.AnalysisRequested, Condition(field="state.anomaly", value=1))
    builder.add_transition(flows.AnalyzeData, flows.GenerateReport, flows.AnalysisRequested)
    (problem,) = _problems(builder)
    assert problem.startswith("step AnalyzeData: condition field state.anomaly: the state Data has no field 'anomaly'")


def test_a_left_out_step_is_skipped_and_declared_transitions_route_by_condition() -> None:
    workflow = flows.create_adaptive_workflow(flows.Data(), flows.Context(analysis_enabled=False))
    assert list(workflow.steps) == ["ValidateData", "ProcessData", "ReviewFindings", "GenerateReport"]
    run = LocalSOP(workflow)
    run.send(flows.RowsLoaded(payload=[1, 2]))
    assert type(run.send(flows.ProcessRequested(payload=None)).procedure).__name__ == "ReviewFindings"

    full = LocalSOP(flows.full_workflow())
    assert full.send(flows.RowsLoaded(payload=[-1])).prompt == "Remove the negative rows and load them again."
    full.send(flows.RowsLoaded(payload=[1, 2]))
    full.send(flows.ProcessRequested(payload=None))
    # No row above 5: the conditional transition does not apply, the next one does.
    assert type(full.send(flows.AnalysisRequested(payload=5)).procedure).__name__ == "GenerateReport"
    assert full.send(flows.ReportRequested(payload="R")).outcome.value == "ended"
    assert full.state.report == "R: 2 rows, total 3, 0 anomalies"


def test_a_transition_whose_conditions_all_fail_rejects_the_event() -> None:
    builder = WorkflowBuilder("strict").add_procedure(flows.ProcessData).add_procedure(flows.AnalyzeData)
    builder.add_procedure(flows.GenerateReport)
    builder.add_transition(flows.AnalyzeData, flows.GenerateReport, flows.AnalysisRequested, flows.many_anomalies)
    run = LocalSOP(builder.build(flows.Data(rows=[1, 9])))
    run.send(flows.ProcessRequested(payload=None))
    rejected = run.send(flows.AnalysisRequested(payload=5))  # one anomaly: many_anomalies is false
    assert rejected.outcome.value == "rejected"
    assert rejected.prompt == (
        "No transition of step AnalyzeData applies to AnalysisRequested now (its conditions: "
        "many_anomalies(state, event)); change what the conditions test and try again."
    )
    assert run.state.anomalies == 1  # SOPy semantics: the rejecting handler's changes stay
    assert type(run.send(flows.AnalysisRequested(payload=0)).procedure).__name__ == "GenerateReport"


def test_a_generated_step_round_trips_through_the_wire_and_is_rebuilt_from_data_in_a_fresh_process() -> None:
    workflow = flows.full_workflow()
    encoded = json.loads(json.dumps(encode_procedure(workflow.init_proc)))
    assert encoded["type"] == f"sopy_actors.workflows@{workflow.definition.digest()}.ValidateData"
    assert type(decode_procedure(encoded)) is workflow.steps["ValidateData"]  # same class in this process

    code = (
        "import json, sys\n"
        "from sopy_actors.core.codec import decode_procedure, encode_procedure\n"
        "assert 'sopy_actors.workflows' not in sys.modules\n"
        "procedure = decode_procedure(json.loads(sys.stdin.read()))\n"
        "print(type(procedure).__name__, type(procedure).__mro__[1].__qualname__, json.dumps(encode_procedure(procedure)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(encoded), cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    name, base, again = done.stdout.split(" ", 2)
    assert (name, base) == ("ValidateData", "ValidateData")
    assert json.loads(again) == encoded


def test_a_tampered_definition_is_refused_when_decoded() -> None:
    encoded = encode_procedure(flows.full_workflow().init_proc)
    tampered = json.loads(json.dumps(encoded))
    tampered["definition"]["steps"][0]["prompt"] = "Do something else."
    code = (
        "import json, sys\n"
        "from sopy_actors.core.codec import decode_procedure\n"
        "decode_procedure(json.loads(sys.stdin.read()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(tampered), cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "does not match its content hash" in done.stderr


def test_a_generated_step_is_run_by_its_base_class_s_actors_whatever_its_workflow() -> None:
    builders = [WorkflowBuilder("w").add_procedure(flows.Checked, prompt=text) for text in ("Check one.", "Check two.")]
    encoded = [encode_procedure(builder.build(flows.Data(), flows.Context()).init_proc) for builder in builders]
    assert encoded[0]["type"] != encoded[1]["type"]  # two workflows: two digests
    assert [e["runs_as"] for e in encoded] == ["tests.unit.workflows.flows:Checked"] * 2
    assert "runs_as" not in encode_procedure(flows.Checked())  # an imported class runs as itself
