"""SOPs on the actor runtime: the scenario table, actors per class, hosts, bad input."""

from __future__ import annotations

import os
from typing import Any

import pytest
import ray

import sopy_actors
from sopy_actors import Outcome, ProcedureOptions, Prompt, SOPHandle, attach, start_many
from sopy_actors.core.events import event_to_wire
from sopy_actors.errors import InputError, UnknownSOP, error_from_wire
from sopy_actors.runtime.options import procedure_actor_name
from tests.support import docflow as d
from tests.support import ledger as ledger_flow
from tests.support.scenarios import SCENARIOS, Scenario

pytestmark = pytest.mark.usefixtures("runtime")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_gives_the_same_results_on_the_actor_runtime(scenario: Scenario) -> None:
    handle = d.make_sop(scenario.retry_limits, scenario.semantics).start()
    for step in scenario.steps:
        if isinstance(step.outcome, Outcome):
            receipt = handle.send(step.event(), timeout=120)
            assert receipt.outcome is step.outcome
            if step.prompt is not None:
                assert receipt.prompt == step.prompt
        else:
            with pytest.raises(step.outcome):
                handle.send(step.event(), timeout=120)
        assert handle.status().procedure == step.procedure
    assert handle.state().model_dump() == scenario.state


def _named_actors(runtime: Any) -> set[str]:
    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == runtime.namespace}


def test_each_procedure_class_runs_in_its_own_actor_and_sops_share_hosts(runtime: Any) -> None:
    handles = [d.make_sop().start() for _ in range(6)]
    for handle in handles:
        handle.send(d.DraftWritten(payload=d.Draft(text="x")), timeout=120)
    names = _named_actors(runtime)
    env = ray.get_runtime_context().runtime_env
    drafting = procedure_actor_name("tests.support.docflow:Drafting", ProcedureOptions(), 0, env)
    reviewing = procedure_actor_name("tests.support.docflow:Reviewing", ProcedureOptions(), 0, env)
    assert {drafting, reviewing} <= names
    pids = {ray.get(ray.get_actor(n, namespace=runtime.namespace).location.remote())["pid"] for n in (drafting, reviewing)}
    assert len(pids) == 2
    hosts = {h.status().host for h in handles}
    assert hosts <= {f"sopy-host-{i}" for i in range(runtime.hosts)}
    assert len(hosts) < len(handles)


def test_a_host_never_imports_the_workflow_code_its_sops_run(runtime: Any) -> None:
    from tests.support import import_marks

    for mark in import_marks.MARKS.iterdir():  # marks of earlier runs (process ids get reused)
        if mark.name != str(os.getpid()):
            mark.unlink()
    handle = import_marks.make_sop().start(placement="dedicated")  # a host of its own, started now
    for _ in range(2):
        handle.send(import_marks.Tapped(payload=1))
    assert handle.result(timeout=120).count == 2 and handle.status().phase == "done"
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    env = ray.get_runtime_context().runtime_env
    counting = ray.get_actor(
        procedure_actor_name("tests.support.import_marks:Counting", ProcedureOptions(), 0, env), namespace=runtime.namespace
    )
    importers = import_marks.importers()
    assert ray.get(counting.location.remote())["pid"] in importers  # the handlers' process imported it
    assert ray.get(host.statistics.remote())["pid"] not in importers  # the SOP's host never did


def test_dedicated_placement_gives_an_sop_its_own_host(runtime: Any) -> None:
    handle = d.make_sop().start(placement="dedicated")
    assert handle.status().host == f"sopy-host-sop-{handle.sop_id}"
    assert handle.send(d.DraftWritten(payload=d.Draft(text="x"))).outcome is Outcome.TRANSITIONED


def test_history_lists_committed_events_in_order() -> None:
    handle = d.make_sop().start()
    first = d.DraftWritten(payload=d.Draft(text=""))
    second = d.DraftWritten(payload=d.Draft(text="x"))
    handle.send(first)
    handle.send(second)
    assert [(e.version, e.event_id, e.outcome, e.to_procedure) for e in handle.history()] == [
        (1, first.id, "rejected", "Drafting"),
        (2, second.id, "transitioned", "Reviewing"),
    ]


def test_a_redelivered_event_is_applied_once() -> None:
    handle = d.make_sop().start()
    event = d.DraftWritten(payload=d.Draft(text="x"))
    first = handle.send(event)
    again = handle.send(event)
    assert first == again
    assert handle.status().version == 1


def test_attach_returns_a_working_handle_and_unknown_ids_fail_clearly() -> None:
    handle = d.make_sop().start(sop_id="attach-me-1")
    attached = sopy_actors.attach("attach-me-1")
    assert attached.status().sop_id == handle.sop_id
    with pytest.raises(UnknownSOP, match="No SOP with id 'missing-sop'"):
        sopy_actors.attach("missing-sop")


def test_starting_an_existing_sop_id_is_refused() -> None:
    d.make_sop().start(sop_id="taken-id-1")
    with pytest.raises(InputError, match="exists already") as caught:
        d.make_sop().start(sop_id="taken-id-1")
    message = str(caught.value)  # the error crossed the wire as data: no Ray traceback in it
    assert "Traceback" not in message and "ray::" not in message and caught.value.fields == ("sop_id",)


def test_bad_sop_ids_and_placements_are_input_errors() -> None:
    with pytest.raises(InputError, match="sop_id"):
        d.make_sop().start(sop_id="has spaces")
    with pytest.raises(InputError, match="placement"):
        d.make_sop().start(placement="everywhere")


def test_an_event_type_the_cluster_cannot_import_is_refused_and_changes_nothing() -> None:
    class LocalOnly(sopy_actors.Event[str]):
        pass

    handle = d.make_sop().start()
    with pytest.raises(InputError, match="Unknown event type"):
        handle.send(LocalOnly(payload="x"))
    assert handle.status().version == 0


def test_a_tampered_payload_is_refused_naming_the_field_and_changes_nothing(runtime: Any) -> None:
    handle = d.make_sop().start()
    wire = event_to_wire(d.DraftWritten(payload=d.Draft(text="x")))
    wire["data"]["payload"] = {"text": 42}
    host = ray.get_actor(handle.host, namespace=runtime.namespace)
    reply = ray.get(host.send.remote(handle.sop_id, wire, None, None))
    error = error_from_wire(reply["error"])  # errors cross every hop in the one wire format
    assert isinstance(error, InputError) and error.fields == ("payload.text",)
    assert "field 'payload.text'" in str(error)
    assert handle.status().version == 0


def test_events_for_an_unknown_sop_id_get_a_clear_error(runtime: Any) -> None:
    stranger = SOPHandle("no-such-sop", host="sopy-host-0", namespace=runtime.namespace)
    with pytest.raises(UnknownSOP, match="no-such-sop"):
        stranger.send(d.DraftWritten(payload=d.Draft(text="x")))


def test_sending_something_that_is_not_an_event_is_an_input_error() -> None:
    handle = d.make_sop().start()
    with pytest.raises(InputError, match="takes an Event"):
        handle.send({"payload": 1})  # type: ignore[arg-type]


def test_result_returns_the_final_state_and_with_block_finishes_through_the_error_handler() -> None:
    def finish(prompt: Prompt) -> None:  # SOPy's error handler: the prompt; the run is current_sop()
        assert prompt.prompt.startswith("SOP left unfinished: current procedure is ")
        run = sopy_actors.current_sop()
        if run.status().procedure == "Drafting":
            run.send(d.DraftWritten(payload=d.Draft(text="via handler")))
        else:
            run.send(d.ReviewDone(payload=d.Review(approved=True, comment="ok")))

    sop = d.make_sop().with_recovery(finish, retry_limits=3)
    with sop as run:
        assert sopy_actors.current_sop() is run
    assert run.result(timeout=60).text == "via handler"
    assert run.status().phase == "done"


def test_start_many_starts_sops_on_every_host_in_one_call_each() -> None:
    handles = start_many([ledger_flow.make_sop(1) for _ in range(60)])
    assert len({handle.host for handle in handles}) > 1
    for handle in handles:
        handle.send(ledger_flow.EntryAdded(payload=ledger_flow.EntryData(sender="a", index=0)))
    assert all(handle.result(timeout=120).entries == {"a": [0]} for handle in handles)


def test_start_many_refuses_repeated_ids_before_starting_and_reports_taken_ones_after() -> None:
    with pytest.raises(InputError, match="repeats"):
        start_many([ledger_flow.make_sop(1), ledger_flow.make_sop(1)], sop_ids=["twice-x", "twice-x"])
    with pytest.raises(UnknownSOP):
        attach("twice-x")
    taken = ledger_flow.make_sop(1).start().sop_id
    with pytest.raises(InputError, match="exists already"):
        start_many([ledger_flow.make_sop(1), ledger_flow.make_sop(1)], sop_ids=[taken, "fresh-after-taken"])
    assert attach("fresh-after-taken").status().version == 0


def test_an_event_its_class_ignores_is_answered_by_the_host_once_a_call_has_shown_it(runtime: Any) -> None:
    first, second = d.make_sop().start(placement="dedicated"), d.make_sop().start(placement="dedicated")
    assert first.send(d.Noise(payload="hum")).outcome is Outcome.IGNORED  # a call shows the class ignores it
    assert first.host != second.host
    host = ray.get_actor(second.host, namespace=runtime.namespace)
    second.send(d.Noise(payload="warm"))  # this host's first call learns it too
    before = ray.get(host.statistics.remote())["handler_bytes"]
    receipt = second.send(d.Noise(payload="hum"))
    assert ray.get(host.statistics.remote())["handler_bytes"] == before  # no call to a procedure actor
    assert (receipt.outcome, receipt.procedure, receipt.version) == (Outcome.IGNORED, "Drafting", second.status().version)
    assert second.history()[-1].outcome == "ignored"
    assert second.send(d.DraftWritten(payload=d.Draft(text="text"))).outcome is not Outcome.IGNORED  # handlers still run
