"""Predictors: plain functions from health metrics to low/medium/high."""

from __future__ import annotations

import functools
from types import SimpleNamespace

from sopy_actors.monitoring import (
    combine,
    dependency_failure,
    error_rate_increase,
    highest,
    performance_degradation,
    resource_exhaustion,
)


def test_resource_exhaustion_follows_the_spec_thresholds() -> None:
    assert resource_exhaustion({"memory_usage": 0.5}) == "low"
    assert resource_exhaustion({"memory_usage": 0.85}) == "medium"
    assert resource_exhaustion({"memory_usage": 0.95}) == "high"
    assert resource_exhaustion({}) == "low"


def test_resource_exhaustion_reads_cpu_only_when_asked() -> None:
    metrics = {"memory_usage": 0.1, "cpu_usage": 0.97}
    assert resource_exhaustion(metrics) == "low"
    assert resource_exhaustion(metrics, keys=("memory_usage", "cpu_usage")) == "high"


def test_performance_degradation_against_the_state_threshold() -> None:
    state = SimpleNamespace(performance_threshold=1.0)
    assert performance_degradation({"response_times": [1.0] * 10}, state) == "low"
    assert performance_degradation({"response_times": [1.6] * 10}, state) == "medium"
    assert performance_degradation({"response_times": [2.5] * 10}, state) == "high"
    assert performance_degradation({"response_times": []}, state) == "low"


def test_performance_degradation_against_the_recent_baseline() -> None:
    steady = [0.1] * 20
    assert performance_degradation({"response_times": steady}) == "low"
    assert performance_degradation({"response_times": [0.1] * 10 + [0.18] * 10}) == "medium"
    assert performance_degradation({"response_times": [0.1] * 10 + [0.5] * 10}) == "high"
    assert performance_degradation({"response_times": [0.5] * 10}) == "low"  # no baseline yet


def test_error_rate_increase_by_level_and_by_rise() -> None:
    assert error_rate_increase({"error_rate": 0.0}) == "low"
    assert error_rate_increase({"error_rate": 0.1, "error_rate_baseline": 0.1}) == "medium"
    assert error_rate_increase({"error_rate": 0.04, "error_rate_baseline": 0.0}) == "low"
    assert error_rate_increase({"error_rate": 0.3}) == "high"
    assert error_rate_increase({"error_rate": 0.15, "error_rate_baseline": 0.01}) == "high"


def test_dependency_failure_by_critical_and_share_down() -> None:
    up, down = {"up": True}, {"up": False}
    assert dependency_failure({"dependencies": {}}) == "low"
    assert dependency_failure({"dependencies": {"a": up, "b": up, "c": down}}) == "medium"
    assert dependency_failure({"dependencies": {"a": up, "b": down}}) == "high"
    assert dependency_failure({"dependencies": {"a": up, "b": up, "c": down}}, critical=("c",)) == "high"


def test_predictors_compose() -> None:
    strict = functools.partial(resource_exhaustion, medium=0.3, high=0.6)
    both = combine(strict, dependency_failure)
    assert both({"memory_usage": 0.4, "dependencies": {}}) == "medium"
    assert both({"memory_usage": 0.1, "dependencies": {"db": {"up": False}}}) == "high"
    assert highest() == "low" and highest("low", "high", "medium") == "high"
