"""Built and templated workflows on the actor runtime: steps travel as data and survive SIGKILLs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import ray

from sopy_actors import ProcedureOptions, start_many
from sopy_actors.runtime.options import STORE_ACTOR, procedure_actor_name
from sopy_actors.workflows import WorkflowBuilder, WorkflowTemplate
from tests.unit.workflows import flows

pytestmark = pytest.mark.usefixtures("runtime")

TEMPLATE = Path(__file__).resolve().parents[1] / "unit" / "workflows" / "analysis.yaml"
ROOT = Path(__file__).resolve().parents[2]


def _kill_host_and_step_actor(runtime: Any, handle: Any) -> None:
    """SIGKILL the SOP's host and the shared procedure actor that runs generated steps."""
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    os.kill(ray.get(_step_actor(runtime).location.remote())["pid"], signal.SIGKILL)
    os.kill(ray.get(host.statistics.remote())["pid"], signal.SIGKILL)


def _stored_procedure(runtime: Any, sop_id: str) -> dict[str, Any]:
    store = ray.get_actor(STORE_ACTOR, namespace=runtime.namespace)
    stored = ray.get(store.load.remote(sop_id, 0))
    procedure: dict[str, Any] = stored.record.procedure
    return procedure


def test_a_built_workflow_runs_in_other_processes_and_resumes_from_its_stored_definition_after_sigkill(
    runtime: Any,
) -> None:
    workflow = flows.create_adaptive_workflow(flows.Data(), flows.Context())
    handle = workflow.start(placement="dedicated")
    assert handle.send(flows.RowsLoaded(payload=[1, 5, 9])).procedure == "ProcessData"
    assert handle.send(flows.ProcessRequested(payload=None)).procedure == "AnalyzeData"

    stored = _stored_procedure(runtime, handle.sop_id)
    assert stored["type"].startswith("sopy_actors.workflows@") and stored["type"].endswith(".AnalyzeData")
    assert stored["definition"] == workflow.definition.model_dump(mode="json")
    # The two results came back without the definition (the host keeps its own): less than one copy of it.
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    received = ray.get(host.statistics.remote())["handler_bytes"]["received"]
    assert 0 < received < len(json.dumps(stored["definition"])), received

    _kill_host_and_step_actor(runtime, handle)
    # Both come back empty: the host reloads the checkpoint, the procedure actor rebuilds the
    # steps from the definition in it.
    receipt = handle.send(flows.AnalysisRequested(payload=4), timeout=120)
    assert (receipt.outcome.value, receipt.procedure) == ("transitioned", "ReviewFindings")  # 2 rows > 4
    assert handle.send(flows.ReviewDone(payload="   ")).rejected
    assert handle.send(flows.ReviewDone(payload="fine")).procedure == "GenerateReport"
    assert handle.send(flows.ReportRequested(payload="R")).outcome.value == "ended"

    final = handle.result(timeout=60)
    assert final.report == "R: 3 rows, total 15, 2 anomalies"
    assert final.log == ["validated", "processed", "analysed: 2 anomalies", "reviewed: fine", "reported"]
    assert [(e.from_procedure, e.to_procedure) for e in handle.history() if e.outcome != "rejected"] == [
        ("ValidateData", "ProcessData"),
        ("ProcessData", "AnalyzeData"),
        ("AnalyzeData", "ReviewFindings"),
        ("ReviewFindings", "GenerateReport"),
        ("GenerateReport", "End"),
    ]
    assert handle.status().name == "adaptive"


def _step_actor(runtime: Any) -> Any:
    """The shared procedure actor that runs generated steps."""
    shared = procedure_actor_name(
        "unused", ProcedureOptions(placement="shared"), 0, ray.get_runtime_context().runtime_env
    )
    return ray.get_actor(shared, namespace=runtime.namespace)


def _sent(host: Any) -> int:
    sent: int = ray.get(host.statistics.remote())["handler_bytes"]["sent"]
    return sent


def test_a_definition_goes_to_the_step_actor_once_and_again_after_the_actor_restarts(runtime: Any) -> None:
    workflow = flows.create_adaptive_workflow(flows.Data(), flows.Context())
    size = len(json.dumps(workflow.definition.model_dump(mode="json")))
    handle = workflow.start(placement="dedicated")  # a host of its own: its byte counts are this SOP's
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    assert handle.send(flows.RowsLoaded(payload=[1, 5, 9])).procedure == "ProcessData"
    first = _sent(host)
    assert first > size  # the first call carries the definition
    assert handle.send(flows.ProcessRequested(payload=None)).procedure == "AnalyzeData"
    second = _sent(host) - first
    assert second < size and second < first - size / 2, (first, second, size)  # the next one does not

    _restart_step_actor(runtime)  # it comes back empty; the host still counts it as sent
    before = _sent(host)
    receipt = handle.send(flows.AnalysisRequested(payload=4), timeout=120)
    assert (receipt.outcome.value, receipt.procedure) == ("transitioned", "ReviewFindings")
    assert _sent(host) - before > size  # refused for want of it, then made again with it
    assert handle.send(flows.ReviewDone(payload="fine")).procedure == "GenerateReport"
    assert [e.outcome for e in handle.history()] == ["transitioned"] * 4  # nothing lost or refused


def test_after_the_step_actor_restarts_a_batch_sends_again_the_calls_that_left_their_definition_out(
    runtime: Any,
) -> None:
    # Two workflows on the shared step actor: the first one's definition was sent before the
    # restart (its calls leave it out and are refused once), the second's never was.
    sent_before = [flows.create_adaptive_workflow(flows.Data(), flows.Context()) for _ in range(4)]
    never_sent = [flows.create_adaptive_workflow(flows.Data(), flows.Context(analysis_enabled=False)) for _ in range(4)]
    handles = start_many([*sent_before, *never_sent])
    for future in [handle.submit(flows.RowsLoaded(payload=[2])) for handle in handles[:4]]:
        future.result(timeout=60)
    _restart_step_actor(runtime)

    events = [flows.ProcessRequested(payload=None)] * 4 + [flows.RowsLoaded(payload=[3])] * 4
    futures = [handle.submit(event) for handle, event in zip(handles, events, strict=True)]  # batched per host
    assert [future.result(timeout=120).procedure for future in futures] == ["AnalyzeData"] * 4 + ["ProcessData"] * 4
    assert [len(handle.history()) for handle in handles] == [2] * 4 + [1] * 4


def _restart_step_actor(runtime: Any) -> None:
    """SIGKILL the step actor and wait until Ray has restarted it."""
    actor = _step_actor(runtime)
    pid = ray.get(actor.location.remote())["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while _alive_pid(actor) in (None, pid):
        assert time.monotonic() < deadline, "the step actor did not restart"
        time.sleep(0.2)


def _alive_pid(actor: Any) -> int | None:
    try:
        pid: int = ray.get(actor.location.remote(), timeout=5)["pid"]
    except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
        return None
    return pid


def test_steps_of_every_workflow_built_on_a_base_with_options_run_on_that_base_s_actor(runtime: Any) -> None:
    def named() -> set[str]:
        return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == runtime.namespace}

    workflows = [WorkflowBuilder("checked").add_procedure(flows.Checked, prompt=f"Check batch {n}.") for n in range(3)]
    handles = [builder.build(flows.Data(), flows.Context()).start() for builder in workflows]
    assert len({handle.status().prompt for handle in handles}) == 3  # three workflows, three digests
    for handle in handles:
        assert handle.send(flows.RowsLoaded(payload=[1])).outcome.value == "ended"
    base = procedure_actor_name(
        "tests.unit.workflows.flows:Checked", flows.Checked.sop_options, 0, ray.get_runtime_context().runtime_env
    )
    assert base in named()  # the base class's own actor ran all three
    assert not [name for name in named() if "workflows@" in name]  # no actor per workflow


def test_a_handler_error_in_a_generated_step_is_answered_with_sopys_recovery_prompt() -> None:
    # The host asks the step's class for its recovery policy: the class is built from the
    # definition there too (it was an "Invalid reference" error before).
    builder = WorkflowBuilder("divide")
    builder.add_procedure(flows.Divide)
    handle = builder.build(flows.Data(), flows.Context()).start()
    receipt = handle.send(flows.ProcessRequested(payload=None))  # no rows: ZeroDivisionError
    assert receipt.rejected and receipt.prompt is not None
    assert "integer division or modulo by zero. Please try again." in receipt.prompt
    assert handle.status().retries == 1


def test_a_step_left_out_by_its_condition_is_skipped_on_the_actor_runtime() -> None:
    handle = flows.create_adaptive_workflow(flows.Data(), flows.Context(analysis_enabled=False)).start()
    handle.send(flows.RowsLoaded(payload=[3, 4]))
    # AnalyzeData is left out: ProcessData's `return AnalyzeData()` lands in the next active
    # step in the order they were added, ReviewFindings.
    assert handle.send(flows.ProcessRequested(payload=None)).procedure == "ReviewFindings"
    assert handle.send(flows.ReviewDone(payload="no analysis")).procedure == "GenerateReport"
    handle.send(flows.ReportRequested(payload="S"))
    assert handle.result(timeout=60).report == "S: 2 rows, total 7, 0 anomalies"


def test_a_template_workflow_resumes_after_sigkill_and_a_new_driver_finishes_it(runtime: Any) -> None:
    workflow = WorkflowTemplate.from_file(TEMPLATE).instantiate({"source": "sensor.csv"})
    handle = workflow.start(sop_id="templated-analysis-resumed")
    assert handle.status().prompt == "Load the rows from sensor.csv and check that none is negative."
    assert handle.send(flows.RowsLoaded(payload=[-1])).rejected  # the base class's own check
    assert handle.send(flows.RowsLoaded(payload=[2, 3])).procedure == "Processing"
    _kill_host_and_step_actor(runtime, handle)
    assert handle.send(flows.ProcessRequested(payload=None), timeout=120).procedure == "Analysis"

    # A driver that never imported the template or sopy_actors.workflows drives it to End.
    store_dir = str(Path(runtime.store_path).parent)
    code = textwrap.dedent(f"""
        import sys
        import sopy_actors
        sopy_actors.init({runtime.address!r}, namespace={runtime.namespace!r}, store_dir={store_dir!r})
        from tests.unit.workflows.flows import AnalysisRequested, ReportRequested
        handle = sopy_actors.attach("templated-analysis-resumed")
        print(handle.status().prompt)
        print(handle.send(AnalysisRequested(payload=2)).procedure)
        print(handle.send(ReportRequested(payload="T")).outcome.value)
        print(handle.result(timeout=120).report)
    """)
    env = {**os.environ, "RAY_AUTH_MODE": "token"}  # explicit addresses need it (Ray 2.60)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-4:] == [
        "Count the rows above 4.",
        "Reporting",  # one row above 2: not "two or more anomalies"
        "ended",
        "T: 2 rows, total 5, 1 anomalies",
    ]
    assert handle.state().log == ["source=sensor.csv", "validated", "processed", "analysed: 1 anomalies", "reported"]
