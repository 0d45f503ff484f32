"""Monitoring: metric names, the Monitor actor, its Prometheus endpoint, HealthChecks, predictors.

`HealthCheck`, the predictors and the metric names are plain Python; the Monitor, its handle
and the reporter import Ray and are loaded on first use (module `__getattr__`).
"""

from __future__ import annotations

import importlib
from typing import Any

from sopy_actors.monitoring.health import DependencyStatus, HealthCheck, HealthMetrics, NodeHealth
from sopy_actors.monitoring.names import FAMILIES, Family
from sopy_actors.monitoring.predictors import (
    RISK_LEVELS,
    Predictor,
    Risk,
    combine,
    dependency_failure,
    error_rate_increase,
    highest,
    performance_degradation,
    resource_exhaustion,
)

_LAZY: dict[str, str] = {
    "MetricsEndpoint": "sopy_actors.monitoring.api",
    "Monitor": "sopy_actors.monitoring.api",
    "monitor": "sopy_actors.monitoring.api",
    "start_monitor": "sopy_actors.monitoring.api",
    "MetricsReporter": "sopy_actors.monitoring.reporter",
}

__all__ = [
    "FAMILIES",
    "RISK_LEVELS",
    "DependencyStatus",
    "Family",
    "HealthCheck",
    "HealthMetrics",
    "MetricsEndpoint",
    "MetricsReporter",
    "Monitor",
    "NodeHealth",
    "Predictor",
    "Risk",
    "combine",
    "dependency_failure",
    "error_rate_increase",
    "highest",
    "monitor",
    "performance_degradation",
    "resource_exhaustion",
    "start_monitor",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sopy_actors.monitoring' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
