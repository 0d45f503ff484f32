"""The error tree: retryable flags and pickling (Ray pickles errors across actors)."""

from __future__ import annotations

import pickle

import pytest

import sopy_actors.errors as errors
from sopy_actors.errors import (
    AgentError, DefinitionError, HandlerError, InputError, RecoveryExhausted, RuntimeUnavailable,
    SOPCancelled, SOPFailed, SopyError, StateError, TransitionError, UnknownSOP,
)

EXAMPLES: list[SopyError] = [
    SopyError("root"),
    DefinitionError("procedure P", ["a", "b"]),
    InputError("bad", fields=("payload.x",)),
    UnknownSOP("sop-9"),
    TransitionError("returned 3"),
    HandlerError(sop_id="s", procedure="P", event_type="E", cause=KeyError("k")),
    StateError("cannot load"),
    SOPFailed("s", "boom"),
    SOPCancelled("s"),
    RuntimeUnavailable("no cluster"),
    AgentError("model down", agent="writer", retryable=True),
    RecoveryExhausted("s", 4, "try again"),
]


def test_every_public_error_class_has_an_example() -> None:
    public = {getattr(errors, name) for name in errors.__all__}
    assert public == {type(e) for e in EXAMPLES}


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_errors_round_trip_through_pickle(error: SopyError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__
    assert copy.retryable == error.retryable


def test_every_error_is_a_sopy_error_and_only_runtime_unavailable_is_retryable_by_default() -> None:
    assert all(isinstance(e, SopyError) for e in EXAMPLES)
    assert [type(e).__name__ for e in EXAMPLES if e.retryable] == ["RuntimeUnavailable", "AgentError"]


def test_definition_error_lists_every_problem() -> None:
    assert str(DefinitionError("procedure P", ["a", "b"])) == "Invalid procedure P for 2 reasons:\n  - a\n  - b"
