"""HealthCheck: a dict payload validated as HealthMetrics, usable as SOPy's handler reads it."""

from __future__ import annotations

import pickle

import pytest

from sopy_actors.core.events import event_from_wire, event_to_wire
from sopy_actors.errors import InputError
from sopy_actors.monitoring import HealthCheck, HealthMetrics


def test_payload_is_a_plain_mapping_for_update_and_get() -> None:
    event = HealthCheck(payload={"memory_usage": 0.42, "response_times": [0.1, 0.2]})
    accumulated: dict[str, object] = {}
    accumulated.update(event.payload)
    assert accumulated.get("memory_usage", 0) == 0.42
    assert accumulated["error_rate"] == 0.0
    assert event.metrics == HealthMetrics(memory_usage=0.42, response_times=[0.1, 0.2])


def test_payload_is_validated() -> None:
    with pytest.raises(InputError, match=r"payload.memory_usage"):
        HealthCheck(payload={"memory_usage": -0.1})
    with pytest.raises(InputError, match=r"payload.surprise"):
        HealthCheck(payload={"surprise": 1})


def test_health_check_round_trips_on_the_wire_and_through_pickle() -> None:
    event = HealthCheck(payload=HealthMetrics(memory_usage=0.5, dependencies={"db": {"up": False}}))
    assert event_from_wire(event_to_wire(event)) == event
    assert pickle.loads(pickle.dumps(event)) == event
    assert HealthCheck.sop_optional


def test_monitored_checks_its_arguments() -> None:
    from sopy_actors.errors import DefinitionError
    from tests.support.metered import watch_sop

    sop = watch_sop().monitored(every=0.5, memory_budget=1 << 30)
    assert (sop.health_every, sop.memory_budget) == (0.5, 1 << 30)
    with pytest.raises(DefinitionError, match="every"):
        watch_sop().monitored(every=0)
    with pytest.raises(DefinitionError, match="memory_budget"):
        watch_sop().monitored(memory_budget=-1)


def test_circuit_states_are_part_of_the_payload_and_validated() -> None:
    event = HealthCheck(payload={"circuits": {"tool:fetch": "open", "agent:writer": "half_open"}})
    assert event.payload["circuits"] == {"tool:fetch": "open", "agent:writer": "half_open"}
    assert HealthCheck(payload={}).metrics.circuits == {}
    with pytest.raises(InputError, match=r"payload.circuits.tool:fetch"):
        HealthCheck(payload={"circuits": {"tool:fetch": "broken"}})
