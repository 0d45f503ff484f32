"""A generated step's definition goes to a procedure actor once, without Ray: a call may leave it
out where the process built the workflow, a process that lacks it answers `DefinitionNeeded`
(never a guess), a result leaves it out when the call's class carries it, and the host's calls
leave it out once the actor was sent it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sopy_actors.core.codec import decode_procedure, encode_procedure, encode_state
from sopy_actors.core.events import event_to_wire
from sopy_actors.core.options import Semantics
from sopy_actors.core.references import DefinitionNeeded, definition_source
from sopy_actors.runtime.messages import HandlerCall, HandlerResult
from sopy_actors.runtime.procedure_actor import _procedure_class, run_call
from sopy_actors.runtime.procedures import ProcedureCalls
from sopy_actors.workflows import generate
from tests.support import records
from tests.unit.workflows import flows


@pytest.fixture
def built() -> Iterator[dict[str, Any]]:
    """The encoded entry step of a workflow this process has not built before (the cache emptied)."""
    generate._cache.clear()
    yield json.loads(json.dumps(encode_procedure(flows.full_workflow().init_proc)))
    generate._cache.clear()


def _without_definition(procedure: dict[str, Any]) -> dict[str, Any]:
    return {part: value for part, value in procedure.items() if part != "definition"}


def _call(procedure: dict[str, Any], event: Any) -> HandlerCall:
    state = encode_state(flows.Data())
    return HandlerCall(
        "s1", procedure, state, event_to_wire(event), {"observed": [], "agents": []}, Semantics().model_dump(), {},
        time.time() + 60,
    )


def test_a_step_without_its_definition_decodes_only_where_the_workflow_was_built(built: dict[str, Any]) -> None:
    generate._cache.clear()  # a fresh process: nothing built
    with pytest.raises(DefinitionNeeded, match="its definition is needed"):
        decode_procedure(_without_definition(built))
    assert type(decode_procedure(built)).__name__ == "ValidateData"  # built from the data, and kept
    assert type(decode_procedure(_without_definition(built))).__name__ == "ValidateData"


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
    generate._cache.clear()  # the actor restarted (or dropped the workflow) since it was sent
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

    needed: HandlerResult = {"error": {"type": "DefinitionNeeded", "message": "", "attributes": {}}}
    calls._received(record, event, needed, taught)
    assert taught == {definition_source(built["type"])}  # a refusal does not count as the actor having it


def test_the_actors_class_lookups_build_a_generated_step_from_its_definition(built: dict[str, Any]) -> None:
    generate._cache.clear()
    reference = built["type"]
    with pytest.raises(DefinitionNeeded):
        _procedure_class(reference, None)
    assert _procedure_class(reference, built["definition"]).__name__ == "ValidateData"
    assert _procedure_class(encode_procedure(flows.Divide())["type"], None) is flows.Divide  # an imported class
