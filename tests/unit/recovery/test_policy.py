"""RecoveryPolicy: rungs users compose, checked at once, carried as JSON; the backoff schedule."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from sopy_actors.errors import DefinitionError, InputError, SopyError
from sopy_actors.recovery import (
    CAUSE_KINDS,
    Alternative,
    Backoff,
    Fallback,
    Manual,
    RecoveryPolicy,
    Retry,
)
from tests.unit.recovery.spec_recovery import ContinueOperation


class BackupSpec(BaseModel):
    """Stands in for an AgentSpec (the recovery layer only needs its name and JSON form)."""

    name: str

LADDER = RecoveryPolicy(
    rungs=[
        Retry(max_attempts=3, backoff=Backoff(initial=0.5, multiplier=3, cap=20, jitter=0.5), on=["agent_error", "timeout"]),
        Fallback(to=ContinueOperation, on="agent_error"),
        Fallback(to=BackupSpec(name="writer-backup")),
        Alternative(approaches_field="approaches", max_attempts=2),
        Manual(reason="The summary service keeps failing", choices=["retry", "skip", "abort"]),
    ]
)


def transient(error: SopyError) -> bool:
    """A retry predicate stored by reference."""
    return "transient" in str(error)


def problems(error: pytest.ExceptionInfo[DefinitionError]) -> list[str]:
    return list(error.value.problems)


# --- every problem at once -------------------------------------------------------------------


def test_a_rung_lists_every_problem_of_its_fields_and_its_backoff_at_once() -> None:
    with pytest.raises(DefinitionError) as error:
        Retry(max_attempts=0, on=[], retry_on=lambda e: True, backoff={"initial": -1, "jitter": 2})
    assert str(error.value).startswith("Invalid Retry for 5 reasons:")
    *fields, predicate = problems(error)
    assert fields == [
        "on: must name at least one cause: one or a list of handler_raised, rejection_limit, agent_error, "
        "sub_sop_failed, timeout; got []",
        "max_attempts: must be a whole number >= 1, got 0",
        "backoff.initial: must be a finite number >= 0, got -1",
        "backoff.jitter: must be a finite number >= 0 and <= 1, got 2",
    ]
    assert predicate.startswith("retry_on: retry_on predicate ") and predicate.endswith(
        "<lambda> is a lambda; other processes import it by name, so make it a top-level function (def) of an "
        "importable module"
    )


def test_a_policy_from_json_lists_the_problems_of_all_its_rungs_naming_each_rung() -> None:
    data = {
        "rungs": [
            {"strategy": "retry", "max_attempts": True, "on": ["timeout", "meteor"]},
            {"strategy": "fallback", "to": "not an agent!"},
            {"strategy": "manual", "reason": " ", "choices": ["retry", "retry"]},
            {"strategy": "escalate"},
            {"strategy": "alternative", "approaches_field": "approaches", "approaches": ["a"]},
            {"strategy": "retry", "backoff": {"initial": 2, "cap": 0.5}},
            {"strategy": "alternative", "approaches_field": "approaches.first", "max_attempts": 0},
        ]
    }
    with pytest.raises(DefinitionError) as error:
        RecoveryPolicy.model_validate(data)
    assert str(error.value).startswith("Invalid RecoveryPolicy for 10 reasons:")
    assert problems(error) == [
        "rungs[0] Retry.on: unknown cause 'meteor'; the causes are handler_raised, rejection_limit, agent_error, "
        "sub_sop_failed, timeout",
        "rungs[0] Retry.max_attempts: must be a whole number >= 1, got True",
        "rungs[1] Fallback.to: 'not an agent!' is neither a 'module:qualname' procedure reference nor an agent "
        "name (1-64 letters, digits or ._-)",
        "rungs[2] Manual.reason: must say in words why a person is needed; got ' '",
        "rungs[2] Manual.choices: offers a choice twice: ['retry', 'retry']",
        "rungs[3]: Input tag 'escalate' found using 'strategy' does not match any of the expected tags: 'retry', "
        "'fallback', 'alternative', 'manual'",
        "rungs[4] Alternative.approaches: unknown field (misspelt?)",
        "rungs[5] Retry.backoff: cap (0.5 s) must be >= initial (2 s)",
        "rungs[6] Alternative.approaches_field: must be the name of a list field of the state, such as "
        "'approaches'; got 'approaches.first'",
        "rungs[6] Alternative.max_attempts: must be a whole number >= 1, got 0",
    ]


def test_building_a_policy_raises_the_same_error_as_validating_its_json() -> None:
    with pytest.raises(DefinitionError) as built:
        RecoveryPolicy(rungs=[{"strategy": "manual", "reason": ""}, {"strategy": "fallback"}])
    assert problems(built) == [
        "rungs[0] Manual.reason: must say in words why a person is needed; got ''",
        "rungs[1] Fallback.to: Field required",
    ]


def test_a_ladder_needs_a_rung_and_no_rung_twice() -> None:
    with pytest.raises(DefinitionError) as empty:
        RecoveryPolicy(rungs=[])
    assert problems(empty) == [
        "rungs: a policy needs at least one rung, e.g. rungs=[Retry(max_attempts=3), Manual(reason='...')]"
    ]
    with pytest.raises(DefinitionError) as twice:
        RecoveryPolicy(rungs=[Retry(), Manual(reason="stuck"), Retry(), Manual(reason="stuck")])
    assert problems(twice) == [
        "rungs[2] repeats rungs[0] (Retry); raise its max_attempts instead",
        "rungs[3] repeats rungs[1] (Manual); raise its max_attempts instead",
    ]


def test_code_is_named_by_reference_and_a_lambda_or_local_function_is_refused() -> None:
    def local(error: SopyError) -> bool:
        return True

    assert Retry(retry_on=transient).retry_on == "tests.unit.recovery.test_policy:transient"
    assert Retry(retry_on="myco.checks:is_transient").retry_on == "myco.checks:is_transient"
    with pytest.raises(DefinitionError, match="is defined inside a function"):
        Retry(retry_on=local)
    with pytest.raises(DefinitionError, match="is not a 'module:qualname' reference"):
        Retry(retry_on="is_transient")
    with pytest.raises(DefinitionError, match=r"must be a function \(error\) -> bool"):
        Retry(retry_on=ValueError)


def test_a_fallback_names_a_procedure_class_or_an_agent() -> None:
    procedure = Fallback(to=ContinueOperation)
    assert procedure.to == "tests.unit.recovery.spec_recovery:ContinueOperation" and procedure.target == "procedure"
    agent = Fallback(to=BackupSpec(name="writer-backup"))  # an AgentSpec, or a handle with .spec
    assert (agent.to, agent.target, agent.agent) == ("writer-backup", "agent", {"name": "writer-backup"})
    assert Fallback(to=SimpleNamespace(spec=BackupSpec(name="writer-backup"))) == agent
    assert Fallback.model_validate(agent.model_dump(mode="json")) == agent
    with pytest.raises(DefinitionError, match="an agent fallback needs the agent itself"):
        Fallback(to="writer-backup")
    with pytest.raises(DefinitionError, match="give the procedure class, not an instance: to=ContinueOperation"):
        Fallback(to=ContinueOperation())
    with pytest.raises(DefinitionError, match="Retry is not a Procedure subclass"):
        Fallback(to=Retry)


def test_rungs_and_policies_are_frozen() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        LADDER.rungs[0].max_attempts = 9  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        LADDER.rungs = ()  # type: ignore[misc]


# --- JSON ------------------------------------------------------------------------------------


def test_a_policy_round_trips_through_json_as_it_travels_in_sop_records() -> None:
    wire = json.loads(json.dumps(LADDER.model_dump(mode="json")))
    assert [rung["strategy"] for rung in wire["rungs"]] == ["retry", "fallback", "fallback", "alternative", "manual"]
    assert wire["rungs"][1]["to"] == "tests.unit.recovery.spec_recovery:ContinueOperation"
    again = RecoveryPolicy.model_validate(wire)
    assert again == LADDER
    assert [type(rung) for rung in again.rungs] == [Retry, Fallback, Fallback, Alternative, Manual]
    assert RecoveryPolicy.model_validate_json(LADDER.model_dump_json()) == LADDER


def test_a_rung_applies_to_every_cause_unless_told_otherwise() -> None:
    assert Manual(reason="stuck").on == CAUSE_KINDS
    assert Retry(on="timeout").on == ("timeout",)
    assert [index for index, _ in LADDER.rungs_for("timeout")] == [0, 2, 3, 4]
    assert [index for index, _ in LADDER.rungs_for("agent_error")] == [0, 1, 2, 3, 4]


# --- backoff ---------------------------------------------------------------------------------


def test_backoff_grows_exponentially_up_to_its_cap() -> None:
    backoff = Backoff(initial=1, multiplier=2, cap=10, jitter=0)
    assert [backoff.delay(attempt, rng=random.random) for attempt in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert backoff.base_delay(100_000) == 10  # no overflow, however many retries
    assert Backoff(initial=0, cap=0).delay(5, rng=random.random) == 0


@given(attempt=st.integers(1, 2_000), u=st.floats(0, 1, exclude_max=True))
def test_jitter_only_shortens_a_wait_by_at_most_its_fraction(attempt: int, u: float) -> None:
    backoff = Backoff(initial=0.5, multiplier=3, cap=20, jitter=0.25)
    base = backoff.base_delay(attempt)
    assert base * 0.75 <= backoff.delay(attempt, rng=lambda: u) <= base <= 20


def test_jitter_ends_are_the_full_and_the_shortened_wait() -> None:
    backoff = Backoff(initial=4, multiplier=2, cap=60, jitter=0.5)
    assert backoff.delay(2, rng=lambda: 0.0) == 8
    assert backoff.delay(2, rng=lambda: 0.5) == 6
    assert backoff.delay(2, rng=lambda: 0.999) == pytest.approx(4, abs=0.01)


def test_a_seeded_random_source_gives_the_same_schedule() -> None:
    backoff = Backoff()
    first, second = random.Random(7), random.Random(7)
    assert [backoff.delay(n, rng=first.random) for n in range(1, 6)] == [
        backoff.delay(n, rng=second.random) for n in range(1, 6)
    ]


def test_backoff_refuses_bad_numbers_all_at_once_and_a_bad_random_source() -> None:
    with pytest.raises(DefinitionError) as error:
        Backoff(initial=float("nan"), multiplier=0.5, cap="10", jitter=True)
    assert problems(error) == [
        "initial: must be a finite number >= 0, got nan",
        "multiplier: must be a finite number >= 1, got 0.5",
        "cap: must be a finite number >= 0, got '10'",
        "jitter: must be a finite number >= 0 and <= 1, got True",
    ]
    with pytest.raises(InputError, match=r"must return a number in \[0, 1\), got 1.5"):
        Backoff().delay(1, rng=lambda: 1.5)
    with pytest.raises(InputError, match="attempt must be >= 1"):
        Backoff().delay(0, rng=random.random)
