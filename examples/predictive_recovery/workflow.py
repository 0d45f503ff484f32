"""Predictive recovery (spec: Multi-Level Error Recovery, 2. Predictive Recovery) on the real Monitor.

`PredictiveRecovery` is the spec's procedure unchanged apart from imports; the spec leaves two
of its four predictors to the reader, and here they delegate to the shipped ones. The workload
is `IndexBuilder`: a Ray actor whose `parallelism` workers each really hold a block of memory.
`PreventiveAction` lowers the parallelism (the builder frees memory) and ends once the next
HealthCheck reads healthy.
"""

from __future__ import annotations

from typing import Any

import ray
from pydantic import BaseModel, Field

from sopy_actors import SOP, End, Procedure, handler, make_prompt
from sopy_actors.monitoring import HealthCheck, dependency_failure, error_rate_increase, resource_exhaustion

BUILDER = "predictive-index-builder"


class PredictiveState(BaseModel):
    warning_count: int = 0
    performance_threshold: float = 2.0  # seconds per handler call
    parallelism: int = 4
    actions: list[str] = Field(default_factory=list)
    readings: list[float] = Field(default_factory=list)


# --- the spec's procedure, unchanged ------------------------------------------------------


class PredictiveRecovery(Procedure[PredictiveState]):
    def __init__(self):
        self.health_metrics = {}
        self.failure_predictors = [
            self._check_resource_exhaustion,
            self._check_performance_degradation,
            self._check_error_rate_increase,
            self._check_external_dependencies
        ]

    @handler
    def handle_health_check(self, state: PredictiveState, event: HealthCheck):
        metrics = event.payload
        self.health_metrics.update(metrics)

        # Run failure predictors
        for predictor in self.failure_predictors:
            risk_level = predictor(self.health_metrics, state)

            if risk_level == "high":
                return PreventiveAction(predictor_name=predictor.__name__)
            elif risk_level == "medium":
                state.warning_count += 1
                if state.warning_count > 3:
                    return PreventiveAction(predictor_name=predictor.__name__)

        return self  # Continue monitoring

    def _check_resource_exhaustion(self, metrics, state):
        """Check if resources are running low"""
        if metrics.get("memory_usage", 0) > 0.9:
            return "high"
        elif metrics.get("memory_usage", 0) > 0.8:
            return "medium"
        return "low"

    def _check_performance_degradation(self, metrics, state):
        """Check if performance is degrading"""
        recent_response_times = metrics.get("response_times", [])[-10:]
        if recent_response_times:
            avg_time = sum(recent_response_times) / len(recent_response_times)
            if avg_time > state.performance_threshold * 2:
                return "high"
            elif avg_time > state.performance_threshold * 1.5:
                return "medium"
        return "low"

    # --- the two predictors the spec names but does not show --------------------------------

    def _check_error_rate_increase(self, metrics, state):
        """Check if handlers fail more often than before"""
        return error_rate_increase(metrics, state)

    def _check_external_dependencies(self, metrics, state):
        """Check registered dependency probes"""
        return dependency_failure(metrics, state)


# --- the preventive action ----------------------------------------------------------------


class PreventiveAction(Procedure[PredictiveState]):
    prompt = make_prompt("Reduce the load until the health checks read healthy again.")

    def __init__(self, predictor_name: str = "") -> None:
        self.predictor_name = predictor_name
        self.throttled = False

    @handler
    def on_health_check(self, state: PredictiveState, event: HealthCheck) -> Procedure[PredictiveState]:
        state.readings.append(round(float(event.payload["memory_usage"]), 3))
        if not self.throttled:
            state.parallelism = 1
            state.actions.append(f"{self.predictor_name}: parallelism lowered to {state.parallelism}")
            ray.get(ray.get_actor(BUILDER).set_parallelism.remote(state.parallelism))
            self.throttled = True
            return self
        if resource_exhaustion(event.payload) == "low":
            state.actions.append("recovered: memory back under the warning threshold")
            return End(prompt="recovered")
        return self


def predictive_sop(memory_budget: int, every: float = 1.0) -> SOP[PredictiveState]:
    """The SOP, sent a HealthCheck every `every` s with memory measured against `memory_budget` bytes."""
    return SOP(state=PredictiveState(), init_proc=PredictiveRecovery()).monitored(
        every=every, memory_budget=memory_budget
    )


# --- the workload: a tool that really allocates memory ------------------------------------


def build_index_block(size: int) -> bytearray:
    """The memory-hungry tool: one worker's in-memory index block, every page written."""
    block = bytearray(size)
    block[::4096] = b"\x01" * len(range(0, size, 4096))
    return block


@ray.remote(num_cpus=0)
class IndexBuilder:
    """Runs `parallelism` workers, each holding one index block of `block_size` bytes."""

    def __init__(self, parallelism: int, block_size: int) -> None:
        self.blocks = [build_index_block(block_size) for _ in range(parallelism)]

    def set_parallelism(self, parallelism: int) -> int:
        """Keep `parallelism` workers; the others' blocks are freed. Returns the bytes held."""
        del self.blocks[parallelism:]
        return self.held()

    def held(self) -> int:
        return sum(len(b) for b in self.blocks)

    def release(self) -> dict[str, Any]:
        """Free every block."""
        self.blocks.clear()
        return {"held": 0}
