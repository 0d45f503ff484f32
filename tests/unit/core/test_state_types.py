"""States of any type in process: dicts, dataclasses and plain objects, changed in place by handlers."""

from __future__ import annotations

import pytest

from sopy_actors import SOP, Outcome, Procedure, handler
from sopy_actors.errors import DefinitionError, StateError
from sopy_actors.testing import LocalSOP
from tests.support import sopy_states as s


def test_a_dict_state_is_changed_in_place_by_handlers_and_read_back_as_a_dict() -> None:
    run = LocalSOP(s.chat_sop())
    run.send(s.UserMessage("hello"))
    assert run.send(s.UserWantsToExit(True)).outcome is Outcome.ENDED
    result = run.result()
    assert type(result) is dict
    assert result == {
        "messages": ["hello"], "last_message": "hello", "farewell": {"said": True, "after": 1},
    }


def test_a_rejecting_handler_keeps_its_changes_to_a_dict_state_as_in_sopy() -> None:
    run = LocalSOP(s.chat_sop())
    transition = run.send(s.UserMessage(" "))
    assert transition.outcome is Outcome.REJECTED
    assert run.state == {"messages": [" "], "last_message": " "}


def test_a_dict_state_is_deep_copied_so_no_run_shares_or_leaks_its_lists() -> None:
    sop = s.chat_sop()
    first, second = LocalSOP(sop), LocalSOP(sop)
    first.send(s.UserMessage("one"))
    assert sop.state == {"messages": [], "last_message": None}
    assert second.state["messages"] == []
    before = first.send(s.UserMessage("two"))
    first.state["messages"].append("outside")
    assert first.state["messages"] == ["one", "two"]
    assert before.state["messages"] == ["one", "two"]


def test_a_dataclass_state_comes_back_as_the_dataclass() -> None:
    run = LocalSOP(s.tally_sop())
    for word in ("a", "bb", "ccc"):
        run.send(s.Word(word))
    result = run.result()
    expected = s.Tally(words=["a", "bb", "ccc"], span=s.Span("a", "ccc"), lengths=(1, 2, 3))
    expected.rounds = 3
    assert result == expected
    result.words.clear()
    assert run.state.words == ["a", "bb", "ccc"]


def test_a_plain_object_state_works_in_process() -> None:
    run = LocalSOP(s.task_sop())
    run.send(s.Task("write"))
    assert isinstance(run.state, s.TaskState) and run.state.tasks == ["write"]
    assert run.state is not run.state
    run.send(s.Task("test"))
    assert run.result().tasks == ["write", "test"]
    assert s.task_sop().state.tasks == []


def test_a_state_that_cannot_be_deep_copied_is_a_definition_error_naming_its_type() -> None:
    class Locked:
        def __deepcopy__(self, memo: object) -> Locked:
            raise TypeError("cannot copy a lock")

    with pytest.raises(DefinitionError, match=r"state Locked must be deep-copyable: TypeError: cannot copy a lock"):
        SOP(Locked(), s.Planning())


def test_a_handler_that_leaves_an_uncopyable_state_gets_a_state_error_on_the_next_event() -> None:
    class Gate:
        def __deepcopy__(self, memo: object) -> Gate:
            raise TypeError("gates stay put")

    class Opening(Procedure[dict[str, object]]):
        @handler
        def on_task(self, state: dict[str, object], event: s.Task) -> Procedure[dict[str, object]]:
            state["gate"] = Gate()
            return self

    run = LocalSOP(SOP({}, Opening()))
    run.send(s.Task("open"))
    with pytest.raises(StateError, match=r"state dict cannot be deep-copied \(TypeError: gates stay put\)"):
        run.send(s.Task("again"))
    assert run.version == 1
