"""SOPy programs' states and events on the actor runtime: dict and dataclass states, plain objects refused."""

from __future__ import annotations

import pytest

from sopy_actors import Event, Outcome
from sopy_actors.errors import InputError, StateError
from tests.support import sopy_states as s

pytestmark = pytest.mark.usefixtures("runtime")


def test_a_dict_state_sop_runs_on_the_actor_runtime_and_returns_a_dict() -> None:
    handle = s.chat_sop().start()
    assert handle.send(s.UserMessage("hello"), timeout=120).outcome is Outcome.STAYED
    assert handle.send(s.UserMessage(" "), timeout=120).outcome is Outcome.REJECTED
    state = handle.state()
    assert type(state) is dict and state == {"messages": ["hello", " "], "last_message": " "}
    assert handle.send(s.UserWantsToExit(True), timeout=120).outcome is Outcome.ENDED
    result = handle.result(timeout=120)
    assert type(result) is dict
    assert result == {"messages": ["hello", " "], "last_message": " ", "farewell": {"said": True, "after": 2}}
    assert handle.state_data() == result


def test_a_dataclass_state_sop_runs_on_the_actor_runtime_and_returns_the_dataclass() -> None:
    handle = s.tally_sop().start()
    for word in ("a", "bb"):
        assert handle.send(s.Word(word), timeout=120).outcome is Outcome.STAYED
    partial = handle.state()
    assert isinstance(partial, s.Tally) and partial.words == ["a", "bb"] and partial.rounds == 2
    assert handle.send(s.Word("ccc"), timeout=120).outcome is Outcome.ENDED
    result = handle.result(timeout=120)
    assert isinstance(result, s.Tally)
    assert (result.words, result.span, result.lengths, result.rounds) == (
        ["a", "bb", "ccc"], s.Span("a", "ccc"), (1, 2, 3), 3,
    )


def test_a_plain_object_state_is_refused_at_start_with_a_state_error_naming_its_type() -> None:
    with pytest.raises(StateError, match=r"^state TaskState cannot cross processes: .*sopy_actors\.testing\.LocalSOP"):
        s.task_sop().start()


def test_from_agent_on_the_actor_runtime_passes_events_sent_to_the_agent_and_drops_those_with_neither() -> None:
    handle = s.chat_sop().from_agent("assistant").start()
    assert handle.send(s.UserMessage("anonymous"), timeout=120).outcome is Outcome.IGNORED
    assert handle.send(s.UserMessage("to you", None, "user", "assistant"), timeout=120).outcome is Outcome.STAYED
    assert handle.state()["messages"] == ["to you"]


def test_an_event_whose_payload_has_no_json_form_is_refused_naming_its_type_and_field() -> None:
    class Failed(Event[Exception]):  # works in process; an exception has no JSON form
        pass

    handle = s.chat_sop().start()
    with pytest.raises(InputError, match=r"^Invalid Failed: field 'payload' holds a value of type OSError") as info:
        handle.send(Failed(OSError("disk full")), timeout=120)
    assert info.value.fields == ("payload",)
    assert handle.status().version == 0
