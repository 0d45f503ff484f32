"""A handler call as a procedure actor runs it (`run_call`), without Ray: changed lazy sections
are stored before the result that names them is returned, or the call fails; a result's
procedure leaves out what the call had, and the host puts it back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from sopy_actors.core.codec import encode_procedure, encode_state
from sopy_actors.core.events import event_to_wire
from sopy_actors.core.options import Semantics
from sopy_actors.runtime.messages import HandlerCall
from sopy_actors.runtime.procedure_actor import run_call
from sopy_actors.runtime.procedures import ProcedureCalls
from sopy_actors.state.lazy import STUB_KEY, collect_sections, store_sections, use_blob_store
from tests.support import lazyflow, records


class _Blobs:
    """A blob store that holds what it is given, or fails every write."""

    def __init__(self, *, failing: bool) -> None:
        self.blobs: dict[str, bytes] = {}
        self.failing = failing

    def get(self, digest: str) -> bytes | None:
        return self.blobs.get(digest)

    def put(self, blobs: dict[str, bytes]) -> None:
        if self.failing:
            raise ConnectionError("the store is unreachable")
        self.blobs.update(blobs)


@pytest.fixture(params=[False, True], ids=["stored", "store fails"])
def started(request: pytest.FixtureRequest) -> Iterator[tuple[_Blobs, dict[str, Any]]]:
    """The blob store, and a checkpointed lazy state whose section it holds."""
    store = _Blobs(failing=False)
    previous = use_blob_store(store)
    with collect_sections() as sections:  # checkpointed as the runtime does: its section stored
        state = encode_state(lazyflow.make_sop(3).state)
    store_sections(sections)
    store.failing = request.param
    yield store, state
    use_blob_store(previous)


def _call(state: dict[str, Any], event: Any) -> HandlerCall:
    return HandlerCall(
        "s1", encode_procedure(lazyflow.Keeping()), state, event_to_wire(event), {"observed": [], "agents": []},
        Semantics().model_dump(), {}, time.time() + 60,
    )


def test_a_result_names_only_sections_already_stored(started: tuple[_Blobs, dict[str, Any]]) -> None:
    blobs, state = started
    before = set(blobs.blobs)
    result = run_call(_call(state, lazyflow.Restocked(payload=lazyflow.Row(sku="x", count=1))))
    if blobs.failing:
        assert "error" in result and "state" not in result  # nothing to commit: no stub without its blob
    else:
        assert "error" not in result and len(set(blobs.blobs) - before) == 1
        named = _digests(result["state"])
        assert named and all(digest in blobs.blobs for digest in named)


def _digests(value: Any) -> list[str]:
    """Every section digest a checkpointed state names."""
    if isinstance(value, dict):
        found = [value[STUB_KEY]] if isinstance(value.get(STUB_KEY), str) else []
        return found + [digest for item in value.values() for digest in _digests(item)]
    if isinstance(value, list):
        return [digest for item in value for digest in _digests(item)]
    return []


def test_a_result_leaves_out_the_procedure_parts_equal_to_the_calls_and_the_host_puts_them_back() -> None:
    previous = use_blob_store(_Blobs(failing=False))
    try:
        with collect_sections() as sections:
            state = encode_state(lazyflow.make_sop(3).state)
        store_sections(sections)
        called = _call(state, lazyflow.Noted(payload="n"))
        stayed = run_call(called)
        ended = run_call(_call(state, lazyflow.Closed(payload=None)))
    finally:
        use_blob_store(previous)
    assert set(stayed["procedure"]) == {"type", "name", "attrs"}  # options and prompt: the call's
    assert {"options", "prompt"} <= set(ended["procedure"])  # End's differ from Keeping's: they come back
    record = records.record("s1").model_copy(update={"procedure": called.procedure})
    whole = ProcedureCalls("test")._received(record, called.event, stayed, set())
    assert whole["procedure"] == called.procedure
    assert ProcedureCalls("test")._received(record, called.event, ended, set())["procedure"] == ended["procedure"]
