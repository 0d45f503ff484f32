"""A generated step's definition goes to a procedure actor once, without Ray: a call may leave it
out where the process keeps it, a process that does not answers `DefinitionNeeded` (never a
guess), a result leaves it out when the call's class was built from it, and the host's calls
leave it out once the actor has answered one that carried it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sopy_actors.core import references
from sopy_actors.core.codec import decode_procedure, encode_procedure, encode_state, procedure_class
from sopy_actors.core.events import event_to_wire
from sopy_actors.core.options import Semantics
from sopy_actors.core.references import DefinitionNeeded, definition_source
from sopy_actors.runtime import procedures
from sopy_actors.runtime.messages import HandlerCall, HandlerResult
from sopy_actors.runtime.procedure_actor import run_call
from sopy_actors.runtime.procedures import ProcedureCalls
from sopy_actors.workflows import generate
from tests.support import records
from tests.unit.workflows import flows


def _fresh_process() -> None:
    """Forget every workflow built and every definition kept, as a new process would."""
    generate._cache.clear()
    references._kept.clear()


@pytest.fixture
def built() -> Iterator[dict[str, Any]]:
    """The encoded entry step of a workflow, as it travels."""
    _fresh_process()
    yield json.loads(json.dumps(encode_procedure(flows.full_workflow().init_proc)))
    _fresh_process()


def _without_definition(procedure: dict[str, Any]) -> dict[str, Any]:
    return {part: value for part, value in procedure.items() if part != "definition"}


def _call(procedure: dict[str, Any], event: Any) -> HandlerCall:
    state = encode_state(flows.Data())
    return HandlerCall(
        "s1", procedure, state, event_to_wire(event), {"observed": [], "agents": []}, Semantics().model_dump(), {},
        time.time() + 60,
    )


def test_a_step_without_its_definition_decodes_only_where_the_definition_is_kept(built: dict[str, Any]) -> None:
    _fresh_process()
    with pytest.raises(DefinitionNeeded, match="keeps no definition for it"):
        decode_procedure(_without_definition(built))
    assert type(decode_procedure(built)).__name__ == "ValidateData"  # built from the data, which is kept
    assert type(decode_procedure(_without_definition(built))).__name__ == "ValidateData"
    generate._cache.clear()  # the built classes dropped: rebuilt from the kept data
    assert type(decode_procedure(_without_definition(built))).__name__ == "ValidateData"
    other_step = {**_without_definition(built), "type": built["type"].replace(".ValidateData", ".ProcessData")}
    assert type(decode_procedure(other_step)).__name__ == "ProcessData"  # one definition, every step


def test_a_process_keeps_the_last_definitions_it_built_from(
    built: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(references, "KEPT_DEFINITIONS", 1)
    decode_procedure(built)
    without_analysis = flows.create_adaptive_workflow(flows.Data(), flows.Context(analysis_enabled=False))
    other = json.loads(json.dumps(encode_procedure(without_analysis.init_proc)))
    assert definition_source(other["type"]) != definition_source(built["type"])
    decode_procedure(other)  # the newer one: the first is dropped
    assert type(decode_procedure(_without_definition(other))).__name__ == "ValidateData"
    with pytest.raises(DefinitionNeeded):
        decode_procedure(_without_definition(built))


def test_a_call_without_the_definition_runs_on_a_built_workflow_and_its_result_leaves_the_definition_out(
    built: dict[str, Any],
) -> None:
    first = run_call(_call(built, flows.RowsLoaded(payload=[1, 2])))
    later = run_call(_call(_without_definition(built), flows.RowsLoaded(payload=[3])))
    for result in (first, later):
        assert "error" not in result, result
        assert result["procedure"]["name"] == "ProcessData" and "definition" not in result["procedure"]


def test_a_call_without_the_definition_to_a_process_that_lacks_it_asks_for_it_and_runs_nothing(
    built: dict[str, Any],
) -> None:
    _fresh_process()  # the actor restarted (or dropped the definition) since it was sent
    result = run_call(_call(_without_definition(built), flows.RowsLoaded(payload=[1])))
    assert result["error"]["type"] == "DefinitionNeeded" and "state" not in result


def test_the_host_leaves_the_definition_out_of_an_actors_calls_once_it_has_it(built: dict[str, Any]) -> None:
    calls, taught = ProcedureCalls("test"), set[str]()
    record = records.record("s1").model_copy(update={"procedure": built, "state": encode_state(flows.Data())})
    event = event_to_wire(flows.RowsLoaded(payload=[1]))
    assert calls._call(record, event, taught).procedure == built  # never sent: the definition goes along

    answered: HandlerResult = run_call(calls._call(record, event, taught))
    assert "error" not in answered, answered
    whole = calls._received(record, event, answered, taught)
    assert taught == {definition_source(built["type"])}
    assert whole["procedure"]["definition"] == built["definition"]  # the host's record has it again
    assert calls._call(record, event, taught).procedure == _without_definition(built)

    for failed in ("DefinitionNeeded", "RuntimeUnavailable", "HandlerError"):
        fresh = set[str]()
        calls._received(record, event, {"error": {"type": failed, "message": "", "attributes": {}}}, fresh)
        assert not fresh, failed  # an error does not show that the actor has it


def test_the_actors_class_lookups_build_a_generated_step_from_its_definition(built: dict[str, Any]) -> None:
    _fresh_process()
    reference = built["type"]
    with pytest.raises(DefinitionNeeded):
        procedure_class(reference, None)
    assert procedure_class(reference, built["definition"]).__name__ == "ValidateData"
    assert procedure_class(encode_procedure(flows.Divide())["type"], None) is flows.Divide  # an imported class


def test_what_a_host_remembers_per_procedure_class_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Generated steps are new classes per workflow: a host running many workflows forgets old answers.
    monkeypatch.setattr(procedures, "_CLASS_CACHE", 2)
    calls = ProcedureCalls("test")
    for n in range(5):
        record = records.record("s1").model_copy(update={"procedure": {"type": f"m@d{n}.Step", "name": "Step"}})
        ignored: HandlerResult = {"outcome": "ignored", "procedure": {}, "state": {}}
        calls._received(record, {"type": "E"}, ignored, set())
        assert len(calls._ignored) <= 2
