"""The scenario table on the in-process engine (the integration suite replays it on Ray)."""

from __future__ import annotations

import pytest

from sopy_actors import Outcome
from sopy_actors.testing import LocalSOP
from tests.support import docflow
from tests.support.scenarios import SCENARIOS, Scenario


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_gives_the_expected_outcomes_and_state(scenario: Scenario) -> None:
    run = LocalSOP(docflow.make_sop(scenario.retry_limits, scenario.semantics))
    for step in scenario.steps:
        if isinstance(step.outcome, Outcome):
            transition = run.send(step.event())
            assert transition.outcome is step.outcome
            if step.prompt is not None:
                assert transition.prompt == step.prompt
        else:
            with pytest.raises(step.outcome):
                run.send(step.event())
        assert run.procedure_name == step.procedure
    assert run.state.model_dump() == scenario.state
