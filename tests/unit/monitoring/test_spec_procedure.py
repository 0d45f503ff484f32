"""The spec's PredictiveRecovery (from the example, unchanged) on the in-process engine."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from sopy_actors.core.codec import decode_procedure, encode_procedure
from sopy_actors.monitoring import HealthCheck
from sopy_actors.testing import LocalSOP

# Loaded under its own name: other examples also have a module called `workflow`.
_PATH = Path(__file__).resolve().parents[3] / "examples" / "predictive_recovery" / "workflow.py"
_SPEC = importlib.util.spec_from_file_location("predictive_recovery_workflow", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
workflow: Any = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = workflow
_SPEC.loader.exec_module(workflow)


def check(memory: float, **more: Any) -> HealthCheck:
    return HealthCheck(payload={"memory_usage": memory, **more})


def test_bound_predictor_methods_checkpoint_by_name() -> None:
    procedure = decode_procedure(encode_procedure(workflow.PredictiveRecovery()))
    assert next(p.__name__ for p in procedure.failure_predictors) == "_check_resource_exhaustion"
    assert all(p.__self__ is procedure for p in procedure.failure_predictors)


def test_high_memory_reading_moves_to_preventive_action() -> None:
    run = LocalSOP(workflow.predictive_sop(memory_budget=1 << 30))
    assert run.send(check(0.5)).outcome == "stayed"
    receipt = run.send(check(0.95))
    assert receipt.outcome == "transitioned" and receipt.procedure.sop_name == "PreventiveAction"


def test_four_medium_warnings_also_trigger_it() -> None:
    run = LocalSOP(workflow.predictive_sop(memory_budget=1 << 30))
    outcomes = [run.send(check(0.85)).outcome for _ in range(4)]
    assert outcomes == ["stayed", "stayed", "stayed", "transitioned"]
    assert run.state.warning_count == 4


def test_a_dependency_down_is_high_risk() -> None:
    run = LocalSOP(workflow.predictive_sop(memory_budget=1 << 30))
    receipt = run.send(check(0.1, dependencies={"db": {"up": False}}))
    assert receipt.procedure.sop_name == "PreventiveAction"
