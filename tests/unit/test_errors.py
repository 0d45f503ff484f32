"""The error tree: retryable flags and pickling (Ray pickles errors across actors)."""

from __future__ import annotations

import json
import pickle

import pytest

import sopy_actors.errors as errors
from sopy_actors.errors import (
    AgentError,
    AwaitingHuman,
    CircuitOpen,
    DefinitionError,
    HandlerError,
    InputError,
    RecoveryExhausted,
    RuntimeUnavailable,
    SOPCancelled,
    SOPFailed,
    SOPViolation,
    SopyError,
    StateError,
    TimedOut,
    TransitionError,
    UnknownSOP,
    VersionConflict,
    as_sopy_error,
    error_from_wire,
    error_to_wire,
    is_retryable,
)

EXAMPLES: list[SopyError] = [
    SopyError("root"),
    DefinitionError("procedure P", ["a", "b"]),
    InputError("bad", fields=("payload.x",)),
    UnknownSOP("sop-9"),
    TransitionError("returned 3"),
    HandlerError(sop_id="s", procedure="P", event_type="E", cause=KeyError("k")),
    StateError("cannot load"),
    VersionConflict("s", stored=5, attempted=5),
    SOPFailed("s", "boom"),
    SOPCancelled("s"),
    RuntimeUnavailable("no cluster"),
    TimedOut("no answer within 5 s"),
    AgentError("model down", agent="writer", retryable=True),
    CircuitOpen("search-agent", retry_after=5.0),
    AwaitingHuman("s", "the payment provider rejects every call"),
    RecoveryExhausted("s", 4, "try again"),
    SOPViolation("SOP left unfinished: current procedure is Drafting with prompt Write.", sop_id="s", attempts=3),
]


def test_every_public_error_class_has_an_example() -> None:
    public = {getattr(errors, name) for name in errors.__all__ if isinstance(getattr(errors, name), type)}
    assert public == {type(e) for e in EXAMPLES}


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_errors_round_trip_through_pickle(error: SopyError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__
    assert copy.retryable == error.retryable


def test_every_error_is_a_sopy_error_and_retryable_only_where_waiting_can_help() -> None:
    assert all(isinstance(e, SopyError) for e in EXAMPLES)
    retryable = [type(e).__name__ for e in EXAMPLES if e.retryable]
    assert retryable == ["RuntimeUnavailable", "TimedOut", "AgentError", "CircuitOpen", "AwaitingHuman"]


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_errors_round_trip_through_the_wire_format_as_json(error: SopyError) -> None:
    wire = json.loads(json.dumps(error_to_wire(error)))
    copy = error_from_wire(wire)
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__
    assert copy.retryable == error.retryable


def test_a_timeout_is_also_a_timeout_error_and_retryable() -> None:
    assert isinstance(TimedOut("late"), TimeoutError) and TimedOut("late").retryable


def test_third_party_errors_become_sopy_errors_with_retryable_from_their_class() -> None:
    wrapped = as_sopy_error(ConnectionResetError("peer gone"), wrap=AgentError)
    assert type(wrapped) is AgentError and wrapped.retryable and "ConnectionResetError: peer gone" in str(wrapped)
    assert not as_sopy_error(KeyError("k")).retryable
    assert error_from_wire(error_to_wire(ValueError("bad"))).retryable is False


def test_an_unknown_wire_type_is_rebuilt_as_the_root_without_importing_anything() -> None:
    copy = error_from_wire({"type": "os:system", "message": "hi", "attributes": {}})
    assert type(copy) is SopyError and str(copy) == "hi"


def test_definition_error_lists_every_problem() -> None:
    assert str(DefinitionError("procedure P", ["a", "b"])) == "Invalid procedure P for 2 reasons:\n  - a\n  - b"


def test_transient_errors_of_model_clients_are_retryable_by_class() -> None:
    import httpx
    from strands.types.exceptions import ModelThrottledException

    assert is_retryable(httpx.ConnectError("refused")) and is_retryable(ModelThrottledException("busy"))
    assert not is_retryable(httpx.HTTPStatusError("bad", request=httpx.Request("GET", "http://x"), response=httpx.Response(400)))
    assert is_retryable(RuntimeUnavailable("down")) and not is_retryable(InputError("bad"))


def test_error_class_names_are_unique_so_the_wire_rebuilds_the_one_class() -> None:
    import sopy_actors.agents.tools
    import sopy_actors.recovery
    import sopy_actors.sopy.core.sop
    import sopy_actors.sopy.interface.strands  # noqa: F401 - every module that defines errors

    classes, pending = [], [errors.SopyError]
    while pending:
        cls = pending.pop()
        classes.append(cls)
        pending.extend(cls.__subclasses__())
    names = [cls.__name__ for cls in classes]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
