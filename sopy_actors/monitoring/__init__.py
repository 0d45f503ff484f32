"""Monitoring: metric names, the Monitor actor, its Prometheus endpoint, HealthChecks, predictors.

`HealthCheck`, the predictors and the metric names are plain Python; the Monitor, its handle
and the reporter import Ray and are loaded on first use (module `__getattr__`).
"""

from __future__ import annotations

from sopy_actors._lazy import lazy_exports
from sopy_actors.monitoring.health import DependencyStatus, HealthCheck, HealthMetrics, NodeHealth
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
from sopy_actors.telemetry.names import FAMILIES, Family

_LAZY: dict[str, str] = {
    "MetricsEndpoint": "sopy_actors.monitoring.api",
    "Monitor": "sopy_actors.monitoring.api",
    "monitor": "sopy_actors.monitoring.api",
    "start_monitor": "sopy_actors.monitoring.api",
    "MetricsReporter": "sopy_actors.telemetry.reporter",
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


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
